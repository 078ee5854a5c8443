"""Cost of the gateway's JSON shape check (gateway/middlewares/json_limits.py) per request body.

The middleware parses each JSON body once (the handlers reuse that parse instead of parsing again)
and walks it iteratively. This prints, for typical and large bodies, the parse and the walk in µs
and the walk as a fraction of the parse, all measured in this run:

    .venv/bin/python bench/bench_json_limits.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import best_of  # noqa: E402
from gateway.middlewares.json_limits import JsonLimits, shape_problem  # noqa: E402

BODIES = {
    "REST invoke, 3 arguments": {"tool_name": "create_issue", "parameters": {"repo": "acme/api", "title": "Bug", "labels": ["bug"]}},
    "MCP tools/call, 10 arguments": {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "query", "arguments": {f"a{i}": f"value {i}" for i in range(10)}, "_meta": {"progressToken": 1}}},
    "10 KiB text argument": {"tool_name": "write", "parameters": {"path": "/x", "content": "x" * 10_240}},
    "1,000 numbers": {"tool_name": "plot", "parameters": {"points": list(range(1_000))}},
    "200 nested objects, depth 6": {"tool_name": "bulk", "parameters": {"rows": [
        {"id": i, "meta": {"a": {"b": {"c": "d"}}}} for i in range(200)]}},
    "hostile: 2,000 levels (refused at 65)": None,
}


def main() -> None:
    limits = JsonLimits()
    print(f"{'body':<40} {'bytes':>7} {'parse µs':>9} {'check µs':>9} {'check/parse':>12}")
    for name, body in BODIES.items():
        raw = orjson.dumps(body) if body is not None else b'{"a":' * 1_000 + b"1" + b"}" * 1_000
        value = orjson.loads(raw)
        parse = best_of(lambda raw=raw: orjson.loads(raw), 2_000, 7)
        check = best_of(lambda value=value: shape_problem(value, limits), 2_000, 7)
        print(f"{name:<40} {len(raw):>7} {parse:>9.2f} {check:>9.2f} {check / parse:>11.2f}x")


if __name__ == "__main__":
    main()
