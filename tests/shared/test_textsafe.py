"""Terminal-safe text: every human CLI output escapes controls, bidi and format characters."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from mcpgw.client import output
from mcpgw.client.fanout import render
from mcpgw.client.progress import Progress
from shared.audit_cli import render_csv, render_table
from shared.textsafe import _UNSAFE, printable

FORGED = "echo\n2026-12-07 10:00:00  gateway  mcp_request  admin  allow"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain tool_name-1", "plain tool_name-1"),
        ("ünïcode ok — 東京", "ünïcode ok — 東京"),
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x07bell\x00nul\x7fdel", "\\x07bell\\x00nul\\x7fdel"),
        ("c1\x85\x9b", "c1\\x85\\x9b"),
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),
        ("iso\u2066late\u2069", "iso\\u2066late\\u2069"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("lone\ud800", "lone\\ud800"),
        ("C:\\path\\n", "C:\\path\\n"),  # backslashes stay as they are
        (42, "42"),
    ],
)
def test_printable(text, shown):
    assert printable(text) == shown


def test_keep_newlines_for_blocks_still_escapes_the_rest():
    assert printable("line 1\n\tline 2\r\x1b[2J", keep_newlines=True) == "line 1\n\tline 2\\r\\x1b[2J"


def test_every_control_format_and_separator_character_is_escaped():
    """The hard-coded ranges cover the Unicode database of this Python (Cc, Cf, Zl, Zp, Cs)."""
    missed = [hex(cp) for cp in range(sys.maxunicode + 1)
              if unicodedata.category(chr(cp)) in {"Cc", "Cf", "Zl", "Zp", "Cs"} and not _UNSAFE.match(chr(cp))]
    assert missed == []


def test_audit_table_cannot_be_forged_or_recoloured():
    doc = {"timestamp": "2026-12-07T10:00:00+00:00", "tool_name": FORGED, "user": "\x1b[8mhidden",
           "mcp_server": "db\u202e"}
    text = render_table([doc])
    assert text.count("\n") == 2  # header + one row, no forged line
    assert "\x1b" not in text and "\u202e" not in text
    assert "echo\\n2026-12-07" in text and "\\x1b[8mhidden" in text


def test_audit_csv_escapes_too():
    text = render_csv([{"tool_name": FORGED, "user": "\x1b[31m"}])
    assert text.count("\n") == 2 and "\x1b" not in text


def test_client_tables_and_results_are_escaped():
    table = output.table(["TOOL\n", "DESCRIPTION"], [[FORGED, output.one_line("d\x1b[1m", 70)], [["a\n", "b"], None]])
    assert table.count("\n") == 2 and "\x1b" not in table and "TOOL\\n" in table
    block = output.content_text({"content": [{"type": "text", "text": "ok\nline 2 \x1b]0;title\x07"}]})
    assert block == "ok\nline 2 \\x1b]0;title\\x07"


def test_broadcast_summary_and_progress_are_escaped():
    body = {"tool_name": "echo\x1b[2J", "results": {"srv\nforged": {"content": []}},
            "errors": {"x": "boom\x1b[31m\nnext"}, "total_servers": 2}
    for fmt in ("table", "full"):
        assert "\x1b" not in render(body, fmt)
    lines = Progress(_Null(), "echo\n", ["a\x1b[1m"]).lines()
    assert len(lines) == 2 and all("\x1b" not in line and "\n" not in line for line in lines)


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
