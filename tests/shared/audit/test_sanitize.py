"""Sanitising audit events: any event becomes storable, every change is marked, nothing recurses."""

from __future__ import annotations

import orjson
import pytest

from shared.audit import AuditEvent
from shared.audit.sanitize import NOTE_KEY, UNSTORABLE, quarantine, sanitize_event
from shared.audit.sinks import event_line, jsonl
from shared.common_settings import DEFAULT_REDACT_KEYS
from shared.redact import MAX_DEPTH, MAX_STRING, TOO_DEEP, normalize_keys, storable

KEYS = normalize_keys(DEFAULT_REDACT_KEYS)


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


def depth_of(value) -> int:
    level = 0
    while isinstance(value, dict):
        value, level = value.get("x", value.get("leaf")), level + 1
    return level


def event(**kw) -> AuditEvent:
    return AuditEvent("mcp_request", "gateway", **{"subject": "mallory", "tool": "transfer", **kw})


@pytest.mark.parametrize("depth", [300, 1_000, 5_000])
def test_deep_parameters_are_cut_and_marked_without_recursion_error(depth):
    clean = sanitize_event(event(parameters=nested(depth)), KEYS)
    assert depth_of(clean.parameters) == MAX_DEPTH
    assert TOO_DEEP in orjson.dumps(clean.parameters).decode()
    assert clean.extra[NOTE_KEY] == {"parameters": [f"nested deeper than {MAX_DEPTH} levels: cut"]}
    orjson.dumps(clean.to_json_dict())  # storable as is
    clean.to_row()


def test_a_body_the_gateway_accepts_is_stored_whole():
    clean = sanitize_event(event(parameters=nested(MAX_DEPTH)), KEYS)
    assert clean.parameters == nested(MAX_DEPTH) and clean.extra is None


@pytest.mark.parametrize(
    ("value", "stored", "reason"),
    [
        ("a\x00b", "a\\u0000b", "NUL characters replaced by the text \\u0000"),
        ("a\ud800b", "a\\ud800b", "invalid Unicode (lone surrogates) escaped"),
        (2**70, str(2**70), "integer beyond 64 bits stored as text"),
        (b"raw", "b'raw'", None),
        ("ok \x1b[31m red", "ok \x1b[31m red", None),  # other controls are stored as sent (escaped on display)
    ],
)
def test_values_postgres_or_orjson_would_refuse(value, stored, reason):
    clean = sanitize_event(event(parameters={"arg": value, "k\x00ey": 1}), KEYS)
    assert clean.parameters["arg"] == stored
    assert "k\\u0000ey" in clean.parameters
    notes = clean.extra[NOTE_KEY]["parameters"]
    assert "NUL characters replaced by the text \\u0000" in notes
    if reason:
        assert reason in notes
    orjson.dumps(clean.to_json_dict())


def test_text_columns_are_made_storable_and_marked():
    clean = sanitize_event(event(tool="tr\x00ansfer", error="x" * 20_000, roles=["a\x00"]), KEYS)
    assert clean.tool == "tr\\u0000ansfer" and clean.roles == ["a\\u0000"]
    assert len(clean.error) < 8_300 and "truncated" in clean.error
    assert set(clean.extra[NOTE_KEY]) == {"tool", "error", "roles"}


def test_long_strings_in_parameters_are_truncated_marked():
    clean = sanitize_event(event(parameters={"blob": "y" * (MAX_STRING + 5)}), KEYS)
    assert clean.parameters["blob"].startswith("y" * 100)
    assert clean.parameters["blob"].endswith(f"[mcpgw-audit: truncated, {MAX_STRING + 5} characters]")


def test_clean_events_are_left_alone():
    e = event(parameters={"amount": 5}, extra={"http": "POST /mcp/invoke"})
    clean = sanitize_event(e, KEYS)
    assert clean.parameters == e.parameters and clean.extra == e.extra
    # Non-ASCII text that is storable as it is: unchanged and not marked.
    e = event(subject="Zoë 東京", roles=["ünï"], reason="ok \u202e")
    clean = sanitize_event(e, KEYS)
    assert (clean.subject, clean.roles, clean.reason, clean.extra) == ("Zoë 東京", ["ünï"], "ok \u202e", None)


def test_storable_is_idempotent_on_clean_text():
    notes: list[str] = []
    assert storable("plain ünïcode", notes) == "plain ünïcode" and notes == []


def test_quarantine_keeps_who_what_when_and_marks_why():
    bad = event(parameters=nested(1_000), error="boom\x00", http_status=2**40, roles=["r\ud800"])
    q = quarantine(bad, "refused by the database: X")
    assert (q.event_id, q.ts, q.subject, q.tool) == (bad.event_id, bad.ts, "mallory", "transfer")
    assert q.parameters == UNSTORABLE and q.http_status is None
    assert q.extra == {NOTE_KEY: {"event": ["refused by the database: X"]}}
    assert q.error == "boom\\x00" and q.roles == ["r\\ud800"]
    orjson.dumps(q.to_json_dict())
    q.to_row()


def test_one_unserialisable_event_does_not_take_its_batch_down():
    """Events that skipped sanitising (a bug, a new field) still serialise one by one."""
    good = event(parameters={"amount": 5}, subject="alice")
    bad = event(parameters=nested(300))  # orjson refuses > 254 levels
    lines = jsonl([good, bad]).splitlines()
    docs = [orjson.loads(line) for line in lines]
    assert docs[0]["user"] == "alice" and docs[0]["parameters"] == {"amount": 5}
    assert docs[1]["event_id"] == str(bad.event_id) and docs[1]["parameters"] == UNSTORABLE
    assert "not serialisable" in docs[1]["extra"][NOTE_KEY]["event"][0]
    assert event_line(good) == lines[0] + b"\n"


def test_repeated_texts_are_masked_every_time_and_only_clean_ones_remembered():
    from shared.audit import sanitize

    secret = "upstream said: Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2ln"
    clean = "permitted by role caller: mcp:bench:* (statement 1)"
    for _ in range(3):  # the second and third time must mask exactly like the first
        event = sanitize_event(AuditEvent(service="gateway", event_type="mcp_request", error=secret, reason=clean), KEYS)
        assert "eyJzdWIiOiJ4In0" not in (event.error or "") and event.reason == clean
    assert clean in sanitize._CLEAN and secret not in sanitize._CLEAN


@pytest.mark.parametrize("fields", [
    {"parameters": {"amount": 5}, "extra": {"http": "POST /mcp/invoke"}, "roles": ["caller"]},
    {"parameters": {"password": "hunter2", "nested": {"api_key": "k"}}, "reason": "token=abcdef0123456789abcdef"},
    {"tool": "tr\x00ansfer", "error": "x" * 20_000, "roles": ["a\x00", "ok"], "parameters": nested(100)},
    {"roles": ["r" * 5_000, "s" * 5_000]},  # clean parts, too long together: each checked on its own
])
def test_an_owned_event_is_sanitised_in_place_exactly_as_a_copy_would_be(fields):
    copied = sanitize_event(event(**fields), KEYS)
    owned = event(**fields)
    in_place = sanitize_event(owned, KEYS, in_place=True)
    assert in_place is owned
    assert {**in_place.to_json_dict(), "event_id": 0, "timestamp": 0} == {**copied.to_json_dict(), "event_id": 0, "timestamp": 0}
