"""Decision cache for the PEP: short TTL, bounded LRU, flushed whenever the policy version changes.

Keys are built by pure functions from the subject's identity (subject, roles, groups, scopes), the
action, the resource and a hash of the canonical JSON of the arguments and decision-relevant facts,
so two calls that could get different answers never share an entry.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import orjson

from shared.auth import Principal

V = TypeVar("V")

# Facts that differ on every request and never change a decision; keeping them out of the key
# is what makes the cache hit at all.
VOLATILE_FACTS = frozenset({"request_id"})


def canonical_hash(value: Any) -> str:
    """SHA-256 of the canonical (sorted-key) JSON of `value`; unserialisable values raise TypeError."""
    data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(data).hexdigest()


def subject_key(who: Principal) -> tuple[Any, ...]:
    """The part of a cache key that identifies the caller (order-insensitive for sets)."""
    return (who.subject, tuple(sorted(who.roles)), tuple(sorted(who.groups)), tuple(sorted(who.scopes)))


def decision_key(
    subject: tuple[Any, ...],
    action: str,
    resource_type: str,
    resource_id: str,
    arguments: Mapping[str, Any] | None,
    facts: Mapping[str, Any] | None,
) -> tuple[Any, ...]:
    """Cache key of one evaluation."""
    relevant = {k: v for k, v in (facts or {}).items() if k not in VOLATILE_FACTS}
    context = canonical_hash([arguments, relevant]) if (arguments is not None or relevant) else ""
    return (subject, action, resource_type, resource_id, context)


class DecisionCache(Generic[V]):
    """TTL + LRU map whose entries belong to one policy version."""

    def __init__(self, ttl: float, max_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self.policy_version: str | None = None
        self._clock = clock
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, V]] = OrderedDict()
        self._retired: OrderedDict[str, None] = OrderedDict()
        # Bumped on every version switch; a request remembers the epoch it was sent in.
        self.epoch = 0
        # Set by a policy-change notification: until an answer under this version arrives, nothing
        # is cached (a PDP replica that has not reloaded yet may still answer the old version).
        self.expected: str | None = None

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and self.max_size > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[Any, ...]) -> V | None:
        """The live value for `key`, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def observe_version(self, version: str | None, epoch: int | None = None) -> bool:
        """Note the policy version of an answer (asked at `epoch`); a new one drops every entry. True if
        it changed. A retired version is a late answer if the cache switched since, else a rollback."""
        if version is None or version == self.policy_version:
            return False
        if version in self._retired and (epoch is None or epoch != self.epoch):
            return False
        self._entries.clear()
        self._retired.pop(version, None)
        if self.policy_version is not None:
            self._retired[self.policy_version] = None
            while len(self._retired) > 64:
                self._retired.popitem(last=False)
        self.policy_version = version
        self.epoch += 1
        if version == self.expected:
            self.expected = None
        return True

    def put(self, key: tuple[Any, ...], value: V, version: str | None) -> None:
        """Store an answer made under `version`; answers of an older or unknown version are not kept."""
        if not self.enabled or version is None or version != self.policy_version:
            return
        if self.expected is not None and version != self.expected:
            return
        self._entries[key] = (self._clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def expect_version(self, version: str | None) -> None:
        """A policy change was announced: drop every entry; cache again only under `version`.

        None (a change of unknown version, e.g. after the listener reconnected) just drops entries.
        """
        self._entries.clear()
        if version is not None and version != self.policy_version:
            self.expected = version
