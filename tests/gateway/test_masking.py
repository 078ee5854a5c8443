"""gateway/masking.py: a backend's text with the server's credential masked in every form it may be echoed in."""

from __future__ import annotations

import base64
import json
import random

import orjson
import pytest

from gateway.backend_auth import AuthConfig
from gateway.masking import (
    credential_forms,
    leaks,
    mask,
    mask_data,
    mask_error,
    mask_result,
    masked_response,
    scrub,
)
from shared.redact import REDACTED

KEY = "ab+c/d=ef12Zq8vN2kLp"  # characters that percent-encoding, JSON and base64 all change
API_KEY = AuthConfig(method="api_key", location="query", name="key", format="raw")
BASIC = AuthConfig(method="basic", name="Authorization", format="prefix", prefix="Basic ")
BEARER = AuthConfig(method="bearer", name="Authorization", format="prefix", prefix="Bearer ")


def _nul(text: str) -> str:
    return "\x00".join(text)


@pytest.mark.parametrize(("auth", "secret", "echoed"), [
    (API_KEY, KEY, KEY),
    (API_KEY, KEY, "ab%2Bc/d%3Def12Zq8vN2kLp"),  # the query value as yarl sent it
    (API_KEY, KEY, "ab%2Bc%2Fd%3Def12Zq8vN2kLp"),
    (API_KEY, KEY, "ab%2bc%2fd%3def12zq8vn2klp"),  # lower-case escapes
    (API_KEY, KEY, json.dumps(KEY)[1:-1]),
    (API_KEY, "x\"y\\z-secret", json.dumps("x\"y\\z-secret")[1:-1]),  # JSON-escaped
    (API_KEY, KEY, base64.b64encode(KEY.encode()).decode()),
    (API_KEY, KEY, KEY.upper()),  # another case
    (API_KEY, KEY, KEY[:9]),  # a cut-short prefix
    (API_KEY, KEY, _nul(KEY)),  # NULs between the characters
    (API_KEY, KEY, "\u200b".join(KEY)),  # zero-width spaces between them
    (API_KEY, "k3y", "k3y"),  # a short credential is still masked
    (BASIC, "alice:s3cr3t-pw", "alice:s3cr3t-pw"),  # decoded basic auth
    (BASIC, "alice:s3cr3t-pw", "password s3cr3t-pw"),  # its password alone
    (BASIC, "alice:s3cr3t-pw", base64.b64encode(b"alice:s3cr3t-pw").decode()),
    (BEARER, "Zq8vN2kLp0xR7tYb", "Bearer Zq8vN2kLp0xR7tYb"),
])
def test_every_form_of_the_credential_is_masked(auth: AuthConfig, secret: str, echoed: str) -> None:
    out = mask(f"upstream rejected [{echoed}] here", credential_forms(auth, secret))
    assert out.startswith("upstream rejected [") and out.endswith("] here") and REDACTED in out, out
    cleaned = out.replace(REDACTED, "")
    for part in {secret, secret.partition(":")[2]} - {""}:
        assert part.lower()[:8] not in cleaned.lower(), out


def test_innocent_text_is_kept_and_overlapping_forms_mask_once() -> None:
    forms = credential_forms(BEARER, "Zq8vN2kLp0xR7tYb")
    assert mask("exited with 1: no such tool", forms) == "exited with 1: no such tool"
    assert mask("auth Bearer Zq8vN2kLp0xR7tYb!", forms) == f"auth {REDACTED}!"
    assert mask("Zq8vN2k is only 7 characters", forms) == "Zq8vN2k is only 7 characters"


def test_data_and_error_objects_are_masked_throughout() -> None:
    forms = credential_forms(API_KEY, KEY)
    data = mask_data({"headers": {"x-key": KEY}, KEY: [1, KEY.lower()], "n": 3}, forms)
    assert KEY.lower()[:8] not in json.dumps(data).lower() and data["n"] == 3, data
    error = mask_error({"code": -32000, "message": f"bad {KEY}", "data": [KEY]}, forms)
    assert error == {"code": -32000, "message": f"bad {REDACTED}", "data": [REDACTED]}


