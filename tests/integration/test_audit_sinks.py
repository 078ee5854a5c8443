"""Audit through every sink against a real PostgreSQL: roundtrip, redaction, batching, replay."""

from __future__ import annotations

import asyncio
import io
import json
import uuid

import pytest
from aiohttp import web

from shared.audit import COLUMNS, AuditEmitter, AuditEvent, audit_ctx
from shared.audit.metrics import AuditMetrics
from shared.common_settings import CommonSettings
from shared.keys import AUDIT, DB_POOL, REGISTRY
from shared.redact import REDACTED

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlc2lnbmF0dXJl"


def sample(**kw) -> AuditEvent:
    base = dict(
        event_type="mcp_request", service="gateway", subject="alice", action="invoke_tool",
        mcp_server="db", tool="query", decision="allow", status="success", http_status=200,
        duration_ms=12.5, roles=["analyst", "dev"], request_id="req-1", decision_id="d-1",
        policy_version="v3", resource="mcp:db:query", reason="rule 4", client_addr="10.0.0.9",
        parameters={"sql": "select 1", "auth": {"Password": "hunter2", "list": [{"api_key": "k"}]}},
        extra={"note": f"Bearer {JWT}"},
    )
    base.update(kw)
    return AuditEvent(**base)


def value(counter, **labels) -> float:
    return AuditMetrics.value(counter, **labels)


