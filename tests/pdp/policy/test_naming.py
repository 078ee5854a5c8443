"""Resource naming, segment globs, regex full match and JSON pointers (pure functions)."""

from __future__ import annotations

import pytest

from pdp.policy.model import ArgCondition, Request
from pdp.policy.naming import arg_holds, encode_uri, glob_match, regex_full_match, resource_string


@pytest.mark.parametrize("value,pattern,expected", [
    ("mcp:a:read_only_tool", "mcp:*:read_only_tool", True),
    ("mcp:a:b:read_only_tool", "mcp:*:read_only_tool", False),  # '*' never crosses ':'
    ("mcp:dev-1:x", "mcp:dev-*:*", True),
    ("mcp:dev:x", "mcp:dev-*:*", False),
    ("mcp:a:b:c", "mcp:a:*", False),
    ("mcp:a:b", "*", True),
    ("mcp:a:b:c", "*", True),
    ("mcp:a.b:x", "mcp:a?b:x", False),  # no other glob metacharacters
    ("mcp:axb:x", "mcp:a.b:x", False),  # '.' is literal
    ("mcp:s:*", "mcp:s:*", True),  # server-level resource
    ("mcp:s:*", "mcp:s:t", False),
    ("mcp:s:t\nx", "mcp:s:t", False),
])
def test_glob(value, pattern, expected):
    assert glob_match(value, pattern) is expected


@pytest.mark.parametrize("value,pattern,expected", [
    ("db_delete", ".*delete.*|.*drop.*", True),
    ("drop", ".*delete.*|.*drop.*", True),
    ("deleted_not", "delete", False),  # full match, not prefix
    ("xdelete", "delete", False),  # not search either
    ("read", "(?i)READ", True),
    ("adrop", "delete|drop", False),  # the alternation is anchored as a whole, not `^delete|drop$`
    ("deletex", "delete|drop", False),
    ("drop", "delete|drop", True),
    ("db\ndelete", ".*delete.*", True),  # DOTALL: a newline does not hide the match
    ("db\ndelete", "(?-s:.*delete.*)", False),  # opt out per group
])
def test_regex_full_match(value, pattern, expected):
    assert regex_full_match(value, pattern) is expected


@pytest.mark.parametrize("req,expected", [
    (Request("u", "list_tools", "s"), "mcp:s:*"),
    (Request("u", "invoke_tool", "s", "tool", "t"), "mcp:s:t"),
    (Request("u", "get_prompt", "s", "prompt", "p"), "mcp:s:prompt/p"),
    (Request("u", "read_resource", "s", "resource", "file:///a/b c"), "mcp:s:resource/file%3A///a/b%20c"),
    (Request("u", "read_resource", "s", "resource", "x:*%"), "mcp:s:resource/x%3A%2A%25"),
])
def test_resource_string(req, expected):
    assert resource_string(req) == expected
    assert resource_string(req).count(":") == 2


def test_encoded_uri_has_no_colon_or_star():
    assert ":" not in encode_uri("urn:a:b*c") and "*" not in encode_uri("urn:a:b*c")


