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


# JavaScript's Number() trims WhiteSpace and LineTerminator: every one of them, as a space
JS_SPACE = ["\t", "\n", "\v", "\f", "\r", " ", "\u00a0", "\u1680", *map(chr, range(0x2000, 0x200B)), "\u2028",
            "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff"]


@pytest.mark.parametrize("space", JS_SPACE, ids=lambda c: f"U+{ord(c):04X}")
def test_javascript_whitespace_around_a_number_is_the_number(space):
    assert as_number(f"{space}5") == 5 and as_number(f"5{space}") == 5 and same_value(f"{space}5{space}", 5)
    assert as_number(f"5{space}5") is None  # inside, it is no number


def test_a_deny_by_value_holds_for_a_byte_order_mark_before_the_number():
    from pdp.policy import load_engine

    engine = load_engine(DENY_FIVE.format(operand=5), "v1")
    assert not engine.decide(_transfer("\ufeff5")).allowed
    assert engine.decide(_transfer("6")).allowed


DENY_FIVE = """
roles:
  banker:
    permissions: [{{resource: "*", actions: ["*"]}}]
user_roles:
  admin@example.com: [banker]
rules:
  - name: no such transfers
    condition: {{tool_name: transfer, arguments: {{/amount: {{equals: {operand}}}}}}}
    action: deny
    priority: 100
default_policy: deny
"""


def _transfer(amount):
    from pdp.policy import Request

    return Request("admin@example.com", "invoke_tool", "bank", "tool", "transfer", (), (), {"amount": amount})


# Each base has its own digits: a digit of another base makes no number (and no crash)
@pytest.mark.parametrize("text,number", [
    ("0b101", 5), ("0B1_01", 5), ("0b_101", 5), ("-0b101", -5), ("0o17", 15), ("0O_1_7", 15), ("0xfF", 255),
    ("0x_f_f", 255), ("0b2", None), ("0b102", None), ("0o8", None), ("0o79", None), ("0xg", None), ("0b", None),
    ("0b1__0", None), ("0b10_", None), ("0x_", None),
])
def test_radix_integers_read_with_their_own_digits(text, number):
    assert as_number(text) == number
    assert same_value(text, 5) is (number == 5)


@pytest.mark.parametrize("operand", ['"0b2"', '"0o9"', '"0x"', '"0b1__0"'])
def test_a_policy_operand_that_is_no_number_decides_as_text(operand):
    from pdp.policy import load_engine

    engine = load_engine(DENY_FIVE.format(operand=operand), "v1")  # loads: compared as JSON only
    text = operand.strip('"')
    assert not engine.decide(_transfer(text)).allowed  # the very spelling is denied
    for amount in ("x", 5, "5", "0b101"):
        assert engine.decide(_transfer(amount)).allowed  # every other call is decided, none crashes
