"""Hostile events never take other events with them (real PostgreSQL, JSONL file, spool)."""

from __future__ import annotations

import json

import orjson

from shared.audit import AuditEmitter, AuditEvent, pgwrite
from shared.audit.metrics import AuditMetrics
from shared.audit.sanitize import NOTE_KEY, UNSTORABLE
from shared.audit.sinks import FileSink
from shared.redact import MAX_DEPTH, TOO_DEEP


def nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def good_call() -> AuditEvent:
    return AuditEvent("mcp_request", "gateway", subject="alice", tool="transfer", mcp_server="bank",
                      decision="allow", status="success", http_status=200, parameters={"amount": 100, "to": "bob"})


def hostile(levels: int) -> AuditEvent:
    return AuditEvent("mcp_request", "gateway", subject="mallory", tool="transfer", mcp_server="bank",
                      status="error", http_status=400, parameters={"x": nested(levels)})


async def rows(pool) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in await pool.fetch("SELECT * FROM audit_events ORDER BY id"):
        out.setdefault(r["subject"], []).append(r)
    return out


async def test_reported_batch_good_call_and_300_and_1000_deep_are_all_stored(pg_pool, tmp_path):
    """The exact report: all three events share one batch (one COPY); nothing is lost."""
    file = tmp_path / "audit.jsonl"
    emitter = AuditEmitter("gateway", pool_getter=lambda: pg_pool, spool_dir=tmp_path / "spool", file=file,
                           flush_interval=5.0)
    await emitter.start()
    good, deep300, deep1000 = good_call(), hostile(300), hostile(1_000)
    for event in (good, deep300, deep1000):
        emitter.emit(event)
    await emitter.flush()
    await emitter.close()
    stored = await rows(pg_pool)
    assert json.loads(stored["alice"][0]["parameters"]) == {"amount": 100, "to": "bob"}
    assert [r["event_id"] for r in stored["mallory"]] == [deep300.event_id, deep1000.event_id]
    for row in stored["mallory"]:
        assert TOO_DEEP in row["parameters"]
        assert json.loads(row["extra"])[NOTE_KEY] == {"parameters": [f"nested deeper than {MAX_DEPTH} levels: cut"]}
    assert AuditMetrics.value(emitter.metrics.dropped) == 0
    assert AuditMetrics.value(emitter.metrics.batches, path="copy") == 1
    lines = [json.loads(line) for line in file.read_text().splitlines()]
    assert [e["event_id"] for e in lines] == [str(e.event_id) for e in (good, deep300, deep1000)]
    assert NOTE_KEY in lines[2]["extra"]


async def test_nul_bytes_and_surrogates_never_make_postgres_refuse_a_row(pg_pool, tmp_path):
    emitter = AuditEmitter("gateway", pool_getter=lambda: pg_pool, spool_dir=tmp_path)
    await emitter.start()
    emitter.emit(good_call())
    controls = "".join(chr(c) for c in range(1, 32)) + "\x7f\x85\u202e"  # Postgres takes these as they are
    emitter.emit(AuditEvent("mcp_request", "gateway", subject="mal\x00lory", tool="t\ud800",
                            parameters={"memo": "a\x00b", "k\x00": "\ud800", "ctl": controls},
                            error="bad \x00", reason=controls))
    await emitter.flush()
    await emitter.close()
    stored = await rows(pg_pool)
    (row,) = stored["mal\\u0000lory"]
    assert row["tool"] == "t\\ud800" and row["error"] == "bad \\u0000"
    assert json.loads(row["parameters"]) == {"memo": "a\\u0000b", "k\\u0000": "\\ud800", "ctl": controls}
    assert row["reason"] == controls
    assert set(json.loads(row["extra"])[NOTE_KEY]) == {"parameters", "subject", "tool", "error"}
    assert "alice" in stored and AuditMetrics.value(emitter.metrics.dropped) == 0
    assert not list(tmp_path.glob("*.jsonl"))  # no batch was refused: nothing spooled


async def test_copy_batch_with_an_unsanitised_event_stores_it_quarantined(pg_pool):
    """Defence in depth: an event that bypassed emit() still cannot fail its COPY batch."""
    good, raw = good_call(), hostile(300)  # orjson cannot serialise 300 levels
    assert await pgwrite.write(pg_pool, [good, raw], idempotent=False) == 2
    stored = await rows(pg_pool)
    assert json.loads(stored["alice"][0]["parameters"]) == {"amount": 100, "to": "bob"}
    (row,) = stored["mallory"]
    assert json.loads(row["parameters"]) == UNSTORABLE
    assert "not serialisable" in json.loads(row["extra"])[NOTE_KEY]["event"][0]


async def test_a_row_the_database_refuses_is_stored_quarantined_and_the_batch_kept(pg_pool, tmp_path):
    """An int column out of range fails the whole COPY: the batch is replayed row by row."""
    emitter = AuditEmitter("gateway", pool_getter=lambda: pg_pool, spool_dir=tmp_path)
    await emitter.start()
    good, bad = good_call(), hostile(3).replace(http_status=2**40)
    emitter.emit(good)
    emitter.emit(bad)
    await emitter.flush()
    await emitter.replay_now()
    await emitter.close()
    stored = await rows(pg_pool)
    assert [r["event_id"] for r in stored["alice"]] == [good.event_id]
    (row,) = stored["mallory"]
    assert row["event_id"] == bad.event_id and row["http_status"] is None
    assert "refused by the database" in json.loads(row["extra"])[NOTE_KEY]["event"][0]
    assert AuditMetrics.value(emitter.metrics.dropped) == 0 and emitter.healthy


def test_jsonl_sink_writes_every_event_of_a_batch_with_a_bad_one(tmp_path):
    sink = FileSink(tmp_path / "a.jsonl")
    good, raw = good_call(), hostile(1_000)
    sink.write([good, raw, good_call()])
    sink.close()
    docs = [orjson.loads(line) for line in (tmp_path / "a.jsonl").read_bytes().splitlines()]
    assert [d["user"] for d in docs] == ["alice", "mallory", "alice"]
    assert docs[1]["parameters"] == UNSTORABLE
