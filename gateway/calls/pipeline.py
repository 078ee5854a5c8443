"""The one call pipeline every entry point uses (REST invoke and broadcast, `/tools/{name}/invoke`,
`/mcp` calls and broadcast names, passthrough):

    resolve   the entry point names the target server(s) (query, body, public name, URL path)
    decide    one PDP batch for every target (`decide` → Verdict); denials never reach a backend
    stages    per permitted target, each `Stage.before_forward` in order (`keys.CALL_STAGES`):
              `Admission` (catalog and schema, calls/admit.py; prompts: calls/prompt_admit.py)
              first, then whatever governance adds
              (rate limits, approvals, tool pinning): added once, to `STAGES`, and every entry
              point runs it
    forward   supplied by the entry point: a plain result (REST), a relaying stream (`/mcp`), the
              raw relay (passthrough); timed here, and its answer judged here (calls/outcome.py):
              "unknown tool" forgets the backend's cached catalogs, `isError` is a failed call
    audit     the request's AuditInfo, filled here (calls/audit.py): the entry point, the verdict,
              the refusing stage, who failed
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web

from gateway import broadcast
from gateway.calls import audit as record
from gateway.calls import outcome
from gateway.calls.admit import Refused, UnknownTool, admit, refused_everywhere
from gateway.calls.audit import audit
from gateway.calls.call import Call, Stage, Verdict
from gateway.calls.prompt_admit import PromptAdmission
from gateway.errors import Denied, NotFound, to_gateway_error
from gateway.keys import CALL_STAGES, METRICS, POLICY, SCHEMAS, SERVERS, SETTINGS, UPSTREAM
from gateway.registry import ServerConfig
from gateway.upstream.errors import UpstreamRpcError
from shared.auth import Principal
from shared.authzen import Decision, Resource, resource_for

T = TypeVar("T")
Ask = tuple[str, Resource, Mapping[str, Any] | None]  # (action, resource, arguments) for the PDP
Forward = Callable[[ServerConfig], Awaitable[T]]


class TooManyTargets(Refused, status=400, code="bad_request"):
    """A broadcast would reach more servers than MCPGW_GATEWAY_BROADCAST_MAX_TARGETS."""


class Admission:
    """The tool is in the target's catalog and the arguments fit its inputSchema (calls/admit.py)."""

    name = "admission"

    async def before_forward(self, request: web.Request, call: Call, server: ServerConfig) -> None:
        """Raise Refused unless a tool call may be forwarded to `server` (other actions pass)."""
        if call.action == "invoke_tool":
            call.admitted[server.name] = await admit(
                request.app[UPSTREAM], request.app[SCHEMAS], server, call.name, call.arguments, call.caller)


# The app's stages, in order. Admission comes after the PDP (SECURITY.md): a caller the policy
# refuses learns nothing about catalogs. A governance feature adds itself here, once.
STAGES: tuple[Stage, ...] = (Admission(), PromptAdmission())


async def decisions(request: web.Request, principal: Principal, items: Sequence[Ask]) -> list[Decision]:
    """The PDP's decisions on (action, resource, arguments) items, in order: one request whatever
    their number (the decision cache answers what it can); PdpUnavailable: deny, nothing forwarded."""
    policy = request.app[POLICY]
    if len(items) == 1:
        action, resource, arguments = items[0]
        return [await policy.check(principal, action, resource, arguments=arguments)]
    return list(await policy.check_many(principal, list(items))) if items else []


