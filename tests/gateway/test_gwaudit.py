"""Gateway audit events: classification table and the event built from one request's record."""

from __future__ import annotations

import pytest

from gateway.gwaudit import AuditInfo, build_event, classify, decision_word
from shared.authzen import Decision

ALLOW = Decision(True, "d-1", "v7", "role developer")
DENY = Decision(False, "d-2", "v7", "rule: block deletes")


def info(decision: Decision | None = None, denied: bool = False) -> AuditInfo:
    i = AuditInfo()
    i.decision, i.denied = decision, denied
    return i


@pytest.mark.parametrize(
    ("status", "record", "tool_failed", "expected"),
    [
        (200, info(ALLOW), False, ("mcp_request", "success")),
        (200, info(ALLOW), True, ("mcp_request", "error")),
        (403, info(DENY, True), False, ("policy_violation", "denied")),
        (200, info(ALLOW, True), False, ("policy_violation", "denied")),
        (401, info(), False, ("authentication", "denied")),
        (403, info(), False, ("authentication", "denied")),
        (503, info(), False, ("mcp_request", "error")),
        (502, info(ALLOW), False, ("mcp_request", "error")),
        (404, info(), False, ("mcp_request", "error")),
    ],
)
def test_classify(status, record, tool_failed, expected) -> None:
    record.tool_failed = tool_failed
    assert classify(status, record) == expected


@pytest.mark.parametrize(
    ("record", "word"),
    [(info(), None), (info(ALLOW), "allow"), (info(DENY, True), "deny"), (info(None, True), "deny")],
)
def test_decision_word(record, word) -> None:
    assert decision_word(record) == word


def test_build_event_carries_ids_and_no_headers() -> None:
    record = info(DENY, True)
    record.action, record.mcp_server, record.tool = "invoke_tool", "prod", "delete_records"
    record.parameters = {"table": "users"}
    record.note(targets=["prod"])
    event = build_event(
        record, http_status=403, duration_ms=1.23456, subject="dev@example.com", roles=("developer",),
        request_id="rid-1", client_addr="127.0.0.1", method="POST", path="/mcp/invoke",
    )
    data = event.to_json_dict()
    assert data["event_type"] == "policy_violation" and data["status"] == "denied"
    assert data["user"] == "dev@example.com" and data["tool_name"] == "delete_records"
    assert data["policy_decision"] == "deny" and data["response_status"] == 403
    assert (event.decision_id, event.policy_version, event.reason) == ("d-2", "v7", "rule: block deletes")
    assert event.resource == "mcp:prod:delete_records" and event.duration_ms == 1.235
    assert event.extra == {"targets": ["prod"], "http": "POST /mcp/invoke"}
    assert event.service == "gateway" and event.request_id == "rid-1"
