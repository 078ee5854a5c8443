"""PolicyClient against a real AuthZEN server on loopback: decisions, cache, fail-closed paths.

The PDP here is a small aiohttp app speaking the wire contract of docs/architecture.md, so the
failure modes (garbage, 5xx, slowness) can be switched on; tests against the real PDP app live
with the PDP once it exists.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway.pep import PdpUnavailable, PolicyClient
from shared.auth import Principal
from shared.authzen import server_resource, tool_resource
from shared.settings import Secret

PDP_TOKEN = "pdp-secret-token-value"
ALICE = Principal("alice", roles=("analyst",), groups=("/eng",), scopes=("openid",))


class FakePdp:
    """Allows what `allow` lists as (subject, action, resource id); counts calls; can misbehave."""

    def __init__(self) -> None:
        self.allow: set[tuple[str, str, str]] = set()
        self.version = "v1"
        self.mode = "ok"  # ok | garbage | not_json | status500 | slow | short_batch
        self.calls: list[tuple[str, dict]] = []
        self.auth_headers: list[str | None] = []
        self.app = web.Application()
        self.app.router.add_post("/access/v1/evaluation", self.evaluation)
        self.app.router.add_post("/access/v1/evaluations", self.evaluations)
        self.app.router.add_post("/access/v1/search/resource", self.search)
        self.app.router.add_post("/elsewhere", self.elsewhere)
        self.redirected: list[str | None] = []

    def decide(self, subject: dict, action: dict, resource: dict) -> dict:
        allowed = (subject["id"], action["name"], resource["id"]) in self.allow
        return {
            "decision": allowed,
            "context": {
                "decision_id": "d1",
                "policy_version": self.version,
                "reason": "ok" if allowed else "denied by policy",
            },
        }

    async def _misbehave(self, request: web.Request) -> web.Response | None:
        body = await request.json()
        self.calls.append((request.path, body))
        self.auth_headers.append(request.headers.get("Authorization"))
        if self.mode == "garbage":
            return web.json_response({"decision": "yes"})
        if self.mode == "not_json":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if self.mode == "status500":
            return web.json_response({"error": {"code": "internal", "message": "boom"}}, status=500)
        if self.mode == "slow":
            await asyncio.sleep(1)
        if self.mode == "redirect":
            raise web.HTTPTemporaryRedirect("/elsewhere")
        return None

    async def elsewhere(self, request: web.Request) -> web.Response:
        # Where a redirect leads: allows everything and records who brought which token.
        self.redirected.append(request.headers.get("Authorization"))
        return web.json_response({"decision": True, "context": {"policy_version": self.version}})

    async def evaluation(self, request: web.Request) -> web.Response:
        bad = await self._misbehave(request)
        if bad is not None:
            return bad
        body = self.calls[-1][1]
        return web.json_response(self.decide(body["subject"], body["action"], body["resource"]))

    async def evaluations(self, request: web.Request) -> web.Response:
        bad = await self._misbehave(request)
        if bad is not None:
            return bad
        body = self.calls[-1][1]
        answers = [
            self.decide(body["subject"], e["action"], e["resource"]) for e in body["evaluations"]
        ]
        if self.mode == "short_batch":
            answers = answers[:-1]
        return web.json_response({"evaluations": answers})

    async def search(self, request: web.Request) -> web.Response:
        bad = await self._misbehave(request)
        if bad is not None:
            return bad
        body = self.calls[-1][1]
        who, action = body["subject"]["id"], body["action"]["name"]
        ids = [c for c in body["context"]["candidates"] if (who, action, c) in self.allow]
        ids.append("other:leaked")  # a PDP returning something never asked must not widen access
        self.allow.add((who, action, "other:leaked"))
        return web.json_response(
            {
                "results": [{"type": "mcp_tool", "id": i} for i in ids],
                "context": {"policy_version": self.version},
            }
        )


@pytest.fixture
async def pdp() -> AsyncIterator[tuple[FakePdp, str]]:
    fake = FakePdp()
    runner = web.AppRunner(fake.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield fake, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


REGISTRIES: dict[int, CollectorRegistry] = {}


def client(session: aiohttp.ClientSession, url: str, **kwargs: object) -> PolicyClient:
    registry = CollectorRegistry()
    pep = PolicyClient(session, url, token=Secret(PDP_TOKEN), registry=registry, **kwargs)  # type: ignore[arg-type]
    REGISTRIES[id(pep)] = registry
    return pep


def counter(pep: PolicyClient, name: str, **labels: str) -> float:
    """A counter read back from the registry the client was given (proves it registered there)."""
    registry = REGISTRIES[id(pep)]
    return registry.get_sample_value(f"mcpgw_gateway_pdp_{name}_total", labels) or 0.0


async def test_allow_and_deny(pdp: tuple[FakePdp, str], session: aiohttp.ClientSession) -> None:
    fake, url = pdp
    fake.allow.add(("alice", "invoke_tool", "files:read"))
    pep = client(session, url)
    allowed = await pep.check(
        ALICE, "invoke_tool", tool_resource("files", "read"), arguments={"path": "/a"}
    )
    denied = await pep.check(ALICE, "invoke_tool", tool_resource("files", "write"))
    assert allowed.allowed and allowed.policy_version == "v1" and allowed.decision_id == "d1"
    assert not denied.allowed and denied.reason == "denied by policy"
    path, body = fake.calls[0]
    assert path == "/access/v1/evaluation"
    assert body["subject"] == {
        "type": "user",
        "id": "alice",
        "properties": {"roles": ["analyst"], "groups": ["/eng"], "scopes": ["openid"]},
    }
    assert body["resource"]["properties"] == {"mcp_server": "files", "tool": "read"}
    assert body["context"] == {"arguments": {"path": "/a"}}
    assert fake.auth_headers[0] == f"Bearer {PDP_TOKEN}"


async def test_cache_hits_and_argument_sensitivity(
    pdp: tuple[FakePdp, str], session: aiohttp.ClientSession
) -> None:
    fake, url = pdp
    fake.allow.add(("alice", "invoke_tool", "files:read"))
    pep = client(session, url)
    res = tool_resource("files", "read")
    for _ in range(3):
        assert (
            await pep.check(
                ALICE, "invoke_tool", res, arguments={"p": 1}, facts={"request_id": "x"}
            )
        ).allowed
    assert len(fake.calls) == 1
    assert counter(pep, "cache", result="hit") == 2 and counter(pep, "cache", result="miss") == 1
    await pep.check(ALICE, "invoke_tool", res, arguments={"p": 2})
    other = Principal("alice", roles=("admin",))
    await pep.check(other, "invoke_tool", res, arguments={"p": 1})
    assert len(fake.calls) == 3  # different arguments / roles never share an entry


async def test_new_policy_version_invalidates(
    pdp: tuple[FakePdp, str], session: aiohttp.ClientSession
) -> None:
    fake, url = pdp
    fake.allow.add(("alice", "list_tools", "files"))
    pep = client(session, url, cache_ttl=60)
    assert (await pep.check(ALICE, "list_tools", server_resource("files"))).allowed
    fake.allow.clear()
    fake.version = "v2"
    assert (await pep.check(ALICE, "list_tools", server_resource("files"))).allowed  # cached
    await pep.check(ALICE, "list_tools", server_resource("other"))  # any answer carries v2
    assert pep.cache.policy_version == "v2"
    assert not (await pep.check(ALICE, "list_tools", server_resource("files"))).allowed
    assert len(fake.calls) == 3


async def test_rollback_to_an_earlier_version_is_followed(
    pdp: tuple[FakePdp, str], session: aiohttp.ClientSession
) -> None:
    fake, url = pdp
    pep = client(session, url, cache_ttl=60)
    files = server_resource("files")
    assert not (await pep.check(ALICE, "list_tools", files)).allowed  # v1: denied
    fake.version, fake.allow = "v2", {("alice", "list_tools", "files")}
    await pep.check(ALICE, "list_tools", server_resource("other"))
    assert (await pep.check(ALICE, "list_tools", files)).allowed  # v2: allowed, cached
    fake.version, fake.allow = "v1", set()  # rolled back
    await pep.check(ALICE, "list_tools", server_resource("probe"))
    assert pep.cache.policy_version == "v1"
    assert not (await pep.check(ALICE, "list_tools", files)).allowed  # v2's allow is gone
    calls = len(fake.calls)
    assert not (await pep.check(ALICE, "list_tools", files)).allowed
    assert len(fake.calls) == calls  # and v1's answers are cached again


async def test_check_many_batches_only_misses(
    pdp: tuple[FakePdp, str], session: aiohttp.ClientSession
) -> None:
    fake, url = pdp
    fake.allow |= {("alice", "list_tools", "a"), ("alice", "invoke_tool", "c:t")}
    pep = client(session, url)
    await pep.check(ALICE, "list_tools", server_resource("a"), facts={"client_addr": "127.0.0.1"})
    items = [
        ("list_tools", server_resource("a")),
        ("list_tools", server_resource("b")),
        ("invoke_tool", tool_resource("c", "t"), {"x": 1}),
    ]
    decisions = await pep.check_many(ALICE, items, facts={"client_addr": "127.0.0.1"})
    assert [d.allowed for d in decisions] == [True, False, True]
    path, body = fake.calls[-1]
    assert path == "/access/v1/evaluations" and len(body["evaluations"]) == 2
    assert body["evaluations"][1]["context"] == {"client_addr": "127.0.0.1", "arguments": {"x": 1}}
    assert body["options"] == {"evaluations_semantic": "execute_all"}
    await pep.check_many(ALICE, items, facts={"client_addr": "127.0.0.1"})
    assert len(fake.calls) == 2  # all served from cache


async def test_filter_tools_one_call_and_no_widening(
    pdp: tuple[FakePdp, str], session: aiohttp.ClientSession
) -> None:
    fake, url = pdp
    fake.allow |= {("alice", "invoke_tool", "files:read"), ("alice", "invoke_tool", "git:log")}
    pep = client(session, url)
    pairs = [("files", "read"), ("files", "write"), ("git", "log")]
    assert await pep.filter_tools(ALICE, pairs) == {("files", "read"), ("git", "log")}
    assert len(fake.calls) == 1 and fake.calls[0][1]["context"]["candidates"] == [
        "files:read",
        "files:write",
        "git:log",
    ]
    assert await pep.filter_tools(ALICE, list(reversed(pairs))) == {
        ("files", "read"),
        ("git", "log"),
    }
    assert len(fake.calls) == 1  # cached
    assert await pep.filter_tools(ALICE, []) == set()


FAILURES = [
    ("garbage", "wire"),
    ("not_json", "wire"),
    ("status500", "status"),
    ("slow", "timeout"),
    ("redirect", "status"),  # never followed: the token stays with the PDP and a 3xx is a deny
]


@pytest.mark.parametrize(("mode", "kind"), FAILURES)
async def test_fail_closed(
    pdp: tuple[FakePdp, str],
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    kind: str,
) -> None:
    fake, url = pdp
    fake.allow |= {("alice", "invoke_tool", "files:read"), ("alice", "list_tools", "files")}
    fake.mode = mode
    pep = client(session, url, timeout=0.2)
    caplog.set_level(logging.WARNING, logger="gateway.pep")
    calls = [
        pep.check(ALICE, "invoke_tool", tool_resource("files", "read")),
        pep.check_many(ALICE, [("list_tools", server_resource("files"))]),
        pep.filter_tools(ALICE, [("files", "read")]),
    ]
    for call in calls:
        with pytest.raises(PdpUnavailable):
            await call
    assert counter(pep, "failures", kind=kind) == 3
    assert fake.redirected == []
    assert len(pep.cache) == 0
    assert caplog.records and all(
        PDP_TOKEN not in r.getMessage() + str(r.__dict__) for r in caplog.records
    )
    fake.mode = "ok"  # recovers without any state to reset
    assert (await pep.check(ALICE, "invoke_tool", tool_resource("files", "read"))).allowed


async def test_short_batch_is_a_failure(
    pdp: tuple[FakePdp, str], session: aiohttp.ClientSession
) -> None:
    fake, url = pdp
    fake.allow.add(("alice", "list_tools", "a"))
    fake.mode = "short_batch"
    pep = client(session, url)
    with pytest.raises(PdpUnavailable, match="wrong number"):
        await pep.check_many(
            ALICE, [("list_tools", server_resource("a")), ("list_tools", server_resource("b"))]
        )


async def test_connection_refused(session: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        pep = client(session, f"http://127.0.0.1:{port}")
        with pytest.raises(PdpUnavailable, match="unreachable"):
            await pep.check(ALICE, "list_servers", server_resource("a"))
    assert counter(pep, "failures", kind="unreachable") == 1


async def test_no_token_means_no_authorization_header(
    pdp: tuple[FakePdp, str], session: aiohttp.ClientSession
) -> None:
    fake, url = pdp
    pep = PolicyClient(session, url)
    await pep.check(ALICE, "list_servers", server_resource("a"))
    assert fake.auth_headers == [None]
