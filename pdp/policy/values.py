"""Argument values as a backend reads them: lenient number and boolean parses, and the comparisons a
deny rule makes with them. Pure.

A tool's schema may admit a string where the backend wants a number (pydantic's `Decimal` is
`anyOf: [number, string]`; every prompt argument is a string): the backend then parses the text and
acts on the number. So a deny rule's `equals`/`in` compares *by value*: the argument matches when
any parse a backend may make of it gives the rule's value. The parse is the union of what Python
(`int()`, `float()`, `Decimal()`, pydantic lax mode) and JavaScript (`Number()`) accept: surrounding
whitespace, a sign, leading zeros, `_` between digits, a fraction, an exponent, Unicode decimal
digits, `0x`/`0o`/`0b` integers, the empty string as 0 (JavaScript). Booleans read as pydantic does
(`"yes"`, `"on"`, `"1"`, 1 …). Allow rules keep exact JSON equality: a spelling the rule did not
name is never allowed, so nothing becomes looser than the value's meaning.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

# Python's int(text, 0) spelling of 0x/0o/0b integers: each base with its own digits (an "0b2" is no
# number, not a crash), an `_` between digits or after the prefix.
_RADIX = re.compile(r"([+-]?)0(?:x((?:_?[0-9a-f])+)|o((?:_?[0-7])+)|b((?:_?[01])+))")
_BASES = (16, 8, 2)
# JavaScript's StrWhiteSpaceChar (WhiteSpace and LineTerminator), which Number() trims; str.isspace()
# covers all but U+FEFF, listed whole so the set is plain to check.
_JS_SPACE = frozenset("\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                      "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff")
# pydantic-core's str -> bool table (compared after trimming and case folding)
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
MAX_TEXT = 1 << 16  # longer text is compared as spelled (Decimal parses it in linear time anyway)


def _ascii_digits(text: str) -> str | None:
    """`text` with Unicode decimal digits as ASCII and whitespace trimmed (Python's as int() does,
    JavaScript's as Number() does), or None when it holds anything a number cannot (so most strings
    are rejected without a parse)."""
    if text.isascii():
        return text.strip()
    out = []
    for ch in text:
        if ch < "\x80":
            out.append(ch)
        elif ch.isspace() or ch in _JS_SPACE:
            out.append(" ")
        else:
            digit = unicodedata.decimal(ch, None)
            if digit is None:
                return None
            out.append(str(digit))
    return "".join(out).strip()


def as_number(value: Any) -> Decimal | None:
    """The number a lenient backend reads `value` as (a JSON number, a boolean as 0/1, or numeric
    text), or None when no backend reads it as a number."""
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, int | float):
        try:
            return Decimal(value)
        except (InvalidOperation, ValueError, OverflowError):
            return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        return None
    text = _ascii_digits(value)
    if text is None:
        return None
    if not text:
        return Decimal(0)  # JavaScript: Number("") and Number("  ") are 0
    radix = _RADIX.fullmatch(text.lower())
    if radix is not None:
        sign, *spelled = radix.groups()
        base, digits = next((b, d) for b, d in zip(_BASES, spelled, strict=True) if d is not None)
        whole = int(digits.replace("_", ""), base)
        return Decimal(-whole if sign == "-" else whole)
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return None if number.is_nan() else number


def as_bool(value: Any) -> bool | None:
    """The boolean pydantic's lax mode reads `value` as, or None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        text = value.strip().casefold()
        return True if text in _TRUE else False if text in _FALSE else None
    return None


def same_value(value: Any, operand: Any) -> bool:
    """Whether some lenient backend reads `value` as `operand` (a deny rule's `equals`).

    Numbers compare exactly (Decimal) and as doubles, so `"0.1"` is `0.1` for a float backend too;
    a boolean operand matches what pydantic reads as that boolean. Other operands: False (the caller
    has compared them as JSON already)."""
    return any_same_value(value, (operand,))


def any_same_value(value: Any, operands: Iterable[Any]) -> bool:
    """`same_value` for any of `operands` (a deny rule's `in`), the value read once."""
    number: Decimal | None = None
    flag: bool | None = None
    double: float | None = None
    read = False
    for operand in operands:
        if not read:
            number, flag, read = as_number(value), as_bool(value), True
            double = _double(number)
        if isinstance(operand, bool):
            if flag is operand:
                return True
            continue
        wanted = as_number(operand)
        if wanted is None or number is None:
            continue
        if number == wanted or (double is not None and double == _double(wanted)):
            return True
    return False


def _double(number: Decimal | None) -> float | None:
    """The double a float backend reads; None for no number or one beyond doubles' range."""
    if number is None or not number.is_finite() or abs(number.adjusted()) > 400:
        return None
    return float(number)


def canonical_text(value: Any) -> str | None:
    """A number's plain decimal spelling (`2024`, `0.5`, `-3`), for a deny rule's `pattern`; None
    when `value` is not a number any backend reads."""
    if isinstance(value, bool):
        return None
    number = as_number(value)
    if number is None or not number.is_finite() or abs(number.adjusted()) > 1000:
        return None
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")
