"""Session revocation: NOTIFY payloads and the codec's revoked set."""

from __future__ import annotations

import pytest

from gateway.mcp.revocations import decode_payload, encode_payload
from gateway.mcp.sessions import SessionCodec, SessionError

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


def test_noting_a_revocation_is_incremental_and_expired_ones_leave_the_heap() -> None:
    """20k DELETEs: each one adds one entry to the same set (no rebuild), and expiry empties both."""
    codec = SessionCodec("k")
    table = codec._revoked
    for i in range(20_000):
        codec.note_revoked(f"{i:064x}", 1000.0 + i, now=0.0)
        assert codec._revoked is table  # never copied or rebuilt
    assert codec.revoked_count == 20_000 and len(codec._expiries) == 20_000
    codec.note_revoked("ab" * 32, 1e9, now=1000.0 + 15_000)  # the first 15 001 have expired by now
    assert codec.revoked_count == 20_000 - 15_001 + 1 and len(codec._expiries) == codec.revoked_count


def test_a_revocation_noted_again_with_a_later_expiry_keeps_the_later_one() -> None:
    codec = SessionCodec("k")
    codec.note_revoked(KEY, 10.0, now=0.0)
    codec.note_revoked(KEY, 20.0, now=0.0)
    codec.note_revoked(KEY, 5.0, now=0.0)  # an older echo does not shorten it
    codec.note_revoked("cd" * 32, 30.0, now=15.0)  # the heap's (10, KEY) pops without dropping KEY
    assert codec._revoked[KEY] == 20.0
    codec.note_revoked("ef" * 32, 40.0, now=25.0)
    assert KEY not in codec._revoked
