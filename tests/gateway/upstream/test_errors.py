"""gateway/upstream/errors.py: a backend's own error text is quoted only masked and short."""

from __future__ import annotations

import pytest

from gateway.upstream.errors import EXCERPT, UpstreamRpcError, excerpt
from shared.redact import REDACTED

SENT = ["Bearer tok-abc-123456", "tok-abc-123456", "plain-key-42", "application/json"]


@pytest.mark.parametrize(("text", "sent", "expected"), [
    ("bad token tok-abc-123456", SENT, f"bad token {REDACTED}"),
    ("auth=Bearer tok-abc-123456!", SENT, f"auth={REDACTED}!"),
    ("key plain-key-42 refused", SENT, f"key {REDACTED} refused"),
    ("Authorization: Bearer unknownunknown", (), f"Authorization: Bearer {REDACTED}"),  # a shape, not sent
    ("server unavailable: exited with 1", SENT, "server unavailable: exited with 1"),
    ("a\nb\x00c", (), "abc"),  # printable only
])
def test_excerpt_masks_what_was_sent_and_credential_shapes(text: str, sent: list[str], expected: str) -> None:
    assert excerpt(text, sent) == expected


def test_excerpt_masks_before_it_cuts() -> None:
    secret = "s" * 40
    text = "x" * (EXCERPT - 10) + secret
    out = excerpt(text, [secret])
    assert "s" not in out.replace(REDACTED, "") and len(out) == EXCERPT


def test_a_json_rpc_error_message_is_quoted_masked() -> None:
    exc = UpstreamRpcError("fm", {"code": -32603, "message": "rejected Bearer abcdefghijklmnop"}, [])
    assert "abcdefghijklmnop" not in str(exc) + exc.rpc_message


def test_a_json_rpc_error_is_masked_with_the_servers_credential_forms() -> None:
    """The message (REST callers, the audit `error` column) and the data (the /mcp relay) alike."""
    key = "Zq8vN2kLp0xR7tYb"
    exc = UpstreamRpcError("beta", {"code": -32000, "message": f"upstream rejected key {key} ...",
                                    "data": {"sent": [key.lower()], key: 1}}, [key])
    assert key.lower() not in (str(exc) + exc.rpc_message + repr(exc.data)).lower(), (exc, exc.data)
    assert exc.code == -32000 and exc.rpc_message.startswith("upstream rejected key")
