"""Redaction applied to audit data before any sink sees it (pure functions).

Two independent nets, because either alone leaks:
- key names: a value stored under a sensitive key ("password", "X-Api-Key", "db_token") is replaced
  whole, at any depth. Keys are compared case-insensitively with `-` read as `_`, and a key matches
  when it *contains* a configured name, so `access_token`, `x_api_key` and `DB_PASSWORD` are caught.
  That over-redacts a few harmless keys (`max_tokens`); in an audit trail a masked counter is a far
  smaller cost than a leaked credential.
- value shapes: strings that look like credentials (JWTs, bearer tokens, cloud/API keys, PEM private
  keys, passwords in URLs) are masked wherever they appear, even under innocent keys or in free text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "***REDACTED***"

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
_SHAPES = re.compile("|".join(f"(?:{p})" for p in _PATTERNS).replace("?P<keep>", "?:"))
_KEEP = [re.compile(p) for p in _PATTERNS]

# The shortest credential any pattern can match; shorter strings skip the regex (hot path).
_MIN_LEN = 16


def _mask(match: re.Match[str]) -> str:
    text = match.group(0)
    for pattern in _KEEP:
        found = pattern.fullmatch(text)
        if found is not None:
            keep = found.groupdict().get("keep") or ""
            suffix = "@" if text.endswith("@") and keep else ""
            return keep + REDACTED + suffix
    return REDACTED


def mask_secrets(text: str) -> str:
    """`text` with every credential-shaped substring replaced by the redaction marker."""
    if len(text) < _MIN_LEN:
        return text
    return _SHAPES.sub(_mask, text)


def normalize_keys(keys: Iterable[str]) -> frozenset[str]:
    """Configured key names in the form `redact` compares against."""
    return frozenset(k.strip().lower().replace("-", "_") for k in keys if k.strip())


# Argument names repeat endlessly, so verdicts are memoized (bounded: cleared when full).
_VERDICTS: dict[tuple[object, frozenset[str]], bool] = {}
_VERDICTS_MAX = 10_000


def key_is_sensitive(key: object, keys: frozenset[str]) -> bool:
    """True when the (normalized) key contains any configured sensitive name."""
    cache_key = (key, keys)
    verdict = _VERDICTS.get(cache_key)
    if verdict is None:
        name = str(key).lower().replace("-", "_")
        verdict = any(k in name for k in keys)
        if len(_VERDICTS) >= _VERDICTS_MAX:
            _VERDICTS.clear()
        _VERDICTS[cache_key] = verdict
    return verdict


def redact(value: Any, keys: frozenset[str]) -> Any:
    """A JSON-safe copy of `value` with sensitive keys and credential shapes masked, at any depth.

    Objects JSON cannot carry (bytes, custom classes) become their masked `str()`, so one odd
    argument can never stop an audit batch from being written.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {
            (k if isinstance(k, str) else str(k)): REDACTED
            if key_is_sensitive(k, keys)
            else redact(v, keys)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, keys) for v in value]
    return mask_secrets(str(value))
