"""The access log: one JSON line per request with method, route, status, duration, request id, subject."""

from __future__ import annotations

import logging
from pathlib import Path

from shared.jsonutil import loads
from shared.logging import JsonFormatter
from tests.integration.gateway_harness import gateway_stack


class Lines(logging.Handler):
    """Formats at emit time (inside the request's context), as the real stdout handler does."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("gateway"))
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(loads(self.format(record)))


def capture() -> Lines:
    handler = Lines()
    logger = logging.getLogger("mcpgw.access")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


async def test_one_line_per_request_with_route_status_subject_and_request_id(tmp_path: Path, pg_dsn: str) -> None:
    lines = capture()
    try:
        async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": "http://127.0.0.1:9/mcp"}}) as stack:
            status, _, headers = await stack.call("GET", "/mcp/server/alpha/info", subject="admin@example.com",
                                                  headers={"X-Request-ID": "someone-elses-id"})
            await stack.call("GET", "/mcp/servers", subject=None)
            await stack.call("GET", "/health", subject=None)
    finally:
        logging.getLogger("mcpgw.access").removeHandler(lines)
    pdp = [line for line in lines.lines if line["route"].startswith("/access/")]
    info, anonymous, health = [line for line in lines.lines if line not in pdp]
    # The PDP (same process here) logged the decision under its own request id, the gateway's apart.
    assert pdp and pdp[0]["caller_request_id"] == headers["X-Request-ID"] != pdp[0]["request_id"]
    assert info["level"] == "INFO" and info["logger"] == "mcpgw.access"
    assert (info["method"], info["route"], info["status"]) == ("GET", "/mcp/server/{name}/info", status)
    assert info["subject"] == "admin@example.com" and info["request_id"] == headers["X-Request-ID"]
    # A caller's X-Request-ID is not our id: kept apart, so it cannot make lines share another's id.
    assert info["request_id"] != "someone-elses-id" and info["caller_request_id"] == "someone-elses-id"
    assert isinstance(info["duration_ms"], float) and info["duration_ms"] >= 0
    assert (anonymous["status"], anonymous["subject"]) == (401, None)
    assert health["route"] == "/health" and health["level"] == "DEBUG"  # probes one level lower
    assert "Bearer" not in str(lines.lines)


async def test_access_log_off_logs_nothing(tmp_path: Path, pg_dsn: str) -> None:
    lines = capture()
    try:
        async with gateway_stack(tmp_path, pg_dsn, {}, env={"MCPGW_LOG_ACCESS": "off"}) as stack:
            await stack.call("GET", "/mcp/servers")
    finally:
        logging.getLogger("mcpgw.access").removeHandler(lines)
    assert lines.lines == []
