"""gateway.upstream.lean: the lean client's pool — bounded waits and refusals at its limits, keep-alive with
the idle close, a resend only for HTTP-idempotent methods on a reused connection, TLS verified, the SSRF
guard's resolver consulted — and the sender's choice of it, against real loopback servers."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.resolver import ThreadedResolver
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from gateway.registry import parse_servers
from gateway.upstream import create_session
from gateway.upstream.errors import BackendDisconnected, UpstreamError, UpstreamTimeout
from gateway.upstream.guard import GuardedResolver
from gateway.upstream.http1 import LeanResponse
from gateway.upstream.lean import LeanPool, PoolFull
from gateway.upstream.sender import Sender
from tests.fixtures import raw_http
from tests.fixtures.raw_http import answering, read_request

serve = raw_http.serve  # the loopback server fixture
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def lean(**options: Any) -> LeanPool:
    settings: dict[str, Any] = {"limit": 10, "limit_per_host": 4, "resolver": ThreadedResolver(), "keepalive": 4.0}
    return LeanPool(**(settings | options))


async def call(pool: LeanPool, url: str, method: str = "POST", limit: float = 5.0) -> bytes:
    async with await pool.request(method, URL(url), {}, b"{}" if method == "POST" else None,
                                  connect_limit=limit, read_timeout=limit) as resp:
        return await resp.content.read()


def slow_first(finish: asyncio.Event) -> Any:
    """The first answer's body ends only once `finish` is set (its connection stays held till then);
    later connections answer at once."""
    first = True

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal first
        while True:
            await read_request(reader)
            if first:
                first = False
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{")
                await finish.wait()
                writer.write(b"}")
            else:
                writer.write(OK)
    return script


async def test_a_full_origin_makes_a_request_wait_within_its_limit_then_go(serve: Any) -> None:
    finish = asyncio.Event()
    _, url = await serve(slow_first(finish))
    pool = lean(limit_per_host=1)
    try:
        held = await pool.request("POST", URL(url), {}, b"{}", connect_limit=5, read_timeout=5)
        with pytest.raises(TimeoutError):
            await call(pool, url, limit=0.2)  # a bounded wait, not a hang: 504 upstream
        waiting = asyncio.ensure_future(call(pool, url))
        await asyncio.sleep(0.05)
        finish.set()  # the held answer completes: its connection is free again
        assert await held.content.read() == b"{}"
        assert await asyncio.wait_for(waiting, 5) == b"{}"
    finally:
        await pool.close()


async def test_a_pool_that_does_not_queue_refuses_at_once(serve: Any) -> None:
    finish = asyncio.Event()
    _, url = await serve(slow_first(finish))
    pool = lean(limit=3, limit_per_host=1, queue=False)
    try:
        held = await pool.request("POST", URL(url), {}, b"{}", connect_limit=5, read_timeout=5)
        with pytest.raises(PoolFull) as refused:
            await call(pool, url)
        assert (refused.value.limit, refused.value.per_host) == (3, 1)
        held.close()
        assert await call(pool, url) == b"{}"
    finally:
        finish.set()
        await pool.close()


async def test_an_answer_read_to_its_end_frees_its_connection_unreleased(serve: Any) -> None:
    """As aiohttp: a reader that reads the whole body and never releases the response leaks no slot."""
    server, url = await serve(answering(OK, OK, OK))
    pool = lean(limit_per_host=1)
    try:
        kept = []
        for _ in range(3):
            resp = await pool.request("POST", URL(url), {}, b"{}", connect_limit=1, read_timeout=1)
            assert await resp.content.read() == b"{}"
            kept.append(resp)  # never released
        assert server.connections == 1
    finally:
        await pool.close()


async def test_an_idle_connection_is_closed_after_the_keepalive(serve: Any) -> None:
    closed = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await reader.read()  # until the client closes
        closed.set()

    server, url = await serve(script)
    pool = lean(keepalive=0.2)
    try:
        await call(pool, url)
        await asyncio.wait_for(closed.wait(), 5)  # closed by the client while the pool lives
    finally:
        await pool.close()


def closing_after_first() -> Any:
    """Answers the first request, then closes the connection at the next one's arrival without a word
    (a server's idle close racing the client's write); later connections answer."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await reader.readuntil(b"\r\n\r\n")
    return script


