"""gateway/calls/outcome.py: how a backend's answer to a tool call is judged (pure part)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.calls.outcome import judge


def text(value: str, is_error: bool = True) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": value}], "isError": is_error}


@pytest.mark.parametrize(("result", "error", "expected"), [
    (text("Unknown tool: echo"), None, "unknown_tool"),  # the SDK's words
    (None, {"code": -32602, "message": "Unknown tool: echo"}, "unknown_tool"),
    (None, {"code": -32602, "message": "invalid arguments"}, "ok"),  # an error, not "no such tool"
    (None, {"code": -32603, "message": "Unknown tool: echo"}, "ok"),
    (text("Unknown tool: other"), None, "tool_error"),
    (text("boom"), None, "tool_error"),
    (text("Unknown tool: echo", is_error=False), None, "ok"),
    ({"content": [], "isError": "true"}, None, "ok"),  # only a real true
    ({"content": []}, None, "ok"),
    ("not a result", None, "ok"),
])
def test_judge(result: object, error: object, expected: str) -> None:
    assert judge("echo", result, error) == expected
