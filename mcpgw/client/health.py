"""`mcpgw health`: gateway, PDP, database and each backend, one line each.

The gateway's /health covers itself, its servers file and the audit database. The PDP is checked
directly when --pdp-url is known, else as the gateway's /readyz reports it (falling back to a
policy-checked call, which answers 503 when the PDP is down). Each enabled backend is checked by
listing its tools through the gateway; backends the caller cannot list get one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from mcpgw.client import output
from mcpgw.client.errors import ApiError, CallFailed
from mcpgw.client.http import GatewayClient, run
from mcpgw.client.reads import client, server_rows

OK, FAIL, SKIP = "ok", "fail", "skip"


@dataclass
class Check:
    """One line of the report."""

    component: str
    status: str
    detail: str


def gateway_checks(body: Any, elapsed_ms: float, url: str) -> list[Check]:
    """Lines for the gateway itself and its audit database, from its /health body (pure)."""
    if not isinstance(body, dict):
        return [Check("gateway", FAIL, f"{url}/health answered {str(body)[:80]!r}")]
    healthy = body.get("status") in ("healthy", "ok")
    detail = f"{url} ({elapsed_ms:.0f} ms, {body.get('servers', '?')} servers"
    detail += ", auth on)" if body.get("auth_enabled", True) else ", AUTH OFF)"
    checks = [Check("gateway", OK if healthy else FAIL, detail)]
    if body.get("servers_file_error"):
        checks.append(Check("servers file", FAIL, "the last edit was invalid; serving the last good set (see gateway log)"))
    db = body.get("audit_database", "unknown")
    if db is None:
        checks.append(Check("database", SKIP, "audit to Postgres is off"))
    else:
        checks.append(Check("database", OK if db == "ok" else FAIL, f"audit {db}"))
    return checks


async def pdp_direct(pdp_url: str, seconds: float) -> Check:
    """The PDP's readiness (policy loaded, database reachable), else its liveness endpoint."""
    base = pdp_url.rstrip("/")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as s:
            for path in ("/readyz", "/healthz", "/health"):
                async with s.get(base + path) as r:
                    if r.status != 404:
                        return Check("pdp", OK if r.status == 200 else FAIL, f"{base}{path} (HTTP {r.status})")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Check("pdp", FAIL, f"{base} unreachable ({type(exc).__name__}); start it with `mcpgw pdp serve`")
    return Check("pdp", FAIL, f"{base} has no health endpoint; is it the PDP?")


async def backend_check(gw: GatewayClient, row: dict[str, Any]) -> Check:
    """List one backend's tools through the gateway."""
    name = str(row.get("name"))
    if row.get("enabled") is False:
        return Check(f"backend {name}", SKIP, "disabled")
    started = time.perf_counter()
    try:
        body = await gw.get("/mcp/list-tools", {"mcp_server": name})
    except ApiError as exc:
        return Check(f"backend {name}", FAIL, exc.message)
    ms = (time.perf_counter() - started) * 1000
    return Check(f"backend {name}", OK, f"{body.get('count', len(body.get('tools') or []))} tools ({ms:.0f} ms)")


def readiness_checks(body: Any) -> tuple[Check | None, list[str]]:
    """From the gateway's /readyz body (pure): the PDP line, and the gateway's other problems.

    The gateway probes the PDP itself (`GET <pdp>/readyz`), which tells more than a policy-checked
    call: that one may be answered from the decision cache, and needs a token.
    """
    if not isinstance(body, dict) or not isinstance(body.get("problems"), list):
        return None, []
    problems = [str(p) for p in body["problems"]]
    pdp = [p for p in problems if p.startswith("PDP")]
    others = [p for p in problems if not p.startswith("PDP")]
    if pdp:
        line = Check("pdp", FAIL, "; ".join(pdp) + " (as the gateway sees it; start it with `mcpgw pdp serve`)")
    else:
        line = Check("pdp", OK, "ready (checked by the gateway)")
    return line, others


async def _readyz(gw: GatewayClient) -> Any:
    """The gateway's /readyz body (503 included), or None when it has none."""
    try:
        return await gw.get("/readyz")
    except ApiError as exc:
        return exc.body if exc.status == 503 else None
    except CallFailed:
        return None


def backend_summary(registered: Any, rows: list[dict[str, Any]]) -> Check | None:
    """A line for registered backends the caller cannot see (so none goes unmentioned)."""
    if not isinstance(registered, int) or registered <= len(rows):
        return None
    hidden = registered - len(rows)
    return Check("backends", SKIP, f"{hidden} of {registered} registered not visible to this token (policy)")


async def collect(args: argparse.Namespace) -> list[Check]:
    """Run every check; the gateway being down is one failed line, not an exception."""
    cfg = args.cfg
    checks: list[Check] = []
    async with client(args) as gw:
        started = time.perf_counter()
        try:
            body = await gw.get("/health")
        except CallFailed as exc:
            checks.append(Check("gateway", FAIL, exc.message))
            if cfg.get("pdp_url"):
                checks.append(await pdp_direct(cfg.get("pdp_url"), cfg.timeout))
            return checks
        checks += gateway_checks(body, (time.perf_counter() - started) * 1000, gw.url)
        pdp_line, problems = readiness_checks(await _readyz(gw))
        if problems and checks[0].component == "gateway":
            checks[0] = Check("gateway", FAIL, checks[0].detail + "; not ready: " + "; ".join(problems))
        rows: list[dict[str, Any]] = []
        backends: Check | None = None
        try:
            rows = server_rows(await gw.get("/mcp/servers"))
            via_gateway = Check("pdp", OK, "answering the gateway")
            backends = backend_summary(body.get("servers") if isinstance(body, dict) else None, rows)
        except ApiError as exc:
            via_gateway = Check("pdp", FAIL if exc.status == 503 else SKIP, exc.message)
            backends = Check("backends", FAIL if exc.status == 503 else SKIP, f"cannot list them: {exc.message}")
        if cfg.get("pdp_url"):
            checks.append(await pdp_direct(cfg.get("pdp_url"), cfg.timeout))
        else:
            checks.append(pdp_line or via_gateway)
        checks += await asyncio.gather(*(backend_check(gw, r) for r in rows))
        if backends is not None:
            checks.append(backends)
    return checks


def cmd_health(args: argparse.Namespace) -> int:
    """Print one line per component; exit 1 if any failed."""
    checks = run(collect(args))
    healthy = all(c.status != FAIL for c in checks)
    if args.json:
        output.print_json({"healthy": healthy, "checks": [asdict(c) for c in checks]})
    else:
        print(output.table(["COMPONENT", "STATUS", "DETAIL"], [[c.component, c.status, c.detail] for c in checks]))
    return 0 if healthy else 1


def add_parser(subparsers: Any, handle: Any, common: argparse.ArgumentParser) -> None:
    """The `health` command."""
    p = subparsers.add_parser(
        "health", parents=[common], help="check gateway, PDP, database and backends",
        description="One line per component. Exit 0 when nothing failed, 1 otherwise.",
    )
    p.add_argument("--pdp-url", help="check the PDP directly (default $MCPGW_PDP_URL; else through the gateway)")
    p.set_defaults(func=handle(cmd_health))