@pytest.mark.parametrize("echoed", [KEY, KEY.upper(), KEY[:9], _nul(KEY), "\u200b".join(KEY), json.dumps(KEY)[1:-1]])
def test_a_result_is_scrubbed_of_the_credential_only(echoed: str) -> None:
    forms = credential_forms(API_KEY, KEY)
    text = f"line one\n\tgot [{echoed}] Bearer eyJhbGciOiJIUzI1NiJ9.e30.x\n"
    assert leaks(json.dumps(text).encode(), forms) and leaks(json.dumps(text), forms)
    assert scrub(text, forms) == f"line one\n\tgot [{REDACTED}] Bearer eyJhbGciOiJIUzI1NiJ9.e30.x\n"  # the rest kept


def test_a_clean_result_is_not_rewritten() -> None:
    forms = credential_forms(API_KEY, KEY)
    message = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "ab+c/d= is not it"}]}}
    assert not leaks(json.dumps(message).encode(), forms) and not leaks("ünïcode, clean", forms)
    assert masked_response(message, forms) is message
    assert masked_response(message, []) is message  # a server with no credential: nothing to look for


def test_a_leaking_result_is_masked_in_keys_and_values() -> None:
    forms = credential_forms(BEARER, "Zq8vN2kLp0xR7tYb")
    message = {"jsonrpc": "2.0", "id": 1, "result": {"structuredContent": {"Zq8vN2kLp0xR7tYb": ["bearer zq8vn2klp0"]},
                                                     "isError": False}}
    masked = masked_response(message, forms)
    assert masked["result"] == {"structuredContent": {REDACTED: [REDACTED]}, "isError": False}, masked
    escaped = '{"t": "\\u005aq8vN2kLp0xR7tYb"}'  # \u-escaped: only a parser sees the secret
    assert leaks(escaped, forms) and masked_response({"result": json.loads(escaped)}, forms, escaped) == {
        "result": {"t": REDACTED}}


def test_a_notification_or_request_is_masked_in_its_params() -> None:
    forms = credential_forms(BEARER, "Zq8vN2kLp0xR7tYb")
    note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "saw zq8vn2klp0xr7tyb"}}
    assert masked_response(note, forms)["params"] == {"level": "info", "data": f"saw {REDACTED}"}
    ask = {"jsonrpc": "2.0", "id": 3, "method": "elicitation/create", "params": {"message": "Bearer Zq8vN2kLp0xR7tYb?"}}
    assert masked_response(ask, forms)["params"] == {"message": f"{REDACTED}?"}
    clean = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 2}}
    assert masked_response(clean, forms) is clean


def _texts(rng: random.Random, forms: list[str], count: int) -> list[str]:
    """Strings mixing pieces of `forms` (whole, cut, upper-cased) with filler, split by characters
    `scrub` looks through or JSON escapes (line breaks, tabs, DEL, NUL, zero-width space, quotes,
    backslashes, slashes, a Kelvin sign for k)."""
    splitters = ["\n", "\t", "\r", "\x7f", "\x00", "\u200b", "\\", '"', "/", "\\n", " ", "é"]
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 4)):
            piece = rng.choice([*forms, "weather report line", "tok", "ab+c", "x" * 9, "Bearer t"])
            piece = piece[:rng.randint(1, len(piece))] if rng.random() < 0.3 else piece
            piece = piece.upper() if rng.random() < 0.2 else piece
            if rng.random() < 0.3:
                at = rng.randint(0, len(piece))
                piece = piece[:at] + rng.choice(splitters) * rng.randint(1, 40) + piece[at:]
            if rng.random() < 0.1:
                piece = piece.replace("k", "\u212a")
            parts.append(piece)
        out.append(rng.choice(["", " ", "\n", "\\\\"]).join(parts))
    return out


@pytest.mark.parametrize(("auth", "secret"), [(API_KEY, KEY), (BEARER, "tok-fwd-7f3a9c2e-Zq8vN2kLp"),
                                              (API_KEY, 'x"y\\z-secret/k'), (BASIC, "alice:s3cr3t-pw")])
