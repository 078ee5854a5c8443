"""`python -m pdp`: the same as `mcpgw pdp serve`."""

import sys

from pdp.cli import serve_main

if __name__ == "__main__":
    sys.exit(serve_main(sys.argv[1:]))
