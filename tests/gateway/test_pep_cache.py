"""Decision cache and PEP wire parsing: pure, table-driven."""

from __future__ import annotations

import pytest

from gateway.pep import parse_evaluations, parse_search
from gateway.pep_cache import DecisionCache, canonical_hash, decision_key, subject_key
from shared.auth import Principal
from shared.authzen import WireError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


WHO = subject_key(Principal("alice", ("b", "a"), ("g",), ()))


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        (
            (WHO, "invoke_tool", "mcp_tool", "s:t", {"a": 1, "b": 2}, None),
            (WHO, "invoke_tool", "mcp_tool", "s:t", {"b": 2, "a": 1}, None),
            True,
        ),
        (
            (WHO, "invoke_tool", "mcp_tool", "s:t", {"a": 1}, None),
            (WHO, "invoke_tool", "mcp_tool", "s:t", {"a": 2}, None),
            False,
        ),
        (
            (WHO, "invoke_tool", "mcp_tool", "s:t", None, None),
            (WHO, "invoke_tool", "mcp_tool", "s:t", {}, None),
            False,
        ),
        (
            (WHO, "invoke_tool", "mcp_tool", "s:t", None, {"request_id": "1"}),
            (WHO, "invoke_tool", "mcp_tool", "s:t", None, {"request_id": "2"}),
            True,
        ),
        (
            (WHO, "invoke_tool", "mcp_tool", "s:t", None, {"client_addr": "1.1.1.1"}),
            (WHO, "invoke_tool", "mcp_tool", "s:t", None, {"client_addr": "2.2.2.2"}),
            False,
        ),
        (
            (WHO, "list_tools", "mcp_server", "s", None, None),
            (WHO, "server_info", "mcp_server", "s", None, None),
            False,
        ),
        (
            (subject_key(Principal("alice", ("a", "b"), ("g",), ())), "x", "mcp_server", "s", None, None),
            (WHO, "x", "mcp_server", "s", None, None),
            True,
        ),
        (
            (subject_key(Principal("alice", ("a",), ("g",), ())), "x", "mcp_server", "s", None, None),
            (WHO, "x", "mcp_server", "s", None, None),
            False,
        ),
        (
            (subject_key(Principal("bob", ("a", "b"), ("g",), ())), "x", "mcp_server", "s", None, None),
            (WHO, "x", "mcp_server", "s", None, None),
            False,
        ),
    ],
)
def test_decision_key(left: tuple, right: tuple, same: bool) -> None:
    assert (decision_key(*left) == decision_key(*right)) is same


def test_canonical_hash_rejects_unserialisable() -> None:
    with pytest.raises(TypeError):
        canonical_hash({"x": object()})


def test_cache_ttl_and_lru() -> None:
    clock = Clock()
    cache: DecisionCache[str] = DecisionCache(ttl=5, max_size=2, clock=clock)
    cache.observe_version("v1")
    cache.put(("a",), "A", "v1")
    cache.put(("b",), "B", "v1")
    assert cache.get(("a",)) == "A"  # a is now most recent
    cache.put(("c",), "C", "v1")
    assert cache.get(("b",)) is None and cache.get(("a",)) == "A" and cache.get(("c",)) == "C"
    clock.now += 5
    assert cache.get(("a",)) is None and len(cache) == 1


def test_new_policy_version_drops_everything() -> None:
    cache: DecisionCache[str] = DecisionCache(ttl=60, max_size=10)
    cache.observe_version("v1")
    cache.put(("a",), "A", "v1")
    assert cache.observe_version("v1") is False and cache.get(("a",)) == "A"
    assert cache.observe_version("v2") is True
    assert cache.get(("a",)) is None
    # a late answer from v1 neither switches back nor gets stored
    assert cache.observe_version("v1") is False
    cache.put(("a",), "stale", "v1")
    assert cache.get(("a",)) is None and cache.policy_version == "v2"


def test_rollback_to_a_retired_version_is_followed() -> None:
    """A rollback re-activates an old version label: answers to requests sent after the last
    switch follow it (entries of the rolled-back version dropped, caching resumes); answers to
    requests sent before the switch are late and change nothing."""
    cache: DecisionCache[str] = DecisionCache(ttl=60, max_size=10)
    cache.observe_version("v3", cache.epoch)
    sent_under_v3 = cache.epoch
    assert cache.observe_version("v5", cache.epoch) is True
    cache.put(("a",), "allowed-by-v5", "v5")
    assert cache.observe_version("v3", sent_under_v3) is False  # late: request left before v5
    assert cache.get(("a",)) == "allowed-by-v5"
    assert cache.observe_version("v3", cache.epoch) is True  # fresh answer: rolled back to v3
    assert cache.get(("a",)) is None and cache.policy_version == "v3"
    cache.put(("a",), "denied-by-v3", "v3")
    assert cache.get(("a",)) == "denied-by-v3"  # the cache works again under v3


@pytest.mark.parametrize(
    ("ttl", "size", "version", "stored"),
    [(5, 10, "v1", True), (0, 10, "v1", False), (5, 0, "v1", False), (5, 10, None, False)],
)
def test_cache_put_conditions(ttl: float, size: int, version: str | None, stored: bool) -> None:
    cache: DecisionCache[str] = DecisionCache(ttl=ttl, max_size=size)
    cache.observe_version(version)
    cache.put(("k",), "V", version)
    assert (cache.get(("k",)) == "V") is stored


GOOD_DECISION = {"decision": True, "context": {"policy_version": "v1"}}


@pytest.mark.parametrize(
    ("body", "expected", "ok"),
    [
        ({"evaluations": [GOOD_DECISION, {"decision": False}]}, 2, True),
        ({"evaluations": [GOOD_DECISION]}, 2, False),
        ({"evaluations": [GOOD_DECISION, {"decision": "yes"}]}, 2, False),
        ({"evaluations": [GOOD_DECISION, {"decision": 1}]}, 2, False),
        ({"evaluations": "all"}, 1, False),
        ([GOOD_DECISION], 1, False),
        ({}, 0, False),
    ],
)
def test_parse_evaluations(body: object, expected: int, ok: bool) -> None:
    if ok:
        assert [d.allowed for d in parse_evaluations(body, expected)] == [True, False]
    else:
        with pytest.raises(WireError):
            parse_evaluations(body, expected)


@pytest.mark.parametrize(
    ("body", "result"),
    [
        (
            {"results": [{"type": "mcp_tool", "id": "s:t"}], "context": {"policy_version": "v"}},
            ({"s:t"}, "v"),
        ),
        ({"results": []}, (set(), None)),
        ({"results": [{"type": "mcp_server", "id": "s"}]}, None),
        ({"results": [{"type": "mcp_tool"}]}, None),
        ({"results": ["s:t"]}, None),
        ({"results": [], "context": []}, None),
        ({"decision": True}, None),
    ],
)
def test_parse_search(body: object, result: tuple | None) -> None:
    if result is not None:
        assert parse_search(body, "mcp_tool") == result
    else:
        with pytest.raises(WireError):
            parse_search(body, "mcp_tool")
