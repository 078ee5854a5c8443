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


# Issue 9 (Low): names the defaults missed, and credentials inside free text. Short names (< 5
# characters) match whole key segments only, so ordinary words containing them stay readable.
@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("pwd", True),
        ("DB_PWD", True),
        ("dbPwd", True),
        ("passphrase", True),
        ("ssh-passphrase", True),
        ("pin", True),
        ("PIN", True),
        ("user_pin", True),
        ("userPin", True),
        ("pin-code", True),
        ("PINCode", True),
        ("private_key", True),
        ("privateKey", True),
        ("ssh.private-key", True),
        ("spinner", False),
        ("pinned", False),
        ("mapping", False),
        ("shipping_address", False),
        ("opinion", False),
        ("pwdump_tool", False),
        ("typing", False),
    ],
)
def test_key_is_sensitive_short_names_and_additions(key, sensitive):
    assert key_is_sensitive(key, KEYS) is sensitive


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Server=db;User Id=sa;Password=hunter2;Encrypt=yes", f"Server=db;User Id=sa;Password={R};Encrypt=yes"),
        ("Host=x;Pwd=s3cr3t;", f"Host=x;Pwd={R};"),
        ("retry with token=abc123def", f"retry with token={R}"),
        ("GET /cb?access_token=abc.def&state=1", f"GET /cb?access_token={R}&state=1"),
        ("PGPASSWORD=hunter2 psql", f"PGPASSWORD={R} psql"),
        ('{"password": "two words"}', f'{{"password": {R}}}'),
        ("db_pwd='x y' more", f"db_pwd={R} more"),
        ("pin=1234", f"pin={R}"),
        ("PIN: 9876", f"PIN: {R}"),
        ("client_secret=zz", f"client_secret={R}"),
        ("passphrase : open", f"passphrase : {R}"),
        ("private_key=MIIEabc", f"private_key={R}"),
        # Look-alikes stay untouched.
        ("spin=3 pinned: yes", "spin=3 pinned: yes"),
        ("max_tokens: 100", "max_tokens: 100"),
        ("meeting at 12:30", "meeting at 12:30"),
        ("password reset requested", "password reset requested"),
    ],
)
def test_mask_secrets_assignments_in_free_text(text, expected):
    assert mask_secrets(text) == expected


def test_assignment_masking_stays_linear_on_hostile_text():
    """No unbounded prefix or quoted run: 1 MiB of near-matches is one pass, not quadratic."""
    for text in ("a" * 1_000_000 + ":", 'token="' * 150_000, ("x" * 50 + "password") * 20_000 + ":"):
        assert len(mask_secrets(text)) >= len(text) // 2  # completes (a quadratic scan would not)


def test_redact_is_depth_capped_and_marks_the_cut():
    value: list = []
    inner = value
    for _ in range(5_000):
        inner.append([])
        inner = inner[0]
    notes: list[str] = []
    out = redact({"v": value}, KEYS, notes=notes)
    assert "nested deeper than" in notes[0]
    level = 0
    while isinstance(out, dict | list) and out:
        out = out["v"] if isinstance(out, dict) else out[0]
        level += 1
    assert level == 64 and out == "[mcpgw-audit: cut, nested deeper than 64 levels]"


def test_credentials_used_as_keys_are_masked_too():
    token = "ghp_" + "a" * 36
    assert redact({token: True, "note": {"pwd=hunter2": 1}}, KEYS) == {R: True, "note": {f"pwd={R}": R}}
