"""`mcpgw audit tail|query`: read the shared audit table from the command line.

The database is DATABASE_URL, or the embedded server under MCPGW_DATA_DIR (as the services use).
JSON output is one object per line in the same form as the JSONL sink, so the same jq filters work
on files and on query results. Exit codes: 0 ok, 1 database failure, 2 usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from shared import csvsafe, db
from shared.audit.event import AuditEvent
from shared.clierror import error
from shared.common_settings import CommonSettings
from shared.jsonutil import dumps_str
from shared.settings import SettingsError, load_settings
from shared.textsafe import printable

FILTERS = {"user": "subject", "server": "mcp_server", "tool": "tool", "decision": "decision",
           "service": "service", "event_type": "event_type"}
TABLE_COLUMNS = (
    ("TIME", "timestamp"), ("SERVICE", "service"), ("EVENT", "event_type"), ("USER", "user"),
    ("ACTION", "action"), ("SERVER", "mcp_server"), ("TOOL", "tool_name"),
    ("DECISION", "policy_decision"), ("STATUS", "status"), ("HTTP", "response_status"),
    ("MS", "duration_ms"),
)
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
POLL_SECONDS = 1.0


class UsageError(ValueError):
    """A bad argument value (exit 2)."""


def parse_when(text: str, now: datetime) -> datetime:
    """An ISO 8601 time (UTC if no zone) or a relative age like 30m, 1h, 7d before `now`."""
    match = _RELATIVE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"bad time {text!r}: use ISO 8601 (2026-01-31T12:00Z) or an age like 30m, 1h, 7d") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def build_query(
    filters: dict[str, str | None],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    after_id: int | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> tuple[str, list[Any]]:
    """SQL and arguments selecting audit rows; every value is a bind parameter."""
    where: list[str] = []
    args: list[Any] = []

    def add(clause: str, value: Any) -> None:
        args.append(value)
        where.append(clause.format(f"${len(args)}"))

    for option, column in FILTERS.items():
        if filters.get(option):
            add(f"{column} = {{}}", filters[option])
    if since is not None:
        add("ts >= {}", since)
    if until is not None:
        add("ts < {}", until)
    if after_id is not None:
        add("id > {}", after_id)
    sql = "SELECT * FROM audit_events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
    if limit is not None:
        args.append(limit)
        sql += f" LIMIT ${len(args)}"
    return sql, args


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return printable(value)  # a tool name with a newline or ESC must not forge or recolour a line


def render_table(docs: Sequence[dict[str, Any]], *, header: bool = True) -> str:
    """Aligned columns for humans (timestamps shortened to the second, UTC)."""
    rows = [[_cell(d.get(key)) for _, key in TABLE_COLUMNS] for d in docs]
    for row in rows:
        row[0] = row[0][:19].replace("T", " ")
    titles = [title for title, _ in TABLE_COLUMNS]
    widths = [max([len(t)] + [len(r[i]) for r in rows]) for i, t in enumerate(titles)]
    lines = [titles] if header else []
    lines += rows
    return "".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n" for line in lines)


def render_csv(docs: Sequence[dict[str, Any]], *, header: bool = True) -> str:
    """CSV with the JSON field names as header; lists and objects as JSON text; controls escaped.

    A cell a spreadsheet could run as a formula gets a leading apostrophe (`shared/csvsafe.py`, as
    the console's export): a tool name a caller chose is audited as given.
    """
    if not docs:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(docs[0]), lineterminator="\n")
    if header:
        writer.writeheader()
    for doc in docs:
        writer.writerow({k: csvsafe.cell(printable(dumps_str(v) if isinstance(v, dict | list) else v))
                         if v is not None else None for k, v in doc.items()})
    return out.getvalue()


def render_json(docs: Sequence[dict[str, Any]]) -> str:
    """JSON lines, the audit file sink's format."""
    return "".join(dumps_str(d) + "\n" for d in docs)


def render(docs: Sequence[dict[str, Any]], fmt: str, *, header: bool = True) -> str:
    """Format rows as table, json or csv."""
    if fmt == "json":
        return render_json(docs)
    if fmt == "csv":
        return render_csv(docs, header=header)
    return render_table(docs, header=header)


async def _connect() -> asyncpg.Connection:
    settings = load_settings(CommonSettings, "MCPGW_")
    url = settings.database_url.get() if settings.database_url else None
    if url is None and not (settings.data_dir / "postgres" / "PG_VERSION").is_file():
        # Reading must not create an empty embedded cluster that has no audit rows.
        raise UsageError(
            f"no audit database: no DATABASE_URL, and no embedded one under {settings.data_dir}. Set "
            "DATABASE_URL, or MCPGW_DATA_DIR to the data directory the gateway and PDP use"
        )
    dsn = await db.resolve_dsn(url, settings.data_dir)
    return await asyncpg.connect(dsn, timeout=10)


def _docs(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [AuditEvent.from_row(r).to_json_dict() for r in rows]


async def _tail(args: argparse.Namespace) -> None:
    conn = await _connect()
    try:
        fmt = "json" if args.json else "table"
        sql, params = build_query(_filters(args), limit=args.lines, newest_first=True)
        rows = list(reversed(await conn.fetch(sql, *params)))
        sys.stdout.write(render(_docs(rows), fmt))
        last_id = rows[-1]["id"] if rows else await conn.fetchval("SELECT coalesce(max(id), 0) FROM audit_events")
        while args.follow:
            sys.stdout.flush()
            await asyncio.sleep(POLL_SECONDS)
            sql, params = build_query(_filters(args), after_id=last_id, limit=10_000)
            rows = await conn.fetch(sql, *params)
            if rows:
                sys.stdout.write(render(_docs(rows), fmt, header=False))
                last_id = rows[-1]["id"]
    finally:
        await conn.close()


async def _query(args: argparse.Namespace) -> None:
    now = datetime.now(UTC)
    since = parse_when(args.since, now)
    until = parse_when(args.until, now) if args.until else None
    conn = await _connect()
    try:
        sql, params = build_query(_filters(args), since=since, until=until, limit=args.limit)
        fmt = "json" if getattr(args, "json", False) else args.format
        sys.stdout.write(render(_docs(await conn.fetch(sql, *params)), fmt))
    finally:
        await conn.close()


def _filters(args: argparse.Namespace) -> dict[str, str | None]:
    return {option: getattr(args, option, None) for option in FILTERS}


def _run(coro_fn: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        try:
            asyncio.run(coro_fn(args))
        except (UsageError, SettingsError) as exc:
            error(str(exc))
            return 2
        except asyncpg.UndefinedTableError:
            error("this database has no audit_events table yet: start the gateway or PDP "
                  "against it once (they create it), or check DATABASE_URL")
            return 1
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            error(f"cannot read the audit table: {exc}. Check DATABASE_URL (or MCPGW_DATA_DIR "
                  "for the embedded database) and that Postgres is running")
            return 1
        return 0

    return handler


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="only this subject")
    parser.add_argument("--server", help="only this MCP server")
    parser.add_argument("--tool", help="only this tool")
    parser.add_argument("--decision", choices=("allow", "deny"), help="only this policy decision")
    parser.add_argument("--service", choices=("gateway", "pdp"), help="only events from this service")
    parser.add_argument("--event-type", dest="event_type", help="e.g. mcp_request, policy_decision")


def register(subparsers: Any) -> None:
    """Add `audit tail` and `audit query` to the mcpgw command tree."""
    audit = subparsers.add_parser("audit", help="read the audit trail", description=__doc__)
    commands = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)

    tail = commands.add_parser("tail", help="show the latest events (and follow new ones)")
    _add_filters(tail)
    tail.add_argument("-n", "--lines", type=_positive_int, default=20, help="events to show first (20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    tail.set_defaults(func=_run(_tail))

    query = commands.add_parser("query", help="events in a time range, as table, JSON lines or CSV")
    _add_filters(query)
    query.add_argument("--since", required=True, help="ISO 8601 time or age (30m, 1h, 7d)")
    query.add_argument("--until", help="ISO 8601 time or age; default now")
    query.add_argument("--format", choices=("table", "json", "csv"), default="table")
    query.add_argument("--json", action="store_true", help="same as --format json (as on every read command)")
    query.add_argument("--limit", type=_positive_int, default=1000, help="max events (1000)")
    query.set_defaults(func=_run(_query))
