"""CSV cells a spreadsheet will not run as formulas (OWASP "CSV Injection").

The decisions export holds callers' text (a tool name a caller asked for is audited, denied or
not). A spreadsheet runs a cell as a formula when it starts with = + - @, and Excel and LibreOffice
also when TAB, CR or LF come first, when leading spaces precede the sign, or when the sign is a
fullwidth or small form (＝ ＋ － ＠, ﹦ ﹢ ﹣ ﹫: CJK input methods type them, and some locales
read them as formula starts). Such a cell gets a leading apostrophe: shown as text, the value
still readable. Every cell is quoted too (OWASP's second rule), so a separator or quote inside a
value cannot start a new cell.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_STARTS = frozenset("=+-@\u2212")  # NFKC folds the fullwidth and small forms onto these
LEADING_CONTROLS = frozenset("\t\r\n")


def cell(value: Any) -> str:
    """The text of one cell, with an apostrophe in front when a spreadsheet could run it."""
    if value is None:
        return ""
    text = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    if text[:1] in LEADING_CONTROLS:
        return "'" + text
    first = text.lstrip()[:1]
    if first and unicodedata.normalize("NFKC", first)[:1] in FORMULA_STARTS:
        return "'" + text
    return text


def table(columns: list[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A CSV document (header, then one line per row), every cell quoted and made safe."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in columns])
    return buf.getvalue()
