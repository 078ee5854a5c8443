"""Pure parts of `mcpgw audit`: time parsing, query building, rendering."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.audit.event import AuditEvent
from shared.audit_cli import UsageError, build_query, parse_when, render
from shared.csvsafe import cell

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("1h", NOW - timedelta(hours=1)),
        ("7d", NOW - timedelta(days=7)),
        ("45s", NOW - timedelta(seconds=45)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-01-30T08:00:00Z", datetime(2026, 1, 30, 8, tzinfo=UTC)),
        ("2026-01-30T08:00:00", datetime(2026, 1, 30, 8, tzinfo=UTC)),
        ("2026-01-30T08:00:00+02:00", datetime(2026, 1, 30, 6, tzinfo=UTC)),
    ],
)
def test_parse_when(text, expected):
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "1y", "-5m", ""])
def test_parse_when_rejects(text):
    with pytest.raises(UsageError, match="bad time"):
        parse_when(text, NOW)


@pytest.mark.parametrize(
    ("kwargs", "sql", "args"),
    [
        ({}, "SELECT * FROM audit_events ORDER BY id", []),
        (
            {"filters": {"user": "alice", "decision": "deny", "tool": None}, "since": NOW, "limit": 5},
            "SELECT * FROM audit_events WHERE subject = $1 AND decision = $2 AND ts >= $3 ORDER BY id LIMIT $4",
            ["alice", "deny", NOW, 5],
        ),
        (
            {"filters": {"server": "db'; drop table x"}, "after_id": 7, "newest_first": True},
            "SELECT * FROM audit_events WHERE mcp_server = $1 AND id > $2 ORDER BY id DESC",
            ["db'; drop table x", 7],
        ),
        (
            {"since": NOW, "until": NOW},
            "SELECT * FROM audit_events WHERE ts >= $1 AND ts < $2 ORDER BY id",
            [NOW, NOW],
        ),
    ],
)
def test_build_query(kwargs, sql, args):
    filters = kwargs.pop("filters", {})
    assert build_query(filters, **kwargs) == (sql, args)


DOCS = [
    AuditEvent("mcp_request", "gateway", subject="alice", tool="query", mcp_server="db", decision="allow",
               status="success", http_status=200, duration_ms=3.25, ts=NOW, roles=["a"]).to_json_dict(),
    AuditEvent("policy_decision", "pdp", subject="bob-the-long-name", decision="deny", ts=NOW).to_json_dict(),
]


def test_render_table_is_aligned():
    lines = render(DOCS, "table").splitlines()
    assert lines[0].split() == ["TIME", "SERVICE", "EVENT", "USER", "ACTION", "SERVER", "TOOL",
                                "DECISION", "STATUS", "HTTP", "MS"]
    assert lines[1].startswith("2026-01-31 12:00:00  gateway")
    # Columns line up: the DECISION column starts at the same offset on every line.
    col = lines[0].index("DECISION")
    assert lines[1][col:].startswith("allow") and lines[2][col:].startswith("deny")
    assert "3.2" in lines[1] and lines[2].split()[5] == "-"
    assert render(DOCS, "table", header=False).splitlines()[0].startswith("2026-01-31")


def test_render_csv_and_json():
    csv_lines = render(DOCS, "csv").splitlines()
    assert csv_lines[0].startswith("timestamp,event_type,user,")
    assert '"[""a""]"' in csv_lines[1]
    assert render([], "csv") == ""
    json_lines = render(DOCS, "json").splitlines()
    assert len(json_lines) == 2 and '"user":"alice"' in json_lines[0]


@pytest.mark.parametrize("tool", ["=HYPERLINK(\"http://x\")", "+1", "-1+2", "@SUM(A1)", "  =1", "\uff1d1", "\ufe621",
                                  "\t=1", "\r=1", "\n=1"])
def test_csv_neutralises_formula_starts_as_the_console_export(tool):
    """A tool name a caller chose cannot run in a spreadsheet opened from `audit query --format csv`."""
    import csv
    import io

    doc = AuditEvent("mcp_request", "gateway", subject="eve", tool=tool, ts=NOW).to_json_dict()
    row = next(csv.DictReader(io.StringIO(render([doc], "csv"))))
    assert cell(row["tool_name"]) == row["tool_name"]  # nothing a spreadsheet would run (see tests/shared/test_csvsafe.py)
    assert tool.lstrip("\t\r\n ") in row["tool_name"] and row["user"] == "eve"  # still readable