async def permitted(request: web.Request, principal: Principal, action: str,
                    pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (server, name) pairs `action` is allowed on, in one PDP request (a resource search for
    tools): how every list is filtered."""
    if action == "invoke_tool" and pairs:
        return set(await request.app[POLICY].filter_tools(principal, list(pairs)))
    found = await decisions(request, principal, [(action, resource_for(action, s, n), None) for s, n in pairs])
    return {pair for pair, d in zip(pairs, found, strict=True) if d.allowed}


async def decide(request: web.Request, call: Call) -> Verdict:
    """Ask the PDP about every target of a call in one request; recorded for audit."""
    return (await decide_with(request, call, ()))[0]


async def decide_with(request: web.Request, call: Call, also: Sequence[Ask]) -> tuple[Verdict, list[Decision]]:
    """`decide`, with checks that are not the call's (passthrough's "may see this server") asked in
    the same PDP request; (the call's verdict, their decisions in order)."""
    info = audit(request)
    record.started(info, call)
    arguments = call.decided_arguments
    asks: list[Ask] = [(call.action, resource_for(call.action, t, call.name), arguments) for t in call.targets]
    found = await decisions(request, call.principal, [*asks, *also])
    verdict = Verdict(call.targets, tuple(found[:len(asks)]))
    record.decided(info, call, verdict)
    if call.broadcast and verdict.denied:
        request.app[METRICS].broadcast_denied.inc(len(verdict.denied))
    return verdict, found[len(asks):]


async def require(request: web.Request, call: Call, verdict: Verdict | None = None) -> None:
    """`decide` on a single call (unless already decided); Denied (with the PDP's decision) when refused."""
    verdict = await decide(request, call) if verdict is None else verdict
    if not verdict.allowed:
        raise Denied(verdict.decision, f"'{call.action}' on '{call.targets[0]}:{call.name}' is not permitted")


async def run(request: web.Request, call: Call, server_of: Callable[[str], ServerConfig], forward: Forward[T],
              verdict: Verdict | None = None) -> T:
    """A single call: decided (Denied when refused; `verdict` when already asked), its server found
    only then, the stages, forwarded."""
    await require(request, call, verdict)
    return await one(request, call, server_of(call.targets[0]), forward)


async def admit_all(request: web.Request, call: Call, server: ServerConfig) -> None:
    """Every stage, in order, for one permitted target; the first refusal is recorded (with the
    refusing stage's name) and raised."""
    for stage in request.app[CALL_STAGES]:
        try:
            await stage.before_forward(request, call, server)
        except Refused as exc:
            record.refused(audit(request), call, server.name, stage.name, exc.message)
            raise


async def forwarded(request: web.Request, call: Call, server: ServerConfig, forward: Forward[T]) -> T:
    """`forward` on one admitted target, timed, its answer judged (calls/outcome.py): a backend's
    "unknown tool" is UnknownTool wherever the pipeline holds the answer."""
    try:
        # The backend-latency metric's `operation`: tool calls keep their MCP name.
        operation = "call_tool" if call.action == "invoke_tool" else call.action
        result = await timed(request, server.name, operation, forward(server))
    except UpstreamRpcError as exc:
        if outcome.settle(request, call, server.name, error={"code": exc.code, "message": exc.rpc_message}) \
                == "unknown_tool":
            raise UnknownTool.of(call.name, server.name) from None
        raise
    if isinstance(result, Mapping) and outcome.settle(request, call, server.name, result) == "unknown_tool":
        raise UnknownTool.of(call.name, server.name)  # the backend's own answer: its catalog was stale
    return result


async def one(request: web.Request, call: Call, server: ServerConfig, forward: Forward[T]) -> T:
    """The stages, then `forward`, on one permitted target; a refusal is recorded and raised."""
    await admit_all(request, call, server)
    return await forwarded(request, call, server, forward)


async def many(request: web.Request, call: Call, servers: Mapping[str, ServerConfig], targets: Sequence[str],
               forward: Forward[T], *, known: Mapping[str, str] | None = None, deadline: float | None = None,
               ) -> tuple[dict[str, T], dict[str, str]]:
    """The stages and `forward` on every target concurrently, each within its own timeout and all
    within the broadcast deadline; (results, {server: why not}), `known` failures included.

    A call every target refused for bad arguments raises that refusal, as a bad single call would.
    """
    settings = request.app[SETTINGS]
    check_fanout(len(targets), settings.broadcast_max_targets)
    request.app[METRICS].broadcast_fanout.observe(len(targets))
    refusals: dict[str, Refused] = {}

    async def each(name: str) -> T:
        try:
            await admit_all(request, call, servers[name])
        except Refused as exc:
            refusals[name] = exc
            raise
        return await forwarded(request, call, servers[name], forward)

    results, failures = await broadcast.run_calls(
        targets, each, timeouts={n: servers[n].timeout for n in targets},
        deadline=settings.broadcast_deadline if deadline is None else deadline, describe_error=describe,
        start=request.app[METRICS].expected.slowest_first(targets))
    info = audit(request)
    invalid = refused_everywhere(refusals, targets)
    if invalid is not None:
        info.error = invalid.message
        raise invalid
    errors = {**(known or {}), **failures}
    record.finished(info, targets, refusals, results, errors)
    return results, errors


async def forward_result(request: web.Request, call: Call, server: ServerConfig) -> dict[str, Any]:
    """The plain forward (REST, broadcasts): the CallToolResult, waited for. A shallow copy of the
    arguments per server, so credential injection into one request never leaks to another."""
    return await request.app[UPSTREAM].call_tool(
        server.name, call.name, dict(call.decided_arguments or {}), call.caller)


async def timed(request: web.Request, server: str, operation: str, work: Awaitable[T]) -> T:
    """Await a backend call and record its latency by server and outcome (a tool call's also feeds
    the broadcasts' start order, `ExpectedLatency`)."""
    start = time.perf_counter()
    outcome = "error"
    try:
        result = await work
        outcome = "ok"
        return result
    finally:
        elapsed = time.perf_counter() - start
        metrics = request.app[METRICS]
        metrics.backend_call(server, operation, outcome).observe(elapsed)
        if operation == "call_tool":  # what broadcasts make; a cached catalog read would say ~0
            metrics.expected.observe(server, elapsed)


def enabled_server(request: web.Request, name: str) -> ServerConfig:
    """The enabled server called `name` (looked up once the PDP allowed the call), or 404."""
    server = request.app[SERVERS].get(name)
    if server is None:
        known = request.app[SERVERS].servers.get(name)
        raise NotFound(f"MCP server '{name}' is disabled" if known is not None else f"unknown MCP server '{name}'")
    return server


def check_fanout(count: int, limit: int) -> None:
    """TooManyTargets when a broadcast would reach more than `limit` servers."""
    if count > limit:
        raise TooManyTargets(f"broadcast would reach {count} servers; the limit is {limit}")


def describe(exc: BaseException) -> str:
    """One target's failure as a broadcast answer names it (never a credential or a body)."""
    mapped = to_gateway_error(exc)
    return mapped.message if mapped is not None else f"backend call failed ({type(exc).__name__})"
