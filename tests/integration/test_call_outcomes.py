"""What a backend answers is handled the same on every entry point (issue 10, gateway/calls/outcome.py).

Each test runs through the six ways in — REST invoke and broadcast, `/tools/{name}/invoke`, `/mcp`
by prefixed and by broadcast name, passthrough — against real SDK backends:
- a backend's "unknown tool" answer forgets every cached catalog of that backend;
- an `isError` result is audited as a failure (per target in a broadcast), with the entry point;
- a backend's error text echoing the credentials the gateway injected reaches no agent, log or
  audit row; nor does a successful result saying them back;
- a passthrough call asks the PDP once (visibility and the call in one batch).
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from gateway.keys import SERVERS, UPSTREAM
from shared.redact import REDACTED
from tests.fixtures.backend_server import (
    ALL_TOOLS,
    HIDDEN_ERROR,
    LEAK,
    LEAK_GET,
    LEAK_INIT,
    LEAK_INIT_SSE,
    LEAK_NOTE,
    LEAK_ODD,
    LEAK_OK,
    LEAK_PLAIN,
    LEAK_RPC,
)
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, audit_rows, caller_request_id, gateway_stack
from tests.integration.mcp_helpers import ACCEPT, META, modern_headers, rpc

ENTRIES = ("rest", "rest_broadcast", "tools", "mcp", "mcp_broadcast", "passthrough")
BROADCASTS = {"rest_broadcast", "tools", "mcp_broadcast"}
SINGLE = "alpha"  # the target of single-target entry points
TOKEN = "tok-fwd-7f3a9c2e"  # a credential the gateway injects


async def call_via(stack: Stack, entry: str, tool: str, arguments: dict[str, Any], servers: tuple[str, str],
                   rid: str) -> Any:
    """Call `tool` through `entry` (on servers[0] when single, on both when a broadcast); the answer."""
    hdrs = {"X-Request-ID": rid}
    if entry == "rest":
        return (await stack.call("POST", f"/mcp/invoke?mcp_server={servers[0]}", headers=hdrs,
                                 json={"tool_name": tool, "parameters": arguments}))[1]
    if entry == "rest_broadcast":
        return (await stack.call("POST", "/mcp/invoke-broadcast", headers=hdrs,
                                 json={"tool_name": tool, "parameters": arguments, "mcp_servers": list(servers)}))[1]
    if entry == "tools":
        return (await stack.call("POST", f"/tools/{tool}/invoke", headers=hdrs, json=arguments))[1]
    name = f"{servers[0]}__{tool}" if entry == "mcp" else tool
    path = f"/servers/{servers[0]}/mcp" if entry == "passthrough" else "/mcp"
    message = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
               "params": {"name": name, "arguments": arguments, "_meta": META}}
    return (await rpc(stack, path, message, headers={**hdrs, **modern_headers("tools/call", name)}))[1]


async def row_of(stack: Stack, dsn: str, rid: str) -> Any:
    """The audit row of the request `rid`."""
    rows = [r for r in await audit_rows(stack, dsn) if caller_request_id(r) == rid]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend]) -> AsyncIterator[Stack]:
    backends = {"alpha": mcp_backend_factory("normal", "outcome-alpha"),
                "beta": mcp_backend_factory("stateless-json", "outcome-beta")}
    async with gateway_stack(tmp_path, pg_dsn, {n: {"url": b.url} for n, b in backends.items()}) as s:
        yield s


async def vanish(backend: Backend, tool: str) -> None:
    """Remove `tool` from a running backend behind the gateway's back (its catalogs go stale)."""
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "vanish", "arguments": {"name": tool}, "_meta": META}}
    async with httpx2.AsyncClient() as client:
        resp = await client.post(backend.url, json=message, headers={
            "Accept": ACCEPT, **modern_headers("tools/call", "vanish")})
    assert resp.status_code == 200 and f"removed {tool}" in resp.text, resp.text


