"""Per-key counters with a ceiling (open streams per session and subject, pending requests); a key's
entry lives only while it holds a slot, so callers inventing keys cannot grow the table."""

from __future__ import annotations

from collections.abc import Hashable


class Slots:
    """At most `limit` slots held at once per key."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[Hashable, int] = {}

    def take(self, key: Hashable) -> bool:
        """Hold one slot of `key`; False (nothing held) when its limit is reached."""
        count = self._held.get(key, 0)
        if count >= self.limit:
            return False
        self._held[key] = count + 1
        return True

    def give(self, key: Hashable) -> None:
        """Release one slot of `key` (the entry goes with its last slot)."""
        count = self._held.get(key, 0) - 1
        if count > 0:
            self._held[key] = count
        else:
            self._held.pop(key, None)

    def held(self, key: Hashable) -> int:
        """Slots `key` holds now."""
        return self._held.get(key, 0)

    def __len__(self) -> int:
        return len(self._held)


class StreamLimits:
    """Open GET / `subscriptions/listen` streams, bounded per session and per subject."""

    def __init__(self, per_session: int, per_subject: int) -> None:
        self.sessions = Slots(per_session)
        self.subjects = Slots(per_subject)

    def open(self, subject: str, session: str | None) -> str | None:
        """Hold a stream slot; None, or the refusal's reason (naming the setting) when one is full."""
        if not self.subjects.take(subject):
            return (f"too many open streams for this caller (limit {self.subjects.limit}, "
                    "MCPGW_GATEWAY_MCP_MAX_STREAMS_PER_SUBJECT); close one first")
        if session is not None and not self.sessions.take(session):
            self.subjects.give(subject)
            return (f"too many open streams on this session (limit {self.sessions.limit}, "
                    "MCPGW_GATEWAY_MCP_MAX_STREAMS_PER_SESSION); close one first")
        return None

    def close(self, subject: str, session: str | None) -> None:
        """Release what `open` held."""
        self.subjects.give(subject)
        if session is not None:
            self.sessions.give(session)
