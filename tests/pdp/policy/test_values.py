"""Lenient number and boolean reads of argument values, and deny-rule comparisons by value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pdp.policy.values import as_bool, as_number, canonical_text, same_value

# What Python (int/float/Decimal, pydantic lax) or JavaScript (Number) reads as 1000000
MILLION = ["1000000", " 1000000 ", "1_000_000", "+1000000", "01000000", "1e6", "1E+6", "1000000.0",
           "1000000.", "\t1000000\n", "\uff11\uff10\uff10\uff10\uff10\uff10\uff10", "\u0661\u0660\u0660\u0660\u0660\u0660\u0660",
           "_1000000", "1000000_", "1__000_000",  # Decimal() (and so pydantic's Decimal) skips any underscores
           "0xf4240", "0o3641100", "0b11110100001001000000", 1000000, 1000000.0, 1e6]


@pytest.mark.parametrize("value", MILLION, ids=repr)
def test_every_spelling_a_backend_reads_as_the_number_is_the_number(value):
    assert as_number(value) == 1000000
    assert same_value(value, 1000000)
    assert same_value(value, "1000000")  # a prompt rule's operand is text
    assert canonical_text(value) == "1000000"


@pytest.mark.parametrize("value", ["1000001", "1e7", "-1000000", "1000000.5", "1 000 000", "1__000",
                                    "1,000,000", "one million", "0x", "nan", "NaN", "1e6x", [1000000],
                                    {"v": 1000000}, None])
def test_other_values_are_not_the_number(value):
    assert not same_value(value, 1000000)


def test_numbers_compare_exactly_and_as_doubles():
    assert same_value("0.1", 0.1)  # a float backend reads 0.1; Decimal(0.1) alone would say no
    assert same_value("0.10", "0.1") and same_value("-0", 0)
    assert not same_value("0.2", 0.1)
    assert as_number("") == 0 and same_value("  ", 0)  # JavaScript: Number("") is 0
    assert as_number("1e999999999999999999999") is None or not same_value("1e999999999999999999999", 1)


@pytest.mark.parametrize("value,expected", [
    (True, True), ("true", True), (" Yes ", True), ("on", True), ("1", True), (1, True), ("t", True),
    (False, False), ("no", False), ("OFF", False), ("0", False), (0, False), ("f", False),
    ("maybe", None), (2, None), (None, None), ([], None),
])
def test_booleans_read_as_pydantic_reads_them(value, expected):
    assert as_bool(value) is expected
    assert same_value(value, True) is (expected is True)


def test_booleans_are_numbers_to_a_lax_backend_but_words_are_not():
    assert same_value(True, 1) and same_value(False, 0)
    assert not same_value("yes", 1)


def test_non_numeric_operands_never_match_by_value():
    assert not same_value("admin", "admin")  # compared as JSON by the caller, not here
    assert not same_value("1", "one")


@pytest.mark.parametrize("value,text", [(2024, "2024"), ("02024", "2024"), ("2024.0", "2024"), ("0.50", "0.5"),
                                        ("-3e0", "-3"), ("1e-3", "0.001"), (True, None), ("x", None),
                                        ("1e5000", None)])
def test_canonical_text(value, text):
    assert canonical_text(value) == text


def test_the_parse_is_exact():
    assert as_number("123456789012345678901234567890") == Decimal("123456789012345678901234567890")


def test_a_long_value_against_a_long_in_list_is_read_once():
    import time

    from pdp.policy.values import any_same_value

    value, options = "\u0661" * 60_000, list(range(2000))  # 60,000 Arabic-Indic digits: one slow read
    start = time.perf_counter()
    assert not any_same_value(value, options)
    assert time.perf_counter() - start < 1.0