@pytest.mark.parametrize("entry", ENTRIES)
async def test_unknown_tool_forgets_every_cached_catalog_of_the_backend(
        tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend], entry: str) -> None:
    # Stateless backends: nothing tells the gateway the tool went (no list_changed) but the call.
    backends = {"alpha": mcp_backend_factory("stateless-json", f"vanishing-alpha-{entry}", tools=(*ALL_TOOLS, "vanish")),
                "beta": mcp_backend_factory("stateless-json", f"vanishing-beta-{entry}", tools=(*ALL_TOOLS, "vanish"))}
    async with gateway_stack(tmp_path, pg_dsn, {n: {"url": b.url} for n, b in backends.items()}) as stack:
        pool, generation = stack.app[UPSTREAM], stack.app[SERVERS].generation
        called = ("alpha", "beta") if entry in BROADCASTS else (SINGLE,)
        keys = [key for server in called for key in (server, f"{server}\x00sampling")]
        # Every catalog the gateway keeps, warm: the pool's (shared and per declared capabilities;
        # listing also learns each backend's era) and /mcp's lists (unprefixed names resolve there).
        for server in ("alpha", "beta"):
            tools = list((await pool.catalog(server)).values())
            pool.tool_names.store(f"{server}\x00sampling", generation, tools)
        _, listed, _ = await rpc(stack, "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                                                 "params": {"_meta": META}}, headers=modern_headers("tools/list"))
        assert any(t["name"] == "echo" for t in listed["result"]["tools"]), listed
        assert all(pool.tool_names.tools(k, generation) is not None for k in keys)
        for backend in backends.values():
            await vanish(backend, "echo")  # the backend now answers "Unknown tool: echo"
        answer = await call_via(stack, entry, "echo", {"text": "x"}, ("alpha", "beta"), uuid.uuid4().hex)
        assert [k for k in keys if pool.tool_names.tools(k, generation) is not None] == [], answer
        # The backend was asked (the gateway's catalog still had the tool) and said it has no such tool.
        for server in called:
            assert any(b'"tools/call"' in r.body and b'"name":"echo"' in r.body.replace(b" ", b"")
                       for r in backends[server].requests), server


@pytest.mark.parametrize("entry", ENTRIES)
async def test_an_iserror_result_is_audited_as_a_failure_with_its_entry_point(
        stack: Stack, pg_dsn: str, entry: str) -> None:
    rid = uuid.uuid4().hex
    await call_via(stack, entry, "fail", {"message": "boom"}, ("alpha", "beta"), rid)
    row = await row_of(stack, pg_dsn, rid)
    extra = json.loads(row["extra"])
    assert (row["status"], row["action"], extra["entry"]) == ("error", "invoke_tool", entry), dict(row)
    if entry in BROADCASTS:
        assert extra["tool_failed"] == ["alpha", "beta"], extra
    else:
        assert row["error"] == "tool returned isError" and row["mcp_server"] == SINGLE, dict(row)


async def test_a_successful_call_is_audited_as_success_with_its_entry_point(stack: Stack, pg_dsn: str) -> None:
    for entry in ENTRIES:
        rid = uuid.uuid4().hex
        await call_via(stack, entry, "echo", {"text": "fine"}, ("alpha", "beta"), rid)
        row = await row_of(stack, pg_dsn, rid)
        assert (row["status"], json.loads(row["extra"])["entry"]) == ("success", entry), dict(row)
        assert "tool_failed" not in json.loads(row["extra"])


# Each way a backend gets its credential (backend_auth): secret, and the texts none of its forms may
# leave a trace of (the first 8 characters, lower-cased: gateway/masking.py masks any such run).
LEAKY_AUTH = {
    "alpha": ({"method": "bearer", "credential_ref": "env://FWD_TEST_TOKEN"}, TOKEN),
    "beta": ({"method": "api_key", "location": "query", "name": "key", "credential_ref": "env://FWD_TEST_QKEY"},
             "ab+c/d=ef12Zq8vN2"),
    "gamma": ({"method": "basic", "credential_ref": "env://FWD_TEST_BASIC"}, "alice:pw-9Xq2Lm7Rt"),
    "delta": ({"method": "api_key", "location": "body", "name": "api_key", "credential_ref": "env://FWD_TEST_BODY"},
              "body-key-K4m8Q1zW"),
}
NEEDLES = ("tok-fwd-", "ab+c/d=e", "ab%2bc/d", "ab%2bc%2", "alice:pw", "pw-9xq2l", "body-key")


@pytest.mark.parametrize("entry", ENTRIES)
async def test_a_backend_echoing_its_credentials_is_not_quoted(
        tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, entry: str) -> None:
    """Header, query, basic and body credentials, echoed raw, upper-cased, cut short, NUL-spaced,
    decoded, percent- or JSON-encoded, in an HTTP 500's message and in a JSON-RPC error's message and
    data: the agent's answer, the audit row and the logs show none of them."""
    backend = mcp_backend_factory("leaky", f"leaky-{entry}")
    servers = {}
    for (name, (auth, secret)), var in zip(LEAKY_AUTH.items(), ("TOKEN", "QKEY", "BASIC", "BODY"), strict=True):
        monkeypatch.setenv(f"FWD_TEST_{var}", secret)
        servers[name] = {"url": backend.url, "auth": {**auth, "credential_ref": f"env://FWD_TEST_{var}"}}
    caplog.set_level(logging.DEBUG)
    said, rows = [], []
    async with gateway_stack(tmp_path, pg_dsn, servers) as stack:
        pairs = [("alpha", "beta"), ("gamma", "delta")] if entry in BROADCASTS else \
            [(name, "alpha") for name in LEAKY_AUTH]
        for text in (LEAK, LEAK_RPC):
            for pair in pairs:
                rid = uuid.uuid4().hex
                answer = await call_via(stack, entry, "echo", {"text": text}, pair, rid)
                said.append(json.dumps(answer))
                rows.append(json.dumps({k: str(v) for k, v in dict(await row_of(stack, pg_dsn, rid)).items()}))
    assert any("500" in s for s in said) and any("-32000" in s or "-32603" in s for s in said), said
    calls = [r for r in backend.requests if b'"tools/call"' in r.body]
    assert any(TOKEN in r.headers.get("authorization", "") for r in calls)  # the credentials were given
    assert any(b"body-key-K4m8Q1zW" in r.body for r in calls)  # ... the body one too
    for needle in NEEDLES:
        for text in (*said, *rows, caplog.text):
            assert needle not in text.lower(), (needle, text)


@pytest.mark.parametrize("entry", ENTRIES)
async def test_a_successful_result_saying_the_credentials_back_is_masked(
        tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend], monkeypatch: pytest.MonkeyPatch,
        entry: str) -> None:
    """Every credential form said back in a successful result — an SSE answer (`echo` "leak-ok": raw,
    upper-cased, cut short, NUL-spaced, JSON-escaped) and a JSON one (the SDK's own `get_headers`) —
    is masked on every entry point; the rest of the result is kept as the backend wrote it."""
    backend = mcp_backend_factory("leaky", f"leaky-ok-{entry}", tools=("echo", "get_headers"))
    servers = {}
    for (name, (auth, secret)), var in zip(LEAKY_AUTH.items(), ("TOKEN", "QKEY", "BASIC", "BODY"), strict=True):
        monkeypatch.setenv(f"FWD_TEST_{var}", secret)
        servers[name] = {"url": backend.url, "auth": {**auth, "credential_ref": f"env://FWD_TEST_{var}"}}
    said = []
    async with gateway_stack(tmp_path, pg_dsn, servers) as stack:
        pairs = [("alpha", "beta"), ("gamma", "delta")] if entry in BROADCASTS else \
            [(name, "alpha") for name in LEAKY_AUTH]
        for tool, arguments in (("echo", {"text": LEAK_OK}), ("get_headers", {})):
            for pair in pairs:
                answer = await call_via(stack, entry, tool, arguments, pair, uuid.uuid4().hex)
                said.append(json.dumps(answer))
    told = [m for s in said for m in re.findall(r"you sent: (.*?)\\n \(fine\)", s)]
    assert len(told) >= 5 * len(pairs) and sum(REDACTED in t for t in told) >= 4 * len(pairs), told  # the rest kept
    assert all('"iserror": true' not in s.lower() for s in said), said
    calls = [r for r in backend.requests if b'"tools/call"' in r.body]
    assert any(TOKEN in r.headers.get("authorization", "") for r in calls)  # the credentials were given
    for needle in NEEDLES:
        for text in said:
            assert needle not in text.lower(), (needle, text)


