"""Spreadsheet-safe CSV cells (shared/csvsafe.py), table-driven."""

from __future__ import annotations

import csv
import io

import pytest

from shared.csvsafe import cell, table


@pytest.mark.parametrize("text", [
    "=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "\t", "\r", "\n", " =1", "   +1", "\u3000=1",
    "\u00a0-1", "\uff1d1", "\uff0b1", "\uff0d1", "\uff20x", "\ufe661", "\ufe621", "\ufe631", "\ufe6bx", "\u22121",
])
def test_a_cell_a_spreadsheet_could_run_gets_an_apostrophe(text: str) -> None:
    assert cell(text) == "'" + text


@pytest.mark.parametrize("value", ["echo", "a=b", "x-1", "", "'=already text", "1", "\u200b=1"])
def test_other_cells_are_left_alone(value: str) -> None:
    assert cell(value) == value


def test_none_lists_and_numbers_become_text() -> None:
    assert (cell(None), cell(["admin", "ops"]), cell(["=1", "x"]), cell(3)) == ("", "admin, ops", "'=1, x", "3")


def test_table_quotes_every_cell_and_reads_back_as_the_safe_values() -> None:
    text = table(["a", "b"], [{"a": "=1", "b": 'x,"y"\nz'}, {"a": None}])
    assert text.splitlines()[0] == '"a","b"'
    assert list(csv.DictReader(io.StringIO(text, newline=""))) == [{"a": "'=1", "b": 'x,"y"\nz'}, {"a": "", "b": ""}]
