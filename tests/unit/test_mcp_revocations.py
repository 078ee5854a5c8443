"""Session revocation: NOTIFY payloads, the codec's revoked set, the SSE parser's pending size."""

from __future__ import annotations

import pytest

from gateway.mcp.revocations import decode_payload, encode_payload
from gateway.mcp.sessions import SessionCodec, SessionError
from gateway.upstream.codec import SSEParser

KEY = "ab" * 32


@pytest.mark.parametrize(("payload", "expected"), [
    (f"{KEY} 1700000000.500", (KEY, 1700000000.5)),
    (f" {KEY} 12 ", (KEY, 12.0)),
    (f"{KEY}", None),  # no expiry
    (f"{KEY} soon", None),
    (f"{KEY} nan", None),
    ("AB" * 32 + " 12", None),  # keys are lowercase hex
    ("ab" * 31 + " 12", None),  # wrong length
    ("", None),
])
def test_decode_payload(payload: str, expected: tuple[str, float] | None) -> None:
    assert decode_payload(payload) == expected


def test_payload_round_trip() -> None:
    assert decode_payload(encode_payload(KEY, 1234.25)) == (KEY, 1234.25)


def test_revocation_key_is_keyed_and_hides_the_id() -> None:
    codec = SessionCodec("k")
    token, session = codec.mint("alice", "2025-11-25")
    key = codec.revocation_key(session.sid)
    assert len(key) == 64 and session.sid not in key and key not in token
    assert key == SessionCodec("k").revocation_key(session.sid)  # replicas sharing the secret agree
    assert key != SessionCodec("other").revocation_key(session.sid)


def test_a_noted_revocation_refuses_the_session_until_it_expires() -> None:
    sender, receiver = SessionCodec("k", max_age=100), SessionCodec("k", max_age=100)
    token, session = sender.mint("alice", "2025-11-25")
    key, expires = sender.revoke(session)
    assert expires == session.issued_at + 100
    receiver.open(token, "alice")  # not yet told
    receiver.note_revoked(key, expires)
    with pytest.raises(SessionError):
        receiver.open(token, "alice")
    receiver.note_revoked("cd" * 32, expires, now=expires + 1)  # pruning pass after expiry
    assert receiver.revoked_count == 0


def test_replace_revoked_keeps_local_ones_and_drops_expired() -> None:
    codec = SessionCodec("k", max_age=1_000_000)
    _, session = codec.mint("alice", "2025-11-25")
    local, _ = codec.revoke(session)
    codec.replace_revoked({"ef" * 32: 4e9, "01" * 32: 1.0})
    assert codec.revoked_count == 2  # the local one and the live loaded one
    assert local in codec._revoked


@pytest.mark.parametrize(("chunks", "pending"), [
    ([b"data: abc\n"], 4),
    ([b"data: abc\ndata: de"], 4 + 8),  # an unfinished line counts raw
    ([b"data: abc\n\n"], 0),  # dispatched
    ([b"data: abc\n\ndata: x"], 7),
    ([b": keep-alive\n"], 0),
    ([b"data: abc\n", b"\n"], 0),
])
def test_sse_parser_pending(chunks: list[bytes], pending: int) -> None:
    parser = SSEParser()
    for chunk in chunks:
        parser.feed(chunk)
    assert parser.pending == pending
