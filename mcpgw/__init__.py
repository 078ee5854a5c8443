"""The composition root: the `mcpgw` command line and the `make run` dev stack.

It sits above gateway/, pdp/ and shared/ and may import all three; nothing imports it.
"""
