"""Redaction: sensitive keys at any depth, credential shapes anywhere, nothing else touched."""

import pytest

from shared.common_settings import DEFAULT_REDACT_KEYS
from shared.redact import REDACTED, key_is_sensitive, mask_secrets, normalize_keys, redact

KEYS = normalize_keys(DEFAULT_REDACT_KEYS)
R = REDACTED

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token is {JWT} ok", f"token is {R} ok"),
        ("Authorization: Bearer abcdef123456.xyz", f"Authorization: Bearer {R}"),
        ("bearer abcdefghijk", f"bearer {R}"),
        ("key AKIAIOSFODNN7EXAMPLE here", f"key {R} here"),
        ("ghp_" + "a" * 36, R),
        ("gho_" + "B" * 36, R),
        ("github_pat_11ABCDEFG0_" + "x" * 40, R),
        ("xoxb-1234567890-abcdefghij", R),
        ("sk-" + "A1b2" * 12, R),
        ("sk-proj-" + "z" * 30, R),
        (f"before\n{PEM}\nafter", f"before\n{R}\nafter"),
        ("https://alice:s3cret@db.example.com/x", f"https://{R}@db.example.com/x"),
        ("postgresql://u:p@localhost:5432/db", f"postgresql://{R}@localhost:5432/db"),
        # Things that only look vaguely similar stay untouched.
        ("https://example.com/path?q=1", "https://example.com/path?q=1"),
        ("ask-me-anything is a phrase", "ask-me-anything is a phrase"),
        ("short", "short"),
        ("the bearer of bad news", "the bearer of bad news"),
    ],
)
def test_mask_secrets(text, expected):
    assert mask_secrets(text) == expected


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("password", True),
        ("PASSWORD", True),
        ("X-Api-Key", True),
        ("access_token", True),
        ("Client_Secret", True),
        ("Set-Cookie", True),
        ("query", False),
        ("path", False),
        ("user", False),
    ],
)
def test_key_is_sensitive(key, sensitive):
    assert key_is_sensitive(key, KEYS) is sensitive


def test_redact_at_any_depth_without_mutating_input():
    value = {
        "query": "select 1",
        "Password": "hunter2",
        "nested": [{"deeper": {"API_KEY": "k", "ok": 1}}, ["x", {"token": ["a", "b"]}]],
        "headers": {"Authorization": "Basic dXNlcjpwYXNz"},
        "note": f"call with {JWT}",
        "count": 3,
        "flag": None,
        "tuple": ("a", "b"),
    }
    original = repr(value)
    assert redact(value, KEYS) == {
        "query": "select 1",
        "Password": R,
        "nested": [{"deeper": {"API_KEY": R, "ok": 1}}, ["x", {"token": R}]],
        "headers": {"Authorization": R},
        "note": f"call with {R}",
        "count": 3,
        "flag": None,
        "tuple": ["a", "b"],
    }
    assert repr(value) == original


def test_custom_keys_replace_defaults():
    keys = normalize_keys(["SSN", " "])
    assert redact({"ssn": "1", "password": "p"}, keys) == {"ssn": R, "password": "p"}
