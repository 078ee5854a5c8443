"""Resource naming (`mcp:{server}:{tool}`), segment globs and argument conditions: pure functions.

A `*` in a pattern matches any run of characters inside one `:`-separated segment and never
crosses a `:`. Resource URIs are percent-encoded so that a URI's own `:` cannot form segments.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any
from urllib.parse import quote

from pdp.policy.model import ArgCondition, Request
from pdp.policy.values import any_same_value, canonical_text, same_value
from shared.authzen.tables import RESERVED_PREFIXES

PREFIX = "mcp"
RESOURCE_PREFIX, PROMPT_PREFIX, METHOD_PREFIX = RESERVED_PREFIXES  # a tool name may start with none (the wire)
_MISSING = object()
# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15.1): characters that
# render as nothing. Not all are category Cf: U+034F, the variation selectors and the Mongolian free
# variation selectors are Mn, the Hangul fillers Lo; IDNA maps them to nothing, so `att\u034facker.com`
# is attacker.com to a backend's HTTP client.
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")


def encode_uri(uri: str) -> str:
    """Percent-encode a resource URI: everything but unreserved characters and `/`."""
    return quote(uri, safe="/")


def resource_string(req: Request) -> str:
    """The policy resource a request is checked on."""
    if req.kind == "server":
        return f"{PREFIX}:{req.server}:*"
    if req.kind == "tool":
        return f"{PREFIX}:{req.server}:{req.name}"
    if req.kind == "resource":
        return f"{PREFIX}:{req.server}:{RESOURCE_PREFIX}{encode_uri(req.name or '')}"
    if req.kind == "prompt":
        return f"{PREFIX}:{req.server}:{PROMPT_PREFIX}{req.name}"
    if req.kind == "method":
        return f"{PREFIX}:{req.server}:{METHOD_PREFIX}{req.name}"
    raise ValueError(f"unknown request kind {req.kind!r}")


@functools.lru_cache(maxsize=65536)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A fully anchored regex for a segment glob (`*` alone matches everything)."""
    if pattern == "*":
        return re.compile(r".*", re.S)
    return re.compile("[^:]*".join(re.escape(part) for part in pattern.split("*")), re.S)


def glob_match(value: str, pattern: str) -> bool:
    """Whether `value` matches the segment glob `pattern` entirely."""
    return glob_regex(pattern).fullmatch(value) is not None


@functools.lru_cache(maxsize=4096)
def full_regex(pattern: str) -> re.Pattern[str]:
    """A user regex, compiled once (always used with fullmatch).

    DOTALL: `.` matches a newline too. Without it `.*drop table.*` never matches an argument whose
    text has a line break before the match, so a deny rule is bypassed by adding a newline.
    """
    return re.compile(pattern, re.DOTALL)


def regex_full_match(value: str, pattern: str) -> bool:
    """Whether `value` matches the regex `pattern` as a whole, not just a prefix."""
    return full_regex(pattern).fullmatch(value) is not None


def resolve_pointer(doc: Any, pointer: str) -> Any:
    """The value at an RFC 6901 JSON pointer, or _MISSING."""
    node = doc
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if token not in node:
                return _MISSING
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or (token != "0" and token.startswith("0")) or int(token) >= len(node):
                return _MISSING
            node = node[int(token)]
        else:
            return _MISSING
    return node


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: `true` is not `1`, `1` equals `1.0`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def normalize(value: Any, steps: tuple[str, ...]) -> Any:
    """A string with the named normalisations applied in canonical order; other values unchanged.

    `strip_format` drops what renders as nothing: every Default_Ignorable_Code_Point (zero-width
    space and joiners, BOM, bidi controls, soft hyphen, U+034F, variation selectors, tags) and every
    other format character (category Cf); `nfkc` folds compatibility forms (fullwidth letters,
    ligatures); `casefold` is full Unicode case folding (NFKC is applied again after it, as Unicode
    recommends for caseless matching); `trim` strips leading and trailing whitespace.
    """
    if not steps or not isinstance(value, str):
        return value
    if "strip_format" in steps:
        value = _IGNORABLE.sub("", value)
        if not value.isascii():
            value = "".join(ch for ch in value if unicodedata.category(ch) != "Cf")
    if "nfkc" in steps:
        value = unicodedata.normalize("NFKC", value)
    if "casefold" in steps:
        value = value.casefold()
        if "nfkc" in steps:
            value = unicodedata.normalize("NFKC", value)
    if "trim" in steps:
        value = value.strip()
    return value


def arg_holds(cond: ArgCondition, arguments: dict[str, Any] | None) -> bool:
    """Whether one argument condition holds for the request's tool arguments (None = none given).

    Numbers compare by value (`1000000`, `1000000.0` and `1e6` are equal; booleans are not
    numbers); strings compare after the condition's normalisations, if any. A deny rule's condition
    (`by_value`) also holds for every spelling a lenient backend reads as its operand: `"1e6"` and
    `" 1_000_000 "` for 1000000, `"02024"` for `"2024"`, `"yes"` for true (values.py).
    """
    value = resolve_pointer(arguments if arguments is not None else {}, cond.pointer)
    if cond.op == "absent":
        return (value is _MISSING) is bool(cond.value)
    if value is _MISSING:
        return False
    value = normalize(value, cond.normalize)
    if cond.op == "equals":
        return json_equal(value, cond.value) or (cond.by_value and same_value(value, cond.value))
    if cond.op == "in":
        return (any(json_equal(value, option) for option in cond.value)
                or (cond.by_value and any_same_value(value, cond.value)))
    if cond.op == "pattern":
        if isinstance(value, str) and regex_full_match(value, cond.value):
            return True
        text = canonical_text(value) if cond.by_value else None
        return text is not None and regex_full_match(text, cond.value)
    raise ValueError(f"unknown argument operator {cond.op!r}")
