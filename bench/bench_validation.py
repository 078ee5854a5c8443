"""Strict argument validation (gateway/calls): µs per validation and added cost per tools/call, in-process.

Run: .venv/bin/python bench/bench_validation.py [--quick]

Prints, for a typical SDK tool schema (pydantic's `transfer(to: str, amount: int, memo: str | None)`)
and a larger nested one: µs per validation with the chosen validator (`jsonschema`, compiled once,
through `Checker.problems`), with `fastjsonschema` (compiled once, when installed) for comparison,
and the whole admission step a tools/call pays (`calls.admit.admit`: catalog lookup on a real
UpstreamPool with a fresh catalog, compiled-schema lookup, validation). The ratio line compares
the admission step with the JSON decode of the same tools/call body measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from bench.timing import best_of, best_of_async  # noqa: E402
from gateway.calls.admit import admit  # noqa: E402
from gateway.calls.validate import SchemaCache, compile_schema  # noqa: E402
from gateway.credentials import CredentialStore  # noqa: E402
from gateway.registry import ServerConfig  # noqa: E402
from gateway.upstream import UpstreamPool  # noqa: E402
from shared.jsonutil import dumps, loads  # noqa: E402

TRANSFER = {
    "type": "object", "title": "transferArguments", "required": ["to", "amount"],
    "properties": {"to": {"type": "string", "title": "To"}, "amount": {"type": "integer", "title": "Amount"},
                   "memo": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Memo"}},
}
TRANSFER_ARGS = {"to": "bob", "amount": 1000, "memo": "rent"}
NESTED = {
    "type": "object", "required": ["query", "filters"], "additionalProperties": False,
    "$defs": {"Filter": {"type": "object", "required": ["field", "op", "value"], "additionalProperties": False,
                         "properties": {"field": {"type": "string", "maxLength": 64},
                                        "op": {"enum": ["eq", "ne", "lt", "gt", "in"]},
                                        "value": {"anyOf": [{"type": "string"}, {"type": "number"},
                                                            {"type": "array", "items": {"type": "string"}}]}}}},
    "properties": {"query": {"type": "string", "minLength": 1}, "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                   "filters": {"type": "array", "maxItems": 20, "items": {"$ref": "#/$defs/Filter"}},
                   "sort": {"type": "array", "items": {"type": "string"}}},
}
NESTED_ARGS = {"query": "orders", "limit": 50, "sort": ["-created"],
               "filters": [{"field": f"f{i}", "op": "eq", "value": i} for i in range(5)]}


async def admit_cost(n: int) -> tuple[float, float]:
    """µs per admission of a valid transfer call (fresh catalog), and per JSON decode of its body."""
    server = ServerConfig(name="bank", url="http://127.0.0.1:9/mcp")
    async with aiohttp.ClientSession() as session:
        pool = UpstreamPool(session, CredentialStore(), None)
        pool.tool_names.store("bank", 0, [{"name": "transfer", "inputSchema": TRANSFER}])
        schemas = SchemaCache()
        await admit(pool, schemas, server, "transfer", TRANSFER_ARGS)  # compile once
        admission = await best_of_async(lambda: admit(pool, schemas, server, "transfer", TRANSFER_ARGS), n)
    body = dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                  "params": {"name": "bank__transfer", "arguments": TRANSFER_ARGS}})
    return admission, best_of(lambda: loads(body), n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    n = 2_000 if parser.parse_args().quick else 20_000
    try:
        import fastjsonschema
    except ImportError:
        fastjsonschema = None
    print(f"{'schema':<10} {'jsonschema µs':>14} {'fastjsonschema µs':>18} {'ratio':>7}")
    for label, schema, args in (("transfer", TRANSFER, TRANSFER_ARGS), ("nested", NESTED, NESTED_ARGS)):
        checker = compile_schema(schema)
        assert checker.problems(args) == []
        slow = best_of(lambda c=checker, a=args: c.problems(a), n)
        if fastjsonschema is not None:
            fast_fn = fastjsonschema.compile(schema, use_default=False)
            fast = best_of(lambda f=fast_fn, a=args: f(a), n)
            print(f"{label:<10} {slow:>14.1f} {fast:>18.1f} {slow / fast:>6.1f}×")
        else:
            print(f"{label:<10} {slow:>14.1f} {'(not installed)':>18}")
    if fastjsonschema is not None:
        # Why it is not the validator: a 2020-12 keyword it does not know is silently ignored.
        pair = {"type": "object", "properties": {"pair": {"type": "array", "prefixItems": [{"type": "integer"}]}}}
        ignored = fastjsonschema.compile(pair, use_default=False)({"pair": ["not an integer"]}) is not None
        print(f"fastjsonschema accepts a prefixItems violation (2020-12 keyword ignored): {ignored}; "
              f"jsonschema: {not compile_schema(pair).problems({'pair': ['not an integer']})}")
    invalid = compile_schema(TRANSFER)
    bad = best_of(lambda: invalid.problems({"to": "bob", "amount": "1000000"}), n // 4)
    print(f"invalid transfer call (refused, message built): {bad:.1f} µs")
    admitted, decode = asyncio.run(admit_cost(n))
    print(f"admission per tools/call (catalog + schema lookup + validation): {admitted:.1f} µs "
          f"= {admitted / decode:.1f}× the JSON decode of the same request body ({decode:.1f} µs)")


if __name__ == "__main__":
    main()
