"""The gateway's JSON shape limits (pure): depth, string length, members per array/object."""

from __future__ import annotations

import pytest

from gateway.middlewares.json_limits import JsonLimits, shape_problem

LIMITS = JsonLimits(max_depth=4, max_string=10, max_items=50)


def deep(n: int, leaf: object = 1) -> object:
    value = leaf
    for i in range(n):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": 1, "b": [1, 2, 3]}, None),
        (deep(4), None),
        (deep(5), "JSON body nested deeper than 4 levels"),
        (deep(100_000), "JSON body nested deeper than 4 levels"),
        ("x" * 10, None),
        ("x" * 11, "a JSON string of 11 characters; at most 10 are accepted"),
        ({"k": ["ok", "x" * 11]}, "a JSON string of 11 characters; at most 10 are accepted"),
        ({"k" * 11: 1}, "a JSON string of 11 characters; at most 10 are accepted"),
        (list(range(51)), "a JSON array has 51 members; at most 50 are accepted"),
        ({"a": {str(i): i for i in range(51)}}, "a JSON object has 51 members; at most 50 are accepted"),
        # Long arrays and objects take the bulk path (> 32 members): same verdicts.
        ([1] * 40 + ["x" * 11], "a JSON string of 11 characters; at most 10 are accepted"),
        ([0] * 40 + [deep(4)], "JSON body nested deeper than 4 levels"),
        ([0] * 40 + [deep(3)], None),
        (None, None),
        (3.5, None),
    ],
)
def test_shape_problem(value, problem):
    assert shape_problem(value, LIMITS) == problem


def test_defaults_accept_an_ordinary_tool_call():
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "query", "arguments": {"sql": "select 1", "rows": list(range(100))}}}
    assert shape_problem(body, JsonLimits()) is None
