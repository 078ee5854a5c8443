"""Decision cache after a policy-change notification: flushed, and caching resumes only under the announced version."""

from __future__ import annotations

import pytest

from gateway.pep_cache import DecisionCache
from gateway.policy_listener import version_from_payload


def warm(version: str = "v1") -> DecisionCache[str]:
    cache: DecisionCache[str] = DecisionCache(60.0, 100)
    cache.observe_version(version, cache.epoch)
    cache.put(("k",), "allow", version)
    assert cache.get(("k",)) == "allow"
    return cache


def test_announced_version_flushes_and_blocks_old_answers() -> None:
    cache = warm()
    cache.expect_version("v2")
    assert cache.get(("k",)) is None and len(cache) == 0
    # A PDP replica that has not reloaded yet still answers v1: used, but not cached.
    epoch = cache.epoch
    assert cache.observe_version("v1", epoch) is False
    cache.put(("k",), "allow", "v1")
    assert cache.get(("k",)) is None
    # The announced version arrives: caching resumes under it.
    assert cache.observe_version("v2", epoch) is True
    cache.put(("k",), "deny", "v2")
    assert cache.get(("k",)) == "deny" and cache.expected is None


def test_unknown_change_only_flushes() -> None:
    cache = warm()
    cache.expect_version(None)
    assert len(cache) == 0 and cache.expected is None
    cache.put(("k",), "allow", "v1")
    assert cache.get(("k",)) == "allow"


def test_announcing_the_current_version_does_not_stop_caching() -> None:
    cache = warm("v3")
    cache.expect_version("v3")
    assert len(cache) == 0 and cache.expected is None
    cache.put(("k",), "allow", "v3")
    assert cache.get(("k",)) == "allow"


def test_rollback_announcement_is_followed() -> None:
    cache = warm("v1")
    cache.observe_version("v2", cache.epoch)
    cache.put(("k",), "deny", "v2")
    cache.expect_version("v1")  # rolled back to v1
    cache.put(("k",), "deny", "v2")
    assert cache.get(("k",)) is None
    assert cache.observe_version("v1", cache.epoch) is True
    cache.put(("k",), "allow", "v1")
    assert cache.get(("k",)) == "allow"


@pytest.mark.parametrize(
    ("payload", "version"),
    [("7", "v7"), (" 12 ", "v12"), ("", None), ("v7", None), ("-1", None), ("7; DROP", None)],
)
def test_version_from_payload(payload: str, version: str | None) -> None:
    assert version_from_payload(payload) == version
