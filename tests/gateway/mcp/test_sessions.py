"""gateway.mcp.sessions: sealed, subject-bound, replica-portable session ids."""

from __future__ import annotations

import pytest

from gateway.mcp.sessions import SessionCodec, SessionError


def test_round_trip_and_shared_secret_across_replicas() -> None:
    one, two = SessionCodec("s3cret"), SessionCodec("s3cret")
    token, session = one.mint("alice", "2025-11-25", server="github", upstream_id="up-1")
    opened = two.open(token, "alice", server="github")
    assert opened.sid == session.sid and opened.upstream_id == "up-1" and opened.version == "2025-11-25"


def test_token_is_opaque() -> None:
    token, _ = SessionCodec("k").mint("alice", "2025-11-25", server="github", upstream_id="upstream-secret-id")
    assert "alice" not in token and "upstream-secret-id" not in token and "github" not in token


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: "gw1." + "A" * 40,
        lambda t: "garbage",
        lambda t: t.replace("gw1.", "gw2."),
    ],
)
def test_tampered_ids_are_unknown(mutate) -> None:
    codec = SessionCodec("k")
    token, _ = codec.mint("alice", "2025-11-25")
    with pytest.raises(SessionError):
        codec.open(mutate(token), "alice")


def test_other_subject_other_secret_other_endpoint_expired_revoked() -> None:
    codec = SessionCodec("k", max_age=100)
    token, session = codec.mint("alice", "2025-11-25", now=1000)
    assert codec.open(token, "alice", now=1050).sid == session.sid
    with pytest.raises(SessionError):
        codec.open(token, "bob", now=1050)
    with pytest.raises(SessionError):
        SessionCodec("other").open(token, "alice", now=1050)
    with pytest.raises(SessionError):
        codec.open(token, "alice", server="github", now=1050)
    with pytest.raises(SessionError):
        codec.open(token, "alice", now=1101)
    fresh, live = codec.mint("alice", "2025-11-25")
    codec.revoke(live)
    with pytest.raises(SessionError):
        codec.open(fresh, "alice")
