"""Text safe to print to a terminal: one function every human (non-JSON) CLI output goes through.

Values shown by the CLIs come from callers, backends and the audit table: a tool name holding a
newline forged a table line, ESC sequences recoloured or rewrote the terminal, and bidi overrides
or zero-width characters make text read differently from what it is. `printable` escapes every
such character visibly, Python style (`\\n`, `\\x1b`, `\\u202e`): C0 and C1 controls, DEL, line and
paragraph separators, Unicode format characters (bidi controls, zero-width characters, BOM, tag
characters) and lone surrogates: Unicode categories Cc, Cf, Zl, Zp and Cs. Backslashes are kept as
they are, so Windows paths and regexes stay readable; `--json` prints exact values.
"""

from __future__ import annotations

import re

# Unicode categories Cc, Cf, Zl, Zp, Cs as code point ranges (tests/shared/test_textsafe.py checks
# this list against `unicodedata` over the whole code space).
_RANGES = (
    (0x00, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD),
    (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x180E, 0x180E), (0x200B, 0x200F),
    (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xD800, 0xDFFF), (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)
_CLASS = "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in _RANGES)
_UNSAFE = re.compile(f"[{_CLASS}]")
_UNSAFE_KEEP_LINES = re.compile(f"(?![\\n\\t])[{_CLASS}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(value: object, *, keep_newlines: bool = False) -> str:
    """`str(value)` with control, format and separator characters escaped (see the module doc).

    `keep_newlines` keeps `\\n` and `\\t` as they are, for multi-line text shown as a block (a
    tool's output); everything else, `\\r` included, is still escaped.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text  # the common case: nothing to escape
    return (_UNSAFE_KEEP_LINES if keep_newlines else _UNSAFE).sub(_escape, text)
