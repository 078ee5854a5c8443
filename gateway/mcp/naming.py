"""Public names for aggregated tools and prompts: `{server}__{name}`, within `[A-Za-z0-9_-]{1,64}`.

A name that does not fit is cut and given an 8-hex-digit hash of the pair: stable across replicas
and restarts, so reversal needs no stored state (`resolve` recomputes names from the server's list).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

SEPARATOR = "__"
MAX_LEN = 64
_HASH_LEN = 8
_VALID = re.compile(rf"^[A-Za-z0-9_-]{{1,{MAX_LEN}}}$")
_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")
# A shortened name ends with `_` and the hash; such a name is itself valid, so it cannot be
# read as `server__name` without the server's list (it would name a tool that does not exist).
_SHORTENED = re.compile(rf"_[0-9a-f]{{{_HASH_LEN}}}$")


def is_valid(name: str) -> bool:
    """True when `name` is a spec-valid tool name."""
    return _VALID.fullmatch(name) is not None  # `$` alone would admit a trailing newline


def _fit(raw: str, key: str) -> str:
    if is_valid(raw):
        return raw
    digest = hashlib.sha256(key.encode()).hexdigest()[:_HASH_LEN]
    cleaned = _BAD_CHARS.sub("_", raw)
    return f"{cleaned[: MAX_LEN - _HASH_LEN - 1]}_{digest}"


def public_name(server: str, name: str) -> str:
    """The aggregated name of `name` on `server`."""
    return _fit(f"{server}{SEPARATOR}{name}", f"{server}\x00{name}")


def broadcast_name(name: str) -> str:
    """The unprefixed name of a tool offered by several servers (hash-shortened if needed)."""
    return _fit(name, f"\x00{name}")


def resolve(public: str, names_by_server: Mapping[str, Iterable[str]]) -> tuple[str, str] | None:
    """The (server, name) whose public name is `public`, looking only at the given lists (of the servers
    whose cleaned, possibly cut prefix `public` starts with, longest first)."""
    cut = MAX_LEN - _HASH_LEN - 1
    candidates = [s for s in names_by_server if public.startswith(_BAD_CHARS.sub("_", s + SEPARATOR)[:cut])]
    for server in sorted(candidates, key=len, reverse=True):
        for name in names_by_server[server]:
            if public_name(server, name) == public:
                return server, name
    return None


def maybe_shortened(public: str) -> bool:
    """True when `public` has the shape of a hash-shortened name (only a list can reverse it)."""
    return _SHORTENED.search(public) is not None


def split_simple(public: str, servers: Iterable[str]) -> tuple[str, str] | None:
    """Fast path without any tool list: `server__name` when that round-trips exactly; None for
    anything that may be a shortened name (callers then `resolve` against the lists)."""
    if maybe_shortened(public):
        return None
    for server in sorted(servers, key=len, reverse=True):
        prefix = server + SEPARATOR
        if public.startswith(prefix) and len(public) > len(prefix):
            name = public[len(prefix):]
            if public_name(server, name) == public:
                return server, name
    return None