@pytest.mark.parametrize("cond,args,expected", [
    (ArgCondition("/a", "equals", 1), {"a": 1}, True),
    (ArgCondition("/a", "equals", 1), {"a": 1.0}, True),
    (ArgCondition("/a", "equals", 1), {"a": True}, False),
    (ArgCondition("/a", "equals", True), {"a": 1}, False),
    (ArgCondition("/a", "equals", {"x": [1]}), {"a": {"x": [1]}}, True),
    (ArgCondition("/a", "equals", 1), None, False),
    (ArgCondition("/a", "in", ["x", "y"]), {"a": "y"}, True),
    (ArgCondition("/a", "in", ["x", "y"]), {"a": "z"}, False),
    (ArgCondition("/a", "pattern", "x.*"), {"a": "xyz"}, True),
    (ArgCondition("/a", "pattern", "x.*"), {"a": "axyz"}, False),
    (ArgCondition("/a", "pattern", "x.*"), {"a": 5}, False),
    (ArgCondition("/q", "pattern", "(?i).*drop\\s+table.*"), {"q": "select 1;\nDROP TABLE users"}, True),
    (ArgCondition("/a", "absent", True), {}, True),
    (ArgCondition("/a", "absent", True), None, True),
    (ArgCondition("/a", "absent", True), {"a": None}, False),
    (ArgCondition("/a", "absent", False), {"a": None}, True),
    (ArgCondition("/l/1", "equals", "b"), {"l": ["a", "b"]}, True),
    (ArgCondition("/l/01", "equals", "b"), {"l": ["a", "b"]}, False),
    (ArgCondition("/l/5", "absent", True), {"l": ["a"]}, True),
    (ArgCondition("/m~0n/o~1p", "equals", 1), {"m~n": {"o/p": 1}}, True),
    (ArgCondition("/a/b", "equals", 1), {"a": "str"}, False),
    # Numbers compare by value however they are written; a string is never a number.
    (ArgCondition("/n", "equals", 1000000), {"n": 1e6}, True),
    (ArgCondition("/n", "equals", 1000000), {"n": 1000000.0}, True),
    (ArgCondition("/n", "equals", 1e6), {"n": 1000000}, True),
    (ArgCondition("/n", "in", [5, 1000000]), {"n": 1e6}, True),
    (ArgCondition("/n", "equals", 1000000), {"n": "1000000"}, False),
    (ArgCondition("/n", "equals", 1), {"n": True}, False),
    (ArgCondition("/n", "equals", 0), {"n": False}, False),
    # Without normalize a string compares literally; with it, spelling variants are one value.
    (ArgCondition("/w", "equals", "attacker"), {"w": "Attacker"}, False),
    (ArgCondition("/w", "equals", "attacker", ("strip_format", "nfkc", "casefold", "trim")), {"w": "Attacker"}, True),
    (ArgCondition("/w", "equals", "attacker", ("strip_format", "nfkc", "casefold", "trim")), {"w": "attacker "}, True),
    (ArgCondition("/w", "equals", "attacker", ("strip_format", "nfkc", "casefold", "trim")), {"w": "\tattacker\n"}, True),
    (ArgCondition("/w", "equals", "attacker", ("strip_format", "nfkc", "casefold", "trim")), {"w": "att\u200backer"}, True),
    (ArgCondition("/w", "equals", "attacker", ("strip_format", "nfkc", "casefold", "trim")), {"w": "\u2060at\u00adtacker\ufeff"}, True),
    (ArgCondition("/w", "equals", "attacker", ("strip_format", "nfkc", "casefold", "trim")), {"w": "ａｔｔａｃｋｅｒ"}, True),
    (ArgCondition("/w", "equals", "attacker", ("strip_format", "nfkc", "casefold", "trim")), {"w": "ATTACKER"}, True),
    (ArgCondition("/w", "equals", "strasse", ("casefold",)), {"w": "Straße"}, True),
    (ArgCondition("/w", "equals", "attacker", ("strip_format", "nfkc", "casefold", "trim")), {"w": "attackers"}, False),
    (ArgCondition("/w", "equals", "attacker", ("casefold",)), {"w": "attacker "}, False),
    (ArgCondition("/w", "equals", "attacker", ("trim",)), {"w": "att\u200backer"}, False),
    (ArgCondition("/w", "in", ["x", "attacker"], ("strip_format", "nfkc", "casefold", "trim")), {"w": " ATTACKER"}, True),
    (ArgCondition("/w", "pattern", "att.*", ("strip_format", "nfkc", "casefold", "trim")), {"w": "\u200bATTack"}, True),
    (ArgCondition("/w", "equals", 1, ("strip_format", "nfkc", "casefold", "trim")), {"w": 1.0}, True),
])
def test_arg_holds(cond, args, expected):
    assert arg_holds(cond, args) is expected