def test_leaks_never_misses_what_scrub_finds_in_any_json_text(auth: AuthConfig, secret: str) -> None:
    """Differential: whenever `scrub` changes a string, `leaks` says so of the string's JSON text,
    however it is written — orjson (UTF-8), `json.dumps` (\\u escapes), `/` escaped as `\\/`, pretty,
    characters spelt as \\u escapes,
    as bytes and as text, alone or among 64 KiB of other text (the anchored path's windows)."""
    forms = credential_forms(auth, secret)
    rng = random.Random(7)
    fillers = ["weather report line\n" * 200,  # few anchors: each read where it is
               "The quick brown fox jumps over the lazy dog; 42 vexing wizards judge 7 boxes.\n" * 60]  # many
    for n, text in enumerate(_texts(rng, forms, 1500)):
        if scrub(text, forms) == text:
            continue
        filler = fillers[n % 2]
        value = {"content": [{"type": "text", "text": filler}, {"type": "text", "text": text}]}
        spelt = "".join(f"\\u{ord(c):04{'x' if i % 2 else 'X'}}" if i % 3 else json.dumps(c)[1:-1]
                        for i, c in enumerate(text))  # every other character a \u escape, either case
        for raw in (orjson.dumps(value), json.dumps(value, indent=1), json.dumps(value, ensure_ascii=False),
                    json.dumps({"t": text}, ensure_ascii=False).replace("/", "\\/"), orjson.dumps(text),
                    f'{{"t": "{json.dumps(filler[:300])[1:-1]}{spelt}"}}'):
            assert leaks(raw, forms), (text, raw[-200:])
            assert leaks(raw.decode() if isinstance(raw, bytes) else raw.encode(), forms), (text, raw[-200:])


def test_a_clean_answer_with_many_anchor_characters_is_still_clean() -> None:
    """Past the occurrences the anchored path reads one by one, the whole text is unescaped: still exact."""
    forms = credential_forms(BEARER, "tok-fwd-7f3a9c2e-Zq8vN2kLp")
    dense = orjson.dumps({"text": "7f3a- 9c2e- 9x- Bearer b- " * 500 + "\\n"})
    assert not leaks(dense, forms) and not leaks(dense.decode(), forms)
    assert leaks(dense.replace(b"9x-", b"tok-\\nfwd-", 1), forms)
    lines = orjson.dumps({"text": "7f3a- 9c2e- 9x- Bearer b-\n" * 500})  # line breaks the only escapes
    assert not leaks(lines, forms) and leaks(lines.replace(b"9x-", b"TOK-\\n\\nfwd-", 1), forms)


@pytest.mark.parametrize("message", [
    {"jsonrpc": "2.0", "id": 1, "result": {}, "x": "sk-live-Zq8vN2kLp0xR7tYb"},  # a member JSON-RPC has no name for
    {"jsonrpc": "2.0", "id": 1, "error": "sk-live-Zq8vN2kLp0xR7tYb"},  # a string error
    {"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "no"}, "result": {"t": "sk-live-Zq8vN2kLp0xR7tYb"}},
    {"jsonrpc": "2.0", "method": "sk-live-Zq8vN2kLp0xR7tYb", "params": {}},
    {"jsonrpc": "2.0", "id": 1, "result": {}, "sk-live-Zq8vN2kLp0xR7tYb": 1},  # a member's name
    [{"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "sk-live-Zq8vN2kLp0xR7tYb"}}],  # a batch
    "sk-live-Zq8vN2kLp0xR7tYb",
    {"jsonrpc": "2.0", "id": 1, "result": {"pin": 48213977510234}},  # an all-digit credential as a number
])
def test_every_member_but_jsonrpc_and_id_is_masked(message: object) -> None:
    secret = "48213977510234" if "pin" in str(message) else "sk-live-Zq8vN2kLp0xR7tYb"
    forms = credential_forms(BEARER, secret)
    masked = masked_response(message, forms)
    assert secret not in json.dumps(masked) and REDACTED in json.dumps(masked), masked
    if isinstance(message, dict):
        assert {k: masked[k] for k in ("jsonrpc", "id") if k in message} == {
            k: message[k] for k in ("jsonrpc", "id") if k in message}


def test_numbers_that_are_no_credential_are_kept() -> None:
    forms = credential_forms(BEARER, "48213977510234")
    value = {"a": 4821, "b": 1.5, "c": True, "d": "48213977510234"}
    assert mask_result(value, forms) == {"a": 4821, "b": 1.5, "c": True, "d": REDACTED}


def test_leaks_looks_through_nuls_in_text_that_is_no_json() -> None:
    forms = credential_forms(BEARER, "sk-live-Zq8vN2kLp0xR7tYb")
    body = "bad token " + _nul("sk-live-Zq8vN2kLp0xR7tYb")
    assert leaks(body.encode(), forms) and leaks(body, forms)
    assert REDACTED in scrub(body, forms)
    assert not leaks(_nul("a clean answer, nothing in it"), forms)