async def test_roundtrip_every_sink_with_redaction(pg_pool, tmp_path):
    stream = io.StringIO()
    emitter = AuditEmitter(
        "gateway", pool_getter=lambda: pg_pool, spool_dir=tmp_path / "spool",
        file=tmp_path / "logs" / "audit.jsonl", stdout=True, stream=stream,
    )
    await emitter.start()
    event = sample()
    emitter.emit(event)
    await emitter.close()

    expected_params = {"sql": "select 1", "auth": {"Password": REDACTED, "list": [{"api_key": REDACTED}]}}
    file_lines = (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()
    out_lines = stream.getvalue().splitlines()
    assert len(file_lines) == len(out_lines) == 1
    for line in (file_lines[0], out_lines[0]):
        doc = json.loads(line)
        # The old gateway's names and values, which users' jq filters depend on.
        assert doc["timestamp"] == event.ts.isoformat()
        assert (doc["event_type"], doc["user"], doc["tool_name"]) == ("mcp_request", "alice", "query")
        assert (doc["policy_decision"], doc["status"], doc["response_status"]) == ("allow", "success", 200)
        assert doc["duration_ms"] == 12.5 and doc["mcp_server"] == "db" and doc["action"] == "invoke_tool"
        assert doc["parameters"] == expected_params
        assert doc["extra"] == {"note": f"Bearer {REDACTED}"}
        assert doc["event_id"] == str(event.event_id) and doc["roles"] == ["analyst", "dev"]
        assert "hunter2" not in line and JWT not in line

    row = await pg_pool.fetchrow("SELECT * FROM audit_events")
    stored = AuditEvent.from_row(row)
    assert stored == event.replace(parameters=expected_params, extra={"note": f"Bearer {REDACTED}"})
    assert value(emitter.metrics.written) == 1 and value(emitter.metrics.spilled) == 0


async def test_json_form_roundtrips():
    event = sample()
    assert AuditEvent.from_json_dict(json.loads(json.dumps(event.to_json_dict(), default=str))) == event


async def test_many_events_are_copied_in_few_batches(pg_pool, tmp_path):
    emitter = AuditEmitter("pdp", pool_getter=lambda: pg_pool, spool_dir=tmp_path, batch_size=500)
    await emitter.start()
    for i in range(5_000):
        emitter.emit(AuditEvent("policy_decision", "pdp", subject=f"u{i}", decision="deny"))
    await emitter.close()
    assert await pg_pool.fetchval("SELECT count(*) FROM audit_events") == 5_000
    assert value(emitter.metrics.batches, path="copy") <= 10
    assert value(emitter.metrics.queued) == value(emitter.metrics.written) == 5_000


async def test_no_pool_spools_then_replays_exactly_once(pg_pool, tmp_path):
    pool = {"p": None}
    emitter = AuditEmitter("gateway", pool_getter=lambda: pool["p"], spool_dir=tmp_path / "s", flush_interval=0.01)
    await emitter.start()
    events = [sample(subject=f"u{i}") for i in range(300)]
    for e in events[:200]:
        emitter.emit(e)
    await emitter.flush()
    assert not emitter.healthy
    assert value(emitter.metrics.spilled) == 200
    assert any((tmp_path / "s").iterdir())

    # One spooled event is already in the table (its COPY committed but the ack was lost).
    pool["p"] = pg_pool
    async with pg_pool.acquire() as conn:
        await conn.copy_records_to_table("audit_events", records=[events[0].to_row()], columns=COLUMNS)
    await emitter.replay_now()
    for e in events[200:]:
        emitter.emit(e)
    await emitter.close()
    rows = await pg_pool.fetchrow("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM audit_events")
    assert (rows["n"], rows["d"]) == (300, 300)
    assert value(emitter.metrics.replayed) == 199
    assert not list((tmp_path / "s").glob("*.jsonl"))


async def test_queue_full_spills_instead_of_dropping(pg_pool, tmp_path):
    emitter = AuditEmitter("gateway", pool_getter=lambda: pg_pool, spool_dir=tmp_path, queue_size=10)
    await emitter.start()
    for i in range(50):  # no await in between: the writer cannot drain, the queue overflows
        emitter.emit(sample(subject=f"u{i}"))
    await asyncio.sleep(0)  # the overflow is spilled as one batch on the next loop turn
    assert value(emitter.metrics.spilled) == 40
    assert len(list(tmp_path.glob("*.jsonl"))) == 1
    await emitter.flush()
    await emitter.replay_now()
    await emitter.close()
    assert await pg_pool.fetchval("SELECT count(DISTINCT event_id) FROM audit_events") == 50
    assert value(emitter.metrics.dropped) == 0


async def test_bad_row_is_set_aside_and_the_rest_stored(pg_pool, tmp_path):
    # A trigger makes the database refuse one subject outright, even in its quarantined form:
    # only that row is set aside (kept beside the spool, counted as dropped), the rest is stored.
    await pg_pool.execute(
        "CREATE FUNCTION refuse_subject() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.subject = 'refused' THEN RAISE EXCEPTION 'refused by a site rule'; END IF; RETURN NEW; END $$; "
        "CREATE TRIGGER refuse_subject BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_subject()"
    )
    emitter = AuditEmitter("gateway", pool_getter=lambda: pg_pool, spool_dir=tmp_path)
    await emitter.start()
    good = [sample(subject=f"u{i}") for i in range(3)]
    bad = sample(subject="refused")
    for e in (good[0], bad, good[1], good[2]):
        emitter.emit(e)
    await emitter.flush()
    await emitter.replay_now()
    await emitter.close()
    subjects = {r["subject"] for r in await pg_pool.fetch("SELECT subject FROM audit_events")}
    assert subjects == {"u0", "u1", "u2"}
    rejected = list(tmp_path.glob("*.rejected"))
    assert len(rejected) == 1 and str(bad.event_id) in rejected[0].read_text()
    assert value(emitter.metrics.dropped) == 1 and emitter.healthy


async def test_audit_ctx_in_an_app(pg_pool, tmp_path, aiohttp_client):
    settings = CommonSettings(data_dir=tmp_path, audit_file=tmp_path / "a.jsonl")

    async def handler(request: web.Request) -> web.Response:
        request.app[AUDIT].emit(AuditEvent("authentication", "gateway", subject="bob", status="denied"))
        return web.Response(text="ok")

    app = web.Application()
    app[DB_POOL] = pg_pool
    app.cleanup_ctx.append(audit_ctx(settings, "gateway"))
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    assert (await client.get("/")).status == 200
    await client.close()
    assert await pg_pool.fetchval("SELECT subject FROM audit_events") == "bob"
    assert json.loads((tmp_path / "a.jsonl").read_text())["user"] == "bob"
    assert REGISTRY in app


def test_event_rejects_unknown_service():
    with pytest.raises(ValueError, match="service"):
        AuditEvent("mcp_request", "nope")
    with pytest.raises(ValueError, match="unknown audit field"):
        AuditEvent.from_json_dict({**sample().to_json_dict(), "bogus": 1})
    assert uuid.UUID(str(sample().event_id))


async def test_torn_spool_line_is_counted_and_the_rest_replayed(pg_pool, tmp_path):
    """A crash mid-write can leave a partial last line; the whole lines still get stored."""
    good = [sample(subject=f"u{i}") for i in range(2)]
    lines = [json.dumps(e.to_json_dict(), default=str) for e in good]
    (tmp_path / "00000000000000000001-gateway-1-1.jsonl").write_text("\n".join(lines) + '\n{"timest')
    emitter = AuditEmitter("gateway", pool_getter=lambda: pg_pool, spool_dir=tmp_path)
    await emitter.start()  # finds the leftover segment and replays it
    await emitter.replay_now()
    await emitter.close()
    assert await pg_pool.fetchval("SELECT count(*) FROM audit_events") == 2
    assert value(emitter.metrics.dropped) == 1
    assert not list(tmp_path.glob("*.jsonl"))


def test_emit_without_a_loop_writes_through(tmp_path):
    spool = tmp_path / "spool"
    emitter = AuditEmitter("gateway", file=tmp_path / "a.jsonl", pool_getter=lambda: None, spool_dir=spool)
    event = sample()
    emitter.emit(event)  # never started, no running loop: written through, not lost
    assert json.loads((tmp_path / "a.jsonl").read_text())["event_id"] == str(event.event_id)
    assert str(event.event_id) in next(spool.glob("*.jsonl")).read_text()
    assert value(emitter.metrics.spilled) == 1


async def test_spool_failure_is_the_only_drop_and_is_logged_loudly(tmp_path, caplog):
    """No database and a spool that cannot be written (its folder is a file): counted and logged."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    emitter = AuditEmitter(
        "gateway", pool_getter=lambda: None, spool_dir=blocker / "spool", file=tmp_path / "a.jsonl"
    )
    await emitter.start()
    for i in range(3):
        emitter.emit(sample(subject=f"u{i}"))
    await emitter.flush()
    await emitter.close()
    assert value(emitter.metrics.queued) == value(emitter.metrics.dropped) == 3
    assert value(emitter.metrics.spilled) == value(emitter.metrics.written) == 0
    lost = [r for r in caplog.records if "AUDIT EVENTS LOST" in r.getMessage()]
    assert lost and lost[0].levelname == "ERROR" and lost[0].count == 3
    # The local sinks still got every event.
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 3


async def test_audit_counters_on_the_apps_metrics_endpoint(pg_pool, tmp_path, aiohttp_client):
    """queued/written/spilled/replayed/dropped and the queue depth appear on the app's registry."""
    from shared.metrics import metrics_handler

    app = web.Application()
    app[DB_POOL] = pg_pool
    app.cleanup_ctx.append(audit_ctx(CommonSettings(data_dir=tmp_path), "pdp"))
    app.router.add_get("/metrics", metrics_handler)

    async def emit(request: web.Request) -> web.Response:
        request.app[AUDIT].emit(AuditEvent("decision", "pdp", subject="carol", decision="deny"))
        await request.app[AUDIT].flush()
        return web.Response(text="ok")

    app.router.add_get("/emit", emit)
    client = await aiohttp_client(app)
    assert (await client.get("/emit")).status == 200
    text = await (await client.get("/metrics")).text()
    for line in ("mcpgw_audit_queued_events_total 1.0", "mcpgw_audit_written_events_total 1.0",
                 "mcpgw_audit_spilled_events_total 0.0", "mcpgw_audit_replayed_events_total 0.0",
                 "mcpgw_audit_dropped_events_total 0.0", "mcpgw_audit_queue_depth 0.0"):
        assert line in text.splitlines(), line
