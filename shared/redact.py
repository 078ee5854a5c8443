"""Redaction applied to audit data before any sink sees it (pure functions).

Two independent nets, because either alone leaks:
- key names: a value stored under a sensitive key ("password", "X-Api-Key", "db_token") is replaced
  whole, at any depth. Keys are compared case-insensitively with `-` read as `_`. A configured name
  of 5 characters or more matches when the key *contains* it (`access_token`, `x_api_key`,
  `DB_PASSWORD`); that over-redacts a few harmless keys (`max_tokens`), a far smaller cost in an
  audit trail than a leaked credential. A shorter name (`pin`, `pwd`) matches only whole key
  segments (split at `_`, `-`, `.`, spaces and camelCase): `pin`, `user_pin`, `userPin` are
  masked, `spinner`, `pinned`, `mapping` are not.
- value shapes: strings that look like credentials (JWTs, bearer tokens, cloud/API keys, PEM private
  keys, passwords in URLs, `password=…`/`pwd=…`/`token=…` assignments as in connection strings and
  query strings) are masked wherever they appear, even under innocent keys or in free text.

`redact` never recurses deeper than `MAX_DEPTH` levels: anything below is replaced by a marker, so a
hostile 1,000-level structure cannot exhaust Python's stack (see shared/audit/sanitize.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "***REDACTED***"
MAX_DEPTH = 64  # the gateway refuses deeper request bodies by default (max_json_depth)
TOO_DEEP = f"[mcpgw-audit: cut, nested deeper than {MAX_DEPTH} levels]"
TOO_DEEP_NOTE = f"nested deeper than {MAX_DEPTH} levels: cut"
# Longest string kept in an audit structure; longer ones are truncated, marked.
MAX_STRING = 65_536
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1  # what orjson can serialise
# Names shorter than this match whole key segments only (see the module docstring).
SHORT_NAME = 5

# Each pattern masks the whole match except the named group `keep`, which is preserved so the log
# still shows *what kind* of thing was there (e.g. "Bearer ***REDACTED***").
_PATTERNS = [
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
    r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.?[A-Za-z0-9_-]*",
    r"(?P<keep>\b(?i:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}",
    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
    r"\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{20,}",
    r"(?P<keep>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s:@]+:[^/\s@]*@",
]
# `name=value` / `name: value` assignments in free text: connection strings (`Password=x;`), query
# strings (`?access_token=x&`), env dumps (`PGPASSWORD=x`), JSON-ish text (`"pwd": "x"`). Long
# names match inside words (`client_secret=`), short ones must stand alone (`pin=`, not `spin=`).
# No unbounded prefix or quoted run: the pattern stays linear on hostile 1 MiB strings.
_ASSIGNMENT = (
    r"(?P<keep>(?i:(?:password|passwd|passphrase|secrets?|token|api[_-]?key|private[_-]?key|credentials?)"
    r"|(?<![A-Za-z0-9])(?:pwd|pin|pass))[\"']?[ \t]{0,8}[=:][ \t]{0,8})"
    r"(?:\"[^\"\n]{0,256}\"|'[^'\n]{0,256}'|[\"']?[^\s;&,\"'<>]+)"
)
_SHAPES = re.compile("|".join(f"(?:{p})" for p in _PATTERNS).replace("?P<keep>", "?:"))
_KEEP = [re.compile(p) for p in _PATTERNS]
_ASSIGN = re.compile(_ASSIGNMENT)

# The shortest credential a shape can match; shorter strings skip that regex (hot path).
_MIN_LEN = 16
_MIN_ASSIGN_LEN = 5  # "pin=1"


def _mask(match: re.Match[str]) -> str:
    text = match.group(0)
    for pattern in _KEEP:
        found = pattern.fullmatch(text)
        if found is not None:
            keep = found.groupdict().get("keep") or ""
            suffix = "@" if text.endswith("@") and keep else ""
            return keep + REDACTED + suffix
    return REDACTED


def _mask_assignment(match: re.Match[str]) -> str:
    return match.group("keep") + REDACTED


# Every assignment name contains one of these: a few substring searches rule most text out before
# the (case-insensitive, alternating) regex runs.
_ASSIGN_HINTS = ("pass", "pwd", "pin", "secret", "token", "key", "credential")


def _may_assign(text: str) -> bool:
    low = text.lower()
    return any(hint in low for hint in _ASSIGN_HINTS)


def mask_secrets(text: str) -> str:
    """`text` with every credential-shaped substring replaced by the redaction marker."""
    size = len(text)
    if size < _MIN_ASSIGN_LEN:
        return text
    if ("=" in text or ":" in text) and _may_assign(text) and (masked := _ASSIGN.sub(_mask_assignment, text)) != text:
        text = masked
    if size < _MIN_LEN:
        return text
    return _SHAPES.sub(_mask, text)


def normalize_keys(keys: Iterable[str]) -> frozenset[str]:
    """Configured key names in the form `redact` compares against."""
    return frozenset(k.strip().lower().replace("-", "_") for k in keys if k.strip())


# camelCase and digit runs as separate segments: userPIN → user, pin; PINCode → pin, code.
_SEGMENT = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# Argument names repeat endlessly, so verdicts are memoized (bounded: cleared when full).
_VERDICTS: dict[tuple[object, frozenset[str]], bool] = {}
_VERDICTS_MAX = 10_000
_KEY_CACHE_LEN = 128  # longer keys are not cached (the caches must stay small)


def _segments_contain(segments: list[str], name: str) -> bool:
    parts = name.split("_")
    n = len(parts)
    return any(segments[i : i + n] == parts for i in range(len(segments) - n + 1))


def _sensitive(key: object, keys: frozenset[str]) -> bool:
    text = str(key)
    name = text.lower().replace("-", "_")
    if any(k in name for k in keys if len(k) >= SHORT_NAME):
        return True
    short = [k for k in keys if len(k) < SHORT_NAME]
    if not short:
        return False
    segments = [s.lower() for s in _SEGMENT.findall(text)]
    return any(_segments_contain(segments, k) for k in short)


def key_is_sensitive(key: object, keys: frozenset[str]) -> bool:
    """True when the key names a secret: contains a long configured name, or a short one as a segment."""
    if isinstance(key, str) and len(key) > _KEY_CACHE_LEN:
        return _sensitive(key, keys)  # never cached: 10,000 huge keys would be a memory attack
    cache_key = (key, keys)
    verdict = _VERDICTS.get(cache_key)
    if verdict is None:
        verdict = _sensitive(key, keys)
        if len(_VERDICTS) >= _VERDICTS_MAX:
            _VERDICTS.clear()
        _VERDICTS[cache_key] = verdict
    return verdict


def redact(value: Any, keys: frozenset[str], *, max_depth: int = MAX_DEPTH, notes: list[str] | None = None) -> Any:
    """A JSON-safe, storable copy of `value` with sensitive keys and credential shapes masked.

    Objects JSON cannot carry (bytes, custom classes) become their masked `str()`, so one odd
    argument can never stop an audit batch from being written. Containers below `max_depth` levels
    become the `TOO_DEEP` marker and strings are made storable (`storable`); each change adds a
    reason to `notes` when given.
    """
    return _redact(value, keys, max_depth, notes)


def _redact(value: Any, keys: frozenset[str], depth: int, notes: list[str] | None) -> Any:
    kind = type(value)  # exact types first: the hot path (subclasses fall through to isinstance)
    if kind is str:
        text = mask_secrets(value)
        if len(text) > MAX_STRING or "\x00" in text or not text.isascii():
            text = storable(text, notes)
        return text
    if value is None or kind is bool or kind is float:
        return value
    if kind is dict or kind is list:
        if depth <= 0:
            _note(notes, TOO_DEEP_NOTE)
            return TOO_DEEP
        if kind is list:
            return [_redact(v, keys, depth - 1, notes) for v in value]
        out = {}
        for k, v in value.items():
            info = _KEYS.get((k, keys)) if type(k) is str else None
            if info is None:
                info = _key_info(k, keys)
            name, sensitive, reason = info
            if reason is not None:
                _note(notes, reason)
            out[name] = REDACTED if sensitive else _redact(v, keys, depth - 1, notes)
        return out
    if kind is int:
        if _MIN_INT <= value <= _MAX_INT:
            return value
        _note(notes, "integer beyond 64 bits stored as text")
        return str(value)
    if isinstance(value, str | dict | list | tuple | set | frozenset | bool | int | float):
        return _redact_subclass(value, keys, depth, notes)
    return storable(mask_secrets(str(value)), notes)


def _redact_subclass(value: Any, keys: frozenset[str], depth: int, notes: list[str] | None) -> Any:
    """Subclasses and the other containers, as their plain JSON type."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return _redact(str(value), keys, depth, notes)
    if isinstance(value, int):
        return _redact(int(value), keys, depth, notes)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return _redact(dict(value), keys, depth, notes)
    return _redact(list(value), keys, depth, notes)


