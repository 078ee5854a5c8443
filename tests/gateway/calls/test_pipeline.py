"""The call pipeline's parts without HTTP: the Call, the Verdict, the audit record, and the stages
run by `one` and `many` in order (a real app's state, a request built by aiohttp's test utilities)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry

from gateway.calls import audit as record
from gateway.calls import pipeline
from gateway.calls.admit import InvalidArguments, Refused, UnknownTool
from gateway.calls.call import Call, Verdict
from gateway.errors import BadGateway, GatewayTimeout
from gateway.gwaudit import AuditInfo
from gateway.keys import AUDIT_INFO, CALL_STAGES, METRICS, SETTINGS
from gateway.metrics import GatewayMetrics
from gateway.registry import ServerConfig
from gateway.settings import load_gateway_settings
from gateway.upstream.errors import UpstreamError, UpstreamTimeout
from gateway.upstream.sessions import Caller
from shared.auth import Principal
from shared.authzen import Decision

ALLOW, DENY = Decision(True, "d1", "v1", "role dev"), Decision(False, "d2", "v1", "rule: no deletes")


def call(targets: tuple[str, ...] = ("a",), arguments: object = None, action: Any = "invoke_tool",
         broadcast: bool = False) -> Call:
    return Call("rest", Principal("u"), Caller.of("u"), action, "echo", targets, arguments, broadcast)


@pytest.mark.parametrize(("action", "arguments", "decided"), [
    ("invoke_tool", {"x": 1}, {"x": 1}),
    ("invoke_tool", None, {}),          # MCP: omitted arguments are an empty object
    ("invoke_tool", [1], {}),           # not an object: decided as none, refused by admission
    ("get_prompt", {"lang": "en"}, {"lang": "en"}),
    ("read_resource", None, None),
])
def test_decided_arguments(action: Any, arguments: object, decided: object) -> None:
    assert call(arguments=arguments, action=action).decided_arguments == decided


def test_verdict_splits_in_target_order() -> None:
    verdict = Verdict(("a", "b", "c"), (DENY, ALLOW, ALLOW))
    assert verdict.permitted == ["b", "c"] and verdict.allowed
    assert verdict.denied == {"a": "denied: rule: no deletes"}
    assert verdict.decision is ALLOW  # the first allow is what is reported
    nobody = Verdict(("a", "b"), (DENY, Decision(False)))
    assert not nobody.allowed and nobody.decision is DENY
    assert nobody.denied["b"] == "denied: not permitted by policy"


def test_audit_of_a_single_call_and_a_broadcast() -> None:
    info = AuditInfo()
    single = call(arguments={"text": "x"})
    record.started(info, single)
    record.decided(info, single, Verdict(("a",), (DENY,)))
    assert (info.action, info.mcp_server, info.tool, info.parameters) == ("invoke_tool", "a", "echo", {"text": "x"})
    assert info.decision is DENY and info.denied and info.extra == {"entry": "rest"}

    info = AuditInfo()
    many = call(("a", "b"), broadcast=True)
    record.started(info, many)
    record.decided(info, many, Verdict(("a", "b"), (ALLOW, DENY)))
    record.finished(info, ["a"], {}, {}, {"a": "timed out", "b": "denied: x"})
    assert info.mcp_server is None and not info.denied and info.decision is ALLOW
    assert info.extra == {"entry": "rest", "targets": ["a", "b"], "denied": ["b"], "called": ["a"], "failed": ["a", "b"]}
    assert info.error == "no target succeeded" and info.tool_failed


def test_fanout_limit() -> None:
    pipeline.check_fanout(3, 3)
    with pytest.raises(pipeline.TooManyTargets, match="would reach 4 servers; the limit is 3") as exc:
        pipeline.check_fanout(4, 3)
    assert exc.value.status == 400 and exc.value.rpc_code == -32602


@pytest.mark.parametrize(("exc", "text"), [
    (UpstreamTimeout("a", 2), "backend a: no answer within 2 s"),
    (UpstreamError("a", "HTTP 500"), "backend a: HTTP 500"),
    (InvalidArguments("bad"), "bad"),
    (BadGateway("gone"), "gone"),
    (TimeoutError(), GatewayTimeout("backend timed out").message),
    (KeyError("secret"), "backend call failed (KeyError)"),  # never the exception's text
])
def test_describe(exc: BaseException, text: str) -> None:
    assert pipeline.describe(exc) == text


class Recording:
    """A stage that records the call and refuses the servers named in `refuse`."""

    def __init__(self, name: str, log: list[str], refuse: tuple[str, ...] = (), error: type[Refused] = Refused) -> None:
        self.name, self.log, self.refuse, self.error = name, log, refuse, error

    async def before_forward(self, request: web.Request, call: Call, server: ServerConfig) -> None:
        self.log.append(f"{self.name}:{server.name}")
        if server.name in self.refuse:
            raise self.error(f"{self.name} refused {server.name}")


def request_with(*stages: Any, max_targets: int = 8) -> web.Request:
    app = web.Application()
    app[CALL_STAGES] = stages
    app[SETTINGS] = load_gateway_settings(environ=ENV, dotenv=None,
                                          overrides={"broadcast_max_targets": max_targets})
    app[METRICS] = GatewayMetrics(CollectorRegistry())
    request = make_mocked_request("POST", "/", app=app)
    request[AUDIT_INFO] = AuditInfo()
    return request


ENV = {"MCPGW_GATEWAY_ISSUER": "https://idp.example/realms/r", "MCPGW_GATEWAY_AUDIENCE": "mcpgw",
       "MCPGW_GATEWAY_PUBLIC_URL": "https://gw.example"}
SERVERS = {n: ServerConfig(n, f"http://127.0.0.1:1/{n}") for n in ("a", "b", "c")}


async def test_one_runs_every_stage_in_order_then_forwards() -> None:
    log: list[str] = []
    request = request_with(Recording("first", log), Recording("second", log))

    async def forward(server: ServerConfig) -> str:
        log.append(f"forward:{server.name}")
        return "ok"

    assert await pipeline.one(request, call(), SERVERS["a"], forward) == "ok"
    assert log == ["first:a", "second:a", "forward:a"]


async def test_one_stops_at_the_first_refusal_and_records_it() -> None:
    log: list[str] = []
    request = request_with(Recording("first", log, refuse=("a",)), Recording("second", log))

    async def forward(server: ServerConfig) -> str:
        raise AssertionError("a refused call must not be forwarded")

    with pytest.raises(Refused, match="first refused a"):
        await pipeline.one(request, call(), SERVERS["a"], forward)
    assert log == ["first:a"] and request[AUDIT_INFO].error == "first refused a"


async def test_many_refuses_per_target_and_forwards_the_rest() -> None:
    log: list[str] = []
    request = request_with(Recording("gate", log, refuse=("b",)))
    forwarded: list[str] = []

    async def forward(server: ServerConfig) -> str:
        forwarded.append(server.name)
        await asyncio.sleep(0)
        return f"done on {server.name}"

    broadcast = call(("a", "b", "c"), broadcast=True)
    results, errors = await pipeline.many(request, broadcast, SERVERS, ["a", "b", "c"], forward,
                                          known={"d": "unknown MCP server 'd'"})
    assert results == {"a": "done on a", "c": "done on c"} and sorted(forwarded) == ["a", "c"]
    assert errors == {"d": "unknown MCP server 'd'", "b": "gate refused b"}
    assert request[AUDIT_INFO].extra == {"refused_by": {"b": "gate"}, "called": ["a", "c"], "failed": ["b", "d"]}


async def test_many_refused_everywhere_for_bad_arguments_is_a_bad_call() -> None:
    request = request_with(Recording("schema", [], refuse=("a", "b"), error=InvalidArguments))

    async def forward(server: ServerConfig) -> str:
        raise AssertionError("never forwarded")

    with pytest.raises(InvalidArguments, match="schema refused"):
        await pipeline.many(request, call(("a", "b"), broadcast=True), SERVERS, ["a", "b"], forward)


async def test_many_refused_everywhere_otherwise_is_answered_per_target() -> None:
    request = request_with(Recording("catalog", [], refuse=("a", "b"), error=UnknownTool))

    async def forward(server: ServerConfig) -> str:
        raise AssertionError("never forwarded")

    results, errors = await pipeline.many(request, call(("a", "b"), broadcast=True), SERVERS, ["a", "b"], forward)
    assert results == {} and set(errors) == {"a", "b"}


async def test_many_checks_the_fanout_limit_before_any_stage() -> None:
    log: list[str] = []
    request = request_with(Recording("gate", log), max_targets=2)

    async def forward(server: ServerConfig) -> str:
        return "x"

    with pytest.raises(pipeline.TooManyTargets):
        await pipeline.many(request, call(("a", "b", "c"), broadcast=True), SERVERS, ["a", "b", "c"], forward)
    assert log == []


def test_admission_is_the_first_stage() -> None:
    assert isinstance(pipeline.STAGES[0], pipeline.Admission)
