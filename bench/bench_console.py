"""Console page times with a large audit table (target: every page under 200 ms server time).

Fills a fresh database (embedded PostgreSQL under .data/bench, or DATABASE_URL) with N audit rows
(PDP decisions and gateway calls over 30 days, 500 users, 40 tools), starts the PDP with the
console on loopback, opens a session directly in the sessions table (sign-in itself is not what is
measured), and times each page: median and p95 over R sequential requests, measured at the client
on loopback (so an upper bound on server time). Also times the Impact replay of 10,000 decisions,\nand its worst case (examples looked for in every row) without HTTP.

    .venv/bin/python bench/bench_console.py            # 100k rows, 20 requests per page
    .venv/bin/python bench/bench_console.py --quick    # 20k rows, 5 requests per page
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pdp.app import create_app  # noqa: E402
from pdp.settings import PdpSettings, check_settings  # noqa: E402
from pdp.ui import drafts, sessions  # noqa: E402
from pdp.ui.analysis import check  # noqa: E402
from pdp.ui.oidc import Identity  # noqa: E402
from pdp.ui.replay import replay_recent  # noqa: E402
from shared import db  # noqa: E402
from shared.keys import DB_POOL  # noqa: E402
from shared.settings import Secret  # noqa: E402
from tests.fixtures.pg import create_database, drop_database  # noqa: E402

POLICY = (ROOT / "policies" / "policy.yaml").read_text()


def rows(n: int) -> list[tuple]:
    """n audit rows: half PDP decisions, half gateway calls, spread over 30 days."""
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        service = "pdp" if i % 2 else "gateway"
        allowed = i % 7 != 0
        out.append((uuid.uuid4(), now - timedelta(seconds=i * 26), service,
                    "policy_decision" if service == "pdp" else "mcp_request", f"user{i % 500}@example.com",
                    ["developer"] if i % 3 else ["viewer"], "invoke_tool", f"server{i % 8}", f"tool{i % 40}",
                    f"mcp:server{i % 8}:tool{i % 40}", "allow" if allowed else "deny", "v1",
                    f"dec-{i // 2}", '{"groups": ["/engineering"], "statement": {"kind": "role", "role": "developer", '
                    '"resource": "mcp:dev-server:*", "action": "invoke_tool"}}'))
    return out


async def fill(pool, n: int) -> None:
    columns = ["event_id", "ts", "service", "event_type", "subject", "roles", "action", "mcp_server", "tool",
               "resource", "decision", "policy_version", "decision_id", "extra"]
    data = rows(n)
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("audit_events", records=[r[:-1] + (None,) for r in data], columns=columns)
        await conn.execute("UPDATE audit_events SET extra = $1::jsonb WHERE service = 'pdp'", data[1][-1])
        await conn.execute("ANALYZE audit_events")


async def timed(http: aiohttp.ClientSession, url: str, repeat: int) -> tuple[float, float, int]:
    times = []
    status = 0
    for _ in range(repeat):
        start = time.perf_counter()
        async with http.get(url) as resp:
            await resp.read()
            status = resp.status
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))], status


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, repeat = (20_000, 5) if args.quick else (100_000, 20)
    server = os.environ.get("DATABASE_URL") or await asyncio.to_thread(db.start_embedded, ROOT / ".data" / "bench")
    name = "bench_console_" + uuid.uuid4().hex[:8]
    dsn = await create_database(server, name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            policy = Path(tmp) / "policy.yaml"
            policy.write_text(POLICY)
            settings = check_settings(PdpSettings(
                database_url=Secret(dsn), data_dir=Path(tmp), policy_file=policy, log_format="text",
                log_level="WARNING", console_oidc_issuer="http://127.0.0.1:9/unused", console_client_id="bench",
                console_public_url="http://127.0.0.1:0"))
            app = create_app(settings)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            pool = app[DB_POOL]
            start = time.perf_counter()
            await fill(pool, n)
            print(f"audit rows: {n} (filled in {time.perf_counter() - start:.1f} s)")
            raw = await sessions.create(pool, Identity("bench", "bench", ("policy-editor", "policy-approver")), 3600)
            draft = await drafts.create(pool, POLICY.replace("  dev@example.com: [developer]\n", ""), "", "bench",
                                        "bench", 1)
            jar = aiohttp.CookieJar(unsafe=True)
            jar.update_cookies({"mcpgw_console": raw}, aiohttp.client.URL(base + "/console/"))
            pages = ["/console/", "/console/policy", "/console/drafts", f"/console/drafts/{draft}",
                     f"/console/drafts/{draft}/diff", "/console/whatif?subject=dev%40example.com&server=dev-server"
                     f"&tool=x&action=invoke_tool&draft={draft}", "/console/history", "/console/decisions",
                     "/console/decisions?subject=user7%40example.com", "/console/decisions?decision=deny&service=pdp",
                     "/console/decisions?server=server3&tool=tool11", "/console/decisions/dec-77",
                     "/console/least-privilege?days=30", "/console/block",
                     f"/console/impact?draft={draft}&n=10000"]
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                # Keyset page 2 of the unfiltered list (its cursor comes from page 1).
                html = await (await http.get(base + "/console/decisions")).text()
                cursor = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
                pages.append(cursor)
                print(f"{'page':<72} {'median ms':>9} {'p95 ms':>8}")
                worst = 0.0
                for path in pages:
                    med, p95, status = await timed(http, base + path, repeat)
                    assert status == 200, (path, status)
                    worst = max(worst, p95)
                    print(f"{path[:72]:<72} {med:9.1f} {p95:8.1f}")
                html = await (await http.get(base + f"/console/impact?draft={draft}&n=10000")).text()
                replay = re.search(r"Replayed (\d+) audited PDP decisions against draft \d+ in ([0-9.]+) s", html)
                assert replay, "impact page did not report a replay"
                print(f"impact replay: {replay.group(1)} decisions in {replay.group(2)} s (target: 10,000 in < 2 s)")
                print(f"slowest p95: {worst:.1f} ms (target < 200 ms)")
            # Worst case of the replay itself (no HTTP): flips so rare that the examples are looked
            # for in every one of the 10,000 rows (here: every flip kept as an example).
            engine = check(POLICY.replace("  dev@example.com: [developer]\n", "")).engine
            assert engine is not None
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                await replay_recent(pool, engine, 10_000, max_examples=10_000)
                times.append((time.perf_counter() - start) * 1000)
            print(f"impact replay, examples read from all 10,000 rows: median {statistics.median(times):.1f} ms")
            await runner.cleanup()
    finally:
        await drop_database(server, name)


if __name__ == "__main__":
    asyncio.run(main())