# (stored key, sensitive, what storing changed) per key: argument names repeat endlessly.
_KEYS: dict[tuple[str, frozenset[str]], tuple[str, bool, str | None]] = {}


def _key_info(key: object, keys: frozenset[str]) -> tuple[str, bool, str | None]:
    text = mask_secrets(key if isinstance(key, str) else str(key))  # a credential used as a key
    notes: list[str] = []
    if len(text) > MAX_STRING or "\x00" in text or not text.isascii():
        text = storable(text, notes)
    info = (text, key_is_sensitive(key, keys), notes[0] if notes else None)
    if type(key) is str and len(key) <= _KEY_CACHE_LEN:
        if len(_KEYS) >= _VERDICTS_MAX:
            _KEYS.clear()
        _KEYS[(key, keys)] = info
    return info


def _note(notes: list[str] | None, reason: str) -> None:
    if notes is not None and reason not in notes:
        notes.append(reason)


def storable(text: str, notes: list[str] | None = None, limit: int = MAX_STRING) -> str:
    """`text` as every sink can store it: at most `limit` characters, no NUL, no lone surrogates.

    Postgres refuses NUL in text and jsonb (`\\u0000`), and UTF-8 encoders refuse lone surrogates; a
    single such value used to fail a whole COPY batch. Each change is marked in the text itself
    and its reason added to `notes`.
    """
    if len(text) > limit:
        _note(notes, f"string longer than {limit} characters truncated")
        text = text[:limit] + f"[mcpgw-audit: truncated, {len(text)} characters]"
    if "\x00" in text:
        _note(notes, "NUL characters replaced by the text \\u0000")
        text = text.replace("\x00", "\\u0000")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            _note(notes, "invalid Unicode (lone surrogates) escaped")
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