ALL = ("strip_format", "nfkc", "casefold", "trim")
HOST = ArgCondition("/host", "equals", "attacker.com", ALL)  # operands are stored normalised
IGNORABLE = ["\u034f", "\ufe0f", "\ufe00", "\u180b", "\u180d", "\U000e0100", "\u00ad", "\u115f", "\u3164",
             "\u200b", "\u2060", "\ufeff", "\U000e0041", "\U0001d173"]


@pytest.mark.parametrize("ch", IGNORABLE, ids=[f"U+{ord(c):04X}" for c in IGNORABLE])
def test_strip_format_drops_every_default_ignorable_code_point(ch):
    """A backend's HTTP client (IDNA) maps what renders as nothing to nothing: so does strip_format."""
    host = f"att{ch}acker.com"
    assert arg_holds(HOST, {"host": host}), f"U+{ord(ch):04X} slips past a fully normalising deny rule"


@pytest.mark.parametrize("ch", IGNORABLE[:5], ids=[f"U+{ord(c):04X}" for c in IGNORABLE[:5]])
def test_idna_maps_these_ignorable_characters_to_nothing(ch):
    assert f"att{ch}acker.com".encode("idna") == b"attacker.com"  # what a backend's HTTP client connects to


@pytest.mark.parametrize("ch", ["\u0600", "\ufff9", "\u00e9", "\u0301"])
def test_strip_format_keeps_visible_characters_and_still_drops_other_format_characters(ch):
    from pdp.policy.naming import normalize

    kept = normalize(f"a{ch}b", ("strip_format",))
    assert kept == ("ab" if ch in ("\u0600", "\ufff9") else f"a{ch}b")  # Cf dropped; letters and marks kept


DENY_AMOUNT = ArgCondition("/amount", "equals", 1000000, by_value=True)
ALLOW_AMOUNT = ArgCondition("/amount", "equals", 1000000)


@pytest.mark.parametrize("amount", ["1000000", "1e6", " 1000000 ", "1_000_000", "+1000000", "01000000",
                                    "1000000.0", "0xf4240", 1000000.0])
def test_a_deny_rule_compares_by_value_an_allow_rule_exactly(amount):
    assert arg_holds(DENY_AMOUNT, {"amount": amount})
    assert arg_holds(ALLOW_AMOUNT, {"amount": amount}) is (amount == 1000000.0)  # no spelling it did not name


@pytest.mark.parametrize("cond,args,expected", [
    (ArgCondition("/y", "equals", "2024", ALL, by_value=True), {"y": "2_024"}, True),
    (ArgCondition("/y", "equals", "2024", ALL, by_value=True), {"y": 2024}, True),
    (ArgCondition("/y", "equals", "2024", ALL, by_value=True), {"y": "2025"}, False),
    (ArgCondition("/y", "in", ["x", 5], by_value=True), {"y": "5.0"}, True),
    (ArgCondition("/y", "in", ["x", 5], by_value=True), {"y": "x"}, True),
    (ArgCondition("/y", "in", ["x", 5], by_value=True), {"y": "6"}, False),
    (ArgCondition("/f", "equals", True, by_value=True), {"f": "yes"}, True),
    (ArgCondition("/f", "equals", True), {"f": "yes"}, False),
    (ArgCondition("/y", "pattern", "20[0-9][0-9]", by_value=True), {"y": 2024}, True),
    (ArgCondition("/y", "pattern", "20[0-9][0-9]", by_value=True), {"y": "+2024.0"}, True),
    (ArgCondition("/y", "pattern", "20[0-9][0-9]"), {"y": "+2024.0"}, False),
    (ArgCondition("/n", "equals", "admin", ALL, by_value=True), {"n": "ADMIN"}, True),
    (ArgCondition("/n", "equals", "admin", ALL, by_value=True), {"n": "admin2"}, False),
])
def test_by_value_conditions(cond, args, expected):
    assert arg_holds(cond, args) is expected