@pytest.mark.parametrize(("method", "resent"), [("DELETE", True), ("GET", True), ("POST", False)])
async def test_a_reused_connection_closed_before_any_answer_is_retried_only_if_idempotent(
        serve: Any, method: str, resent: bool) -> None:
    server, url = await serve(closing_after_first())
    pool = lean()
    try:
        await call(pool, url, method)
        if resent:
            assert await call(pool, url, method) == b"{}"
            assert server.connections == 2
        else:
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await call(pool, url, method)  # a tools/call may have run: never sent twice
            assert server.connections == 1
    finally:
        await pool.close()


def certificate(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA and a leaf for 127.0.0.1 it signed: (ca.pem, leaf.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backend")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    paths = tmp / "ca.pem", tmp / "leaf.pem", tmp / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture
async def tls_backend(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    ca, leaf, key = certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(leaf, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: every request on the connection answered
                await read_request(reader)
                writer.write(OK)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/mcp", ca
    server.close()


async def test_https_is_verified_an_unknown_issuer_refused_before_any_byte(tls_backend: tuple[str, Path]) -> None:
    url, _ = tls_backend
    pool = lean()
    try:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await call(pool, url)
    finally:
        await pool.close()


async def test_https_with_a_trusted_issuer_answers(tls_backend: tuple[str, Path]) -> None:
    url, ca = tls_backend
    pool = lean()
    try:
        trusted = ssl.create_default_context(cafile=str(ca))
        pool.origin(URL(url)).ssl = trusted  # the system store does not know the test CA
        assert await call(pool, url) == b"{}"
        assert await call(pool, url) == b"{}"  # on the same TLS connection
    finally:
        await pool.close()


async def test_a_name_resolving_only_to_blocked_addresses_is_never_connected(serve: Any) -> None:
    server, url = await serve(answering(OK))
    port = URL(url).port
    pool = lean(resolver=GuardedResolver([], blocked=[ipaddress.ip_network("127.0.0.0/8"),
                                                      ipaddress.ip_network("::1/128")]))
    try:
        with pytest.raises(aiohttp.ClientConnectorDNSError):
            await call(pool, f"http://localhost:{port}/mcp")
        assert server.connections == 0
    finally:
        await pool.close()


async def test_the_sender_sends_on_the_lean_client_with_its_credential_and_maps_failures(serve: Any) -> None:
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n")
        await read_request(reader)  # the second request: no answer, the connection closed

    _, url = await serve(script)
    parsed, errors = parse_servers({"servers": {"b": {"url": url, "timeout": 0.5}}})
    assert errors == []
    async with create_session() as session:
        sender = Sender(parsed["b"], session, None)
        async with await sender.send("POST", {"X-Key": "k"}, {"jsonrpc": "2.0", "id": 1, "method": "ping"}) as resp:
            assert isinstance(resp, LeanResponse)
            assert resp.status == 302  # never followed
        assert b"X-Key: k" in seen[0] and seen[0].endswith(b'"method":"ping"}')
        with pytest.raises(BackendDisconnected):  # closed before any answer: a POST is not resent here
            await sender.send("POST", {}, {"jsonrpc": "2.0", "id": 2, "method": "tools/call"})


async def test_the_sender_maps_a_silent_backend_to_504_and_a_refused_port_to_502(serve: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()

    _, url = await serve(script)
    parsed, _ = parse_servers({"servers": {"b": {"url": url, "timeout": 0.3},
                                           "gone": {"url": "http://127.0.0.1:1/mcp", "timeout": 0.3}}})
    async with create_session() as session:
        with pytest.raises(UpstreamTimeout):
            await Sender(parsed["b"], session, None).send("POST", {}, {"jsonrpc": "2.0", "id": 1, "method": "ping"})
        with pytest.raises(UpstreamError) as refused:
            await Sender(parsed["gone"], session, None).send("POST", {}, {"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert refused.value.http_status == 502
