"""Building blocks of validation: error types, typed field checks, pattern and pointer checks."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from pdp.policy.yamlload import LList, LMap


@dataclass(frozen=True)
class PolicyError:
    """One problem: where (dotted path, 1-based line) and what."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '<document>'}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the admin API."""
        return {"path": self.path, "line": self.line, "message": self.message}


class PolicyInvalid(Exception):
    """Raised with every error found in a policy document."""

    def __init__(self, errors: list[PolicyError]) -> None:
        super().__init__("invalid policy:\n  " + "\n  ".join(str(e) for e in errors))
        self.errors = errors


def check_pattern(pattern: str) -> str | None:
    """Why a resource pattern is invalid, or None. `*` alone, or `mcp:SERVER:NAME` globs."""
    if pattern == "*":
        return None
    parts = pattern.split(":")
    if len(parts) != 3:
        return (f"resource pattern {pattern!r} must be '*' or 'mcp:SERVER:NAME' (3 segments; "
                "percent-encode ':' inside resource URIs)")
    if parts[0] != "mcp":
        return f"resource pattern {pattern!r} must start with 'mcp:'"
    for part in parts[1:]:
        if not part:
            return f"resource pattern {pattern!r} has an empty segment"
        if "**" in part:
            return f"resource pattern {pattern!r}: '**' is not supported ('*' never crosses ':')"
        if any(c.isspace() for c in part):
            return f"resource pattern {pattern!r} contains whitespace"
    return None


def check_pointer(pointer: str) -> str | None:
    """Why a JSON pointer is invalid, or None."""
    if not pointer.startswith("/"):
        return f"JSON pointer {pointer!r} must start with '/'"
    if re.search(r"~(?![01])", pointer):
        return f"JSON pointer {pointer!r} has a bad '~' escape (only ~0 and ~1)"
    return None


class Checker:
    """Collects errors while reading typed fields."""

    def __init__(self) -> None:
        self.errors: list[PolicyError] = []

    def err(self, path: str, line: int | None, message: str) -> None:
        self.errors.append(PolicyError(path, line, message))

    def mapping(self, value: Any, path: str, line: int | None, keys: tuple[str, ...] | None) -> LMap | None:
        if not isinstance(value, LMap):
            self.err(path, line, f"expected a mapping, got {kind(value)}")
            return None
        if keys is not None:
            for key in value:
                if key not in keys:
                    self.err(join(path, key), value.key_lines[key],
                             f"unknown key {key!r} (allowed: {', '.join(keys)})")
        return value

    def string(self, value: Any, path: str, line: int | None) -> str | None:
        if not isinstance(value, str) or not value:
            got = "an empty string" if value == "" else kind(value)
            self.err(path, line, f"expected a non-empty string, got {got}")
            return None
        return value

    def strings(self, value: Any, path: str, line: int | None, one_ok: bool = False,
                non_empty: bool = False) -> tuple[str, ...] | None:
        """A list of non-empty strings (or one string when `one_ok`); `non_empty` refuses `[]`."""
        if one_ok and isinstance(value, str):
            return (value,) if self.string(value, path, line) else None
        if not isinstance(value, LList):
            self.err(path, line, f"expected a list of strings, got {kind(value)}")
            return None
        if non_empty and not value:
            # In a condition `[]` can never hold: a deny rule written this way would silently do nothing.
            self.err(path, line, "must name at least one value (an empty list never matches)")
            return None
        out = []
        for i, item in enumerate(value):
            s = self.string(item, f"{path}[{i}]", value.item_lines[i])
            if s is not None:
                out.append(s)
        return tuple(out) if len(out) == len(value) else None


def json_problem(value: Any) -> str | None:
    """Why a YAML value is not plain JSON (and so could never equal a tool argument), or None.

    YAML reads `2024-01-01` as a date, `.nan`/`.inf` as floats JSON has no form for, `!!binary` as
    bytes and `!!set` as a set: none of them can equal a JSON argument, so an `equals`/`in` on them
    would never hold and a deny rule would silently never fire.
    """
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a JSON number"
    if isinstance(value, list):
        for item in value:
            if problem := json_problem(item):
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"mapping key {key!r} is not a string (JSON object keys are strings)"
            if problem := json_problem(item):
                return problem
        return None
    return f"{type(value).__name__} value {value!r} is not JSON (quote it to compare as a string)"


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {LMap: "a mapping", LList: "a list", bool: "a boolean", str: "a string"}.get(
        type(value), type(value).__name__)