@pytest.mark.parametrize("entry", ("mcp", "passthrough"))
async def test_notifications_during_a_call_saying_the_credentials_are_masked(
        tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend], monkeypatch: pytest.MonkeyPatch,
        entry: str) -> None:
    """A log message and a progress notification the backend sends on a call's stream, saying its
    credentials back in every form, reach the agent masked (the rest of them kept) on /mcp and passthrough."""
    backend = mcp_backend_factory("leaky", f"leaky-note-{entry}", tools=("echo",))
    monkeypatch.setenv("FWD_TEST_TOKEN", TOKEN)
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": backend.url, "auth": LEAKY_AUTH["alpha"][0]}}) as stack:
        name = "alpha__echo" if entry == "mcp" else "echo"
        message = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
            "name": name, "arguments": {"text": LEAK_NOTE}, "_meta": {**META, "progressToken": "agent-7"}}}
        path = "/mcp" if entry == "mcp" else "/servers/alpha/mcp"
        headers = {**stack.headers(), "Accept": ACCEPT, **modern_headers("tools/call", name)}
        async with stack.session.post(stack.url + path, json=message, headers=headers) as resp:
            said = await resp.text()
    events = [json.loads(line[5:]) for line in said.splitlines() if line.startswith("data:") and line[5:].strip()]
    methods = [e.get("method") for e in events]
    assert "notifications/message" in methods and "notifications/progress" in methods and "done" in said, said
    assert REDACTED in said and "got " in said and "using " in said, said  # masked, the rest kept
    assert any(TOKEN in r.headers.get("authorization", "") for r in backend.requests)  # the credential was given
    for needle in NEEDLES[:1]:
        assert needle not in said.lower(), said


