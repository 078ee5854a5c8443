"""Make one audit event storable by every sink, whatever a caller sent (pure functions).

`sanitize_event` runs in `emit()`, once per event: it redacts (shared/redact.py), cuts structures
nested deeper than `redact.MAX_DEPTH`, truncates oversized strings, replaces NUL characters and
escapes lone surrogates, in the JSON fields and in every text column. Whatever it changed is listed
under `extra["audit_sanitized"]` ({field: [reasons]}), so altered rows are easy to find
(`WHERE extra ? 'audit_sanitized'`). `quarantine` is the last resort of the sinks: a minimal
version of an event that still failed to serialise or was refused by the database, so one event
can never take its batch down with it (docs/security/audit.md).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from shared.audit.event import AuditEvent
from shared.redact import mask_secrets, redact, storable

NOTE_KEY = "audit_sanitized"
UNSTORABLE = "[mcpgw-audit: value could not be stored as sent]"
MAX_TEXT = 8_192  # a text column longer than this is truncated, marked
TEXT_FIELDS = (
    "event_type", "request_id", "decision_id", "subject", "action", "mcp_server", "tool", "resource",
    "decision", "reason", "policy_version", "status", "error", "client_addr",
)
MASKED_FIELDS = ("error", "reason", "resource")
_TEXTS = attrgetter(*TEXT_FIELDS)


# Gateway- and PDP-made texts (a decision's reason, the resource, common errors) repeat endlessly,
# and the credential-shape regex costs ~8 µs on a 50-character reason. Texts found clean are
# remembered: only clean ones, so no secret is ever kept here; short ones only, and at most
# _CLEAN_MAX of them (forgotten all at once when full), so the set stays small.
_CLEAN: set[str] = set()
_CLEAN_MAX = 4_096
_CLEAN_LEN = 256


def _masked(text: str) -> str:
    """`mask_secrets(text)`, skipping texts already found clean."""
    if text in _CLEAN:
        return text
    masked = mask_secrets(text)
    if masked is text and len(text) <= _CLEAN_LEN:
        if len(_CLEAN) >= _CLEAN_MAX:
            _CLEAN.clear()
        _CLEAN.add(text)
    return masked


def _unsafe(text: str) -> bool:
    return len(text) > MAX_TEXT or "\x00" in text or not text.isascii()


def _texts_safe(event: AuditEvent) -> bool:
    """One check over all text columns and roles at once (the hot path: nearly every event is clean)."""
    texts = [t for t in _TEXTS(event) if t is not None]
    if event.roles:
        texts.extend(event.roles)
    try:
        joined = "".join(texts)
    except TypeError:  # a non-string where text belongs
        return False
    return not _unsafe(joined)


def sanitize_event(event: AuditEvent, keys: frozenset[str], *, in_place: bool = False) -> AuditEvent:
    """The event redacted and made storable; what had to change is marked in `extra`.

    `in_place`: the caller owns `event` (built for this call, held by no one else), so the changes
    are set on it instead of on a copy (a 22-field copy per event was a third of this function)."""
    changes: dict[str, Any] = {}
    notes: dict[str, list[str]] = {}
    for name in ("parameters", "extra"):
        value = getattr(event, name)
        if value is not None:
            found: list[str] = []
            changes[name] = redact(value, keys, notes=found)
            if found:
                notes[name] = found
    for name in MASKED_FIELDS:
        text = getattr(event, name)
        if text is not None and (masked := _masked(text)) is not text:
            changes[name] = masked
    safe = _texts_safe(event)  # a joined check: clean as a whole means each part is clean
    if not safe:
        for name in TEXT_FIELDS:
            text = changes.get(name, getattr(event, name))
            if text is not None and (not isinstance(text, str) or _unsafe(text)):
                found = []
                stored = storable(str(text), found, MAX_TEXT)
                if stored != text:
                    changes[name] = stored
                if found:
                    notes[name] = found
    if not safe and event.roles is not None and any(not isinstance(r, str) or _unsafe(r) for r in event.roles):
        found = []
        changes["roles"] = [storable(str(r), found, MAX_TEXT) for r in event.roles]
        if found:
            notes["roles"] = found
    if notes:
        extra = changes.get("extra", event.extra)
        extra = dict(extra) if isinstance(extra, dict) else ({} if extra is None else {"value": extra})
        extra[NOTE_KEY] = notes
        changes["extra"] = extra
    if not changes:
        return event
    if not in_place:
        return event._with(changes)
    for name, value in changes.items():
        object.__setattr__(event, name, value)  # frozen for everyone else; see `in_place`
    return event


def _ascii(value: Any, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    text = ascii(str(value))[1:-1]  # escapes every non-ASCII and control character
    return text if len(text) <= limit else text[:limit] + "[mcpgw-audit: truncated]"


def quarantine(event: AuditEvent, why: str) -> AuditEvent:
    """A minimal, certainly storable version of `event`, marked with `why`.

    The JSON fields are replaced by a marker and every text field is ASCII-escaped; who, what,
    when and the outcome survive, so the event is still on record.
    """
    changes: dict[str, Any] = {name: _ascii(getattr(event, name)) for name in TEXT_FIELDS}
    roles = event.roles if isinstance(event.roles, list | tuple) else None
    changes["roles"] = [_ascii(r, 256) for r in roles] if roles is not None else None
    changes["parameters"] = None if event.parameters is None else UNSTORABLE
    changes["extra"] = {NOTE_KEY: {"event": [_ascii(why, 512)]}}
    changes["http_status"] = event.http_status if type(event.http_status) is int and abs(event.http_status) < 2**31 else None
    changes["duration_ms"] = event.duration_ms if isinstance(event.duration_ms, int | float) else None
    return event._with(changes)