async def test_passthrough_masks_a_plain_text_refusal_and_the_handshakes_instructions(
        tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend], monkeypatch: pytest.MonkeyPatch) -> None:
    """Passthrough relays a backend's 4xx body and its initialize answer as they came: a text/plain
    403 and handshake `instructions` saying the credential back reach the agent masked."""
    backend = mcp_backend_factory("leaky", "leaky-plain", tools=("echo",))
    monkeypatch.setenv("FWD_TEST_TOKEN", TOKEN)
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": backend.url, "auth": LEAKY_AUTH["alpha"][0]}}) as stack:
        refused = await stack.session.post(
            stack.url + "/servers/alpha/mcp", headers={**stack.headers(), "Accept": ACCEPT, **modern_headers("tools/call", "echo")},
            json={"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                  "params": {"name": "echo", "arguments": {"text": LEAK_PLAIN}, "_meta": META}})
        refusal = await refused.text()
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": LEAK_INIT, "version": "1"}}}
        status, answer, _ = await rpc(stack, "/servers/alpha/mcp", hello)
    assert refused.status == 403 and "bad credentials: " in refusal and REDACTED in refusal, refusal
    assert status == 200 and REDACTED in answer["result"]["instructions"], answer
    assert any(TOKEN in r.headers.get("authorization", "") for r in backend.requests)  # the credential was given
    for needle in NEEDLES[:1]:
        assert needle not in refusal.lower() and needle not in json.dumps(answer).lower(), (refusal, answer)


def _told(text: str) -> str:
    """What an agent reads: the text, and each JSON body or SSE data line decoded (escapes spelt out)."""
    datas = [line[5:] for line in text.splitlines() if line.startswith("data:")] or [text]
    decoded = []
    for data in datas:
        try:
            decoded.append(json.dumps(json.loads(data)))
        except ValueError:
            pass
    return "\n".join([text, *decoded]).lower()


@pytest.mark.parametrize("entry", ("mcp", "passthrough"))
async def test_a_stream_saying_the_credential_outside_its_results_is_masked(
        tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend], monkeypatch: pytest.MonkeyPatch,
        entry: str) -> None:
    """The credential in an SSE comment, `id:`, unknown field, a batch (\\u-escaped), a bare string,
    members JSON-RPC has no name for and a last block cut short: none reaches the agent."""
    backend = mcp_backend_factory("leaky", f"leaky-odd-{entry}", tools=("echo",))
    monkeypatch.setenv("FWD_TEST_TOKEN", TOKEN)
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": backend.url, "auth": LEAKY_AUTH["alpha"][0]}}) as stack:
        name = "alpha__echo" if entry == "mcp" else "echo"
        message = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                   "params": {"name": name, "arguments": {"text": LEAK_ODD}, "_meta": META}}
        path = "/mcp" if entry == "mcp" else "/servers/alpha/mcp"
        headers = {**stack.headers(), "Accept": ACCEPT, **modern_headers("tools/call", name)}
        async with stack.session.post(stack.url + path, json=message, headers=headers) as resp:
            said = await resp.text()
    assert "done" in said, said
    assert any(TOKEN in r.headers.get("authorization", "") for r in backend.requests)  # the credential was given
    assert TOKEN not in _told(said), said


async def test_passthrough_masks_a_get_streams_refusal_and_a_notification_before_the_handshake(
        tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend], monkeypatch: pytest.MonkeyPatch) -> None:
    """A GET stream's 401 text and an SSE initialize answer's log message before it, saying the
    credential back, reach the agent masked."""
    backend = mcp_backend_factory("leaky", "leaky-get", tools=("echo",))
    monkeypatch.setenv("FWD_TEST_TOKEN", TOKEN)
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": backend.url, "auth": LEAKY_AUTH["alpha"][0]}}) as stack:
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": LEAK_INIT_SSE, "version": "1"}}}
        hdrs = {**stack.headers(), "Accept": ACCEPT, "Content-Type": "application/json"}
        async with stack.session.post(stack.url + "/servers/alpha/mcp", json=hello, headers=hdrs) as resp:
            greeting, session = await resp.text(), resp.headers.get("Mcp-Session-Id", "")
        async with stack.session.get(stack.url + "/servers/alpha/mcp", headers={
                **stack.headers(), "Accept": "text/event-stream", "Mcp-Session-Id": session,
                "Mcp-Protocol-Version": "2025-11-25", "Last-Event-ID": LEAK_GET}) as resp:
            refusal, status = await resp.text(), resp.status
    assert session and '"protocolversion"' in greeting.lower(), greeting
    assert status == 401 and "bad token: " in refusal and REDACTED in refusal, (status, refusal)
    assert any(TOKEN in r.headers.get("authorization", "") for r in backend.requests)  # the credential was given
    assert TOKEN not in _told(greeting) and TOKEN not in _told(refusal), (greeting, refusal)


async def test_a_prompt_error_echoing_the_credential_is_masked_on_mcp(
        tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend], monkeypatch: pytest.MonkeyPatch) -> None:
    """/mcp's prompts/get relays a backend's JSON-RPC error as its own: masked like a call's."""
    backend = mcp_backend_factory("leaky", "leaky-prompt", tools=(*ALL_TOOLS, "grow_prompt"))
    monkeypatch.setenv("FWD_TEST_TOKEN", TOKEN)
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": backend.url, "auth": LEAKY_AUTH["alpha"][0]}}) as stack:
        grown = await call_via(stack, "rest", "grow_prompt", {"name": "p"}, ("alpha", "alpha"), uuid.uuid4().hex)
        assert "added prompt p" in json.dumps(grown), grown
        message = {"jsonrpc": "2.0", "id": 9, "method": "prompts/get",
                   "params": {"name": "alpha__p", "arguments": {"text": LEAK_RPC}, "_meta": META}}
        _, answer, _ = await rpc(stack, "/mcp", message, headers=modern_headers("prompts/get", "alpha__p"))
    assert answer["error"]["code"] == -32000 and "rejected credentials" in answer["error"]["message"], answer
    assert "tok-fwd-" not in json.dumps(answer).lower(), answer


async def test_an_iserror_key_written_escaped_is_still_a_failure(
        tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend]) -> None:
    """`"\\u0069sError": true` is `isError` to every JSON parser: audited as a failure on every entry
    point (passthrough's relay used to look for the bytes `isError` before parsing)."""
    backend = mcp_backend_factory("leaky", "escaping")
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": backend.url}, "beta": {"url": backend.url}}) as stack:
        for entry in ENTRIES:
            rid = uuid.uuid4().hex
            answer = await call_via(stack, entry, "echo", {"text": HIDDEN_ERROR}, ("alpha", "beta"), rid)
            row = await row_of(stack, pg_dsn, rid)
            assert row["status"] == "error", (entry, answer, dict(row))


async def test_a_passthrough_call_asks_the_pdp_once(stack: Stack) -> None:
    async def pdp_requests() -> float:
        _, text, _ = await stack.call("GET", "/metrics", subject=None)
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("mcpgw_gateway_pdp_request_duration_seconds_count"))

    before = await pdp_requests()
    # Fresh arguments and a server not seen yet: nothing is in the decision cache.
    answer = await call_via(stack, "passthrough", "echo", {"text": uuid.uuid4().hex}, ("beta", "alpha"),
                            uuid.uuid4().hex)
    assert "result" in answer and not answer["result"].get("isError"), answer
    assert await pdp_requests() - before == 1
