"""`LeanPool`: the backend request session's keep-alive HTTP/1.1 client (connections on http1.py).

Why: aiohttp's client side (request and response objects, connector, writer, payloads) cost about
150 Python calls per request; a request here is one write of prepared bytes and an answer parsed
by the same C parser, in ~25 (docs/benchmarks.md, "The lean upstream client").

It keeps the behaviour of the aiohttp path it replaces for the request session (sender.py):
- limits: `limit` connections held in all, `limit_per_host` to one origin; a request finding them
  all held waits for one, bounded by its connect timeout (TimeoutError: 504, never a hang);
- keep-alive: a connection whose answer was read to its end goes back to its origin's idle list
  (newest first), and is closed once idle `keepalive` seconds (before the usual servers' 5 s);
  a server's `Connection: close`, an unread body or a broken one closes it instead;
- a disconnect before any answer on a *reused* connection (the server's own idle close racing our
  write) is sent again once on a new connection for HTTP-idempotent methods (GET, DELETE…), as
  aiohttp does; a POST never is (client.py decides by JSON-RPC method, as before);
- names resolve through the session's resolver (the SSRF guard when an allowlist is set), IP
  literals are used as written (as aiohttp does), sockets get TCP keepalive (connections.py),
  https uses the context aiohttp's default `ssl=True` uses (certificate and host name verified);
- connect failures are aiohttp's ClientConnector*Error types, so sender.py maps every failure as before.
Redirects are never followed (a 3xx is the answer); no cookie jar; no proxy environment.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import AddrInfoType
from aiohttp.abc import AbstractResolver
from aiohttp.client_reqrep import ConnectionKey
from yarl import URL

from gateway.upstream.http1 import Connection, LeanResponse, head

# Sent again once after a reused connection closed before any answer (RFC 9110 idempotent methods).
RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_ssl_context: ssl.SSLContext | None = None


class PoolFull(Exception):
    """Every connection of a session that does not queue is held (`limit` in all, `per_host` per host)."""

    def __init__(self, limit: int, per_host: int) -> None:
        super().__init__(f"connection pool full ({limit} in all, {per_host} per host)")
        self.limit, self.per_host = limit, per_host


def verified_context() -> ssl.SSLContext:
    """The TLS context aiohttp's default `ssl=True` uses: system CAs, host names checked, http/1.1 ALPN."""
    global _ssl_context
    if _ssl_context is None:
        context = ssl.create_default_context()
        context.set_alpn_protocols(("http/1.1",))
        _ssl_context = context
    return _ssl_context


# TCP keepalive: first probe after 60 s of silence, then every 15 s; 4 unanswered: the connection
# fails (a dead backend host noticed within 2 minutes; an idle live one costs a packet a minute).
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES = 60, 15, 4

def keepalive_socket(addr_info: AddrInfoType) -> socket.socket:
    """A connection's socket with TCP keepalive on (TCPConnector's `socket_factory`)."""
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                        ("TCP_KEEPCNT", KEEPALIVE_PROBES)):
        option = getattr(socket, name, None)  # Linux; elsewhere the system's keepalive defaults apply
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
    return sock


class Origin:
    """One scheme://host:port: its idle connections and how many of its connections are held."""

    __slots__ = ("pool", "host", "port", "ssl", "host_header", "idle", "held", "key")

    def __init__(self, pool: LeanPool, url: URL) -> None:
        self.pool = pool
        self.host = url.raw_host or ""
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl = verified_context() if url.scheme == "https" else None
        # aiohttp's Host: the port only when it is not the scheme's default
        self.host_header = url.raw_authority.rpartition("@")[2]
        self.idle: list[Connection] = []
        self.held = 0
        self.key = ConnectionKey(self.host, self.port, self.ssl is not None, True, None, None, None)


class LeanPool:
    """Keep-alive connections per origin under one session's limits (see the module docstring)."""

    def __init__(self, *, limit: int, limit_per_host: int, resolver: AbstractResolver,
                 keepalive: float, queue: bool = True) -> None:
        self.limit, self.limit_per_host, self.keepalive = limit, limit_per_host, keepalive
        self.queue = queue  # False: PoolFull at once instead of waiting for a connection
        self.resolver = resolver
        self._origins: dict[tuple[str, str, int | None], Origin] = {}
        self._open: set[Connection] = set()
        self._held = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._sweep: asyncio.TimerHandle | None = None
        self._clock: Callable[[], float] | None = None  # the running loop's (uvloop has its own)
        self.closed = False

    def _time(self) -> float:
        clock = self._clock
        if clock is None:
            clock = self._clock = asyncio.get_running_loop().time
        return clock()

    def origin(self, url: URL) -> Origin:
        """The origin of `url` (made once per scheme, host and port)."""
        key = (url.scheme, url.raw_host or "", url.port)
        found = self._origins.get(key)
        if found is None:
            found = self._origins[key] = Origin(self, url)
        return found

    async def request(self, method: str, url: URL, headers: dict[str, str], body: bytes | None, *,
                      connect_limit: float | None, read_timeout: float | None = None,
                      origin: Origin | None = None) -> LeanResponse:
        """Send one request; the response once its head arrived (the body is read from `content`).
        `connect_limit` bounds the wait for a connection and the connect; `read_timeout` is the read's idle
        limit (None: none, for a stream left open on purpose)."""
        if origin is None:
            origin = self.origin(url)
        data = head(method, url.raw_path_qs, origin.host_header, headers, body)
        for attempt in (1, 2):
            conn = await self._acquire(origin, connect_limit)
            try:
                message, payload = await conn.send(data, read_timeout, method == "HEAD")
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                conn.finish(False)
                if attempt == 1 and conn.reused and method in RETRY_METHODS:
                    continue
                raise
            except BaseException:
                conn.finish(False)
                raise
            return LeanResponse(conn, message, payload, method, url, headers)
        raise AssertionError("unreachable")

    async def _acquire(self, origin: Origin, limit: float | None) -> Connection:
        """An idle connection of `origin`, else a new one within the limits, else wait for one
        (within `limit` seconds, with the connect: TimeoutError) — or PoolFull at once if this pool
        does not queue."""
        conn = self._idle(origin)
        if conn is not None:
            return conn
        async with asyncio.timeout(limit):
            while origin.held >= self.limit_per_host or self._held >= self.limit:
                if not self.queue:
                    raise PoolFull(self.limit, self.limit_per_host)
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                conn = self._idle(origin)  # one came back meanwhile
                if conn is not None:
                    return conn
            if self.closed:
                raise aiohttp.ClientConnectionError("the upstream session is closed")
            origin.held += 1
            self._held += 1
            try:
                return await self._connect(origin)
            except BaseException:
                origin.held -= 1
                self._held -= 1
                self._wake()
                raise

    def _idle(self, origin: Origin) -> Connection | None:
        """The newest live idle connection of `origin`, held now; older ones past `keepalive` are closed."""
        idle = origin.idle
        if not idle:
            return None
        now = self._time()
        while idle:
            conn = idle.pop()
            if conn.transport is not None and not conn.transport.is_closing() and now - conn.idle_since < self.keepalive:
                origin.held += 1
                self._held += 1
                return conn
            if conn.transport is not None:
                conn.transport.close()
        return None

    async def _connect(self, origin: Origin) -> Connection:
        """A new connection: resolve (the guard decides), connect with TCP keepalive, TLS for https."""
        loop = asyncio.get_running_loop()
        try:
            ipaddress.ip_address(origin.host.strip("[]"))
            family: int = socket.AF_INET6 if ":" in origin.host else socket.AF_INET
            addresses: list[tuple[int, str, int]] = [(family, origin.host.strip("[]"), origin.port)]
        except ValueError:
            try:
                addresses = [(a["family"], a["host"], a["port"])
                             for a in await self.resolver.resolve(origin.host, origin.port, socket.AF_UNSPEC)]
            except OSError as exc:
                raise aiohttp.ClientConnectorDNSError(origin.key, exc) from None
        failure: OSError | None = None
        for family, host, port in addresses:
            sock = keepalive_socket((family, socket.SOCK_STREAM, 0, "", ()))
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (host, port))
                _, conn = await loop.create_connection(
                    lambda: Connection(loop, origin), sock=sock, ssl=origin.ssl,
                    server_hostname=origin.host.strip("[]") if origin.ssl is not None else None)
            except ssl.CertificateError as exc:
                sock.close()
                raise aiohttp.ClientConnectorCertificateError(origin.key, exc) from None
            except ssl.SSLError as exc:
                sock.close()
                raise aiohttp.ClientConnectorSSLError(origin.key, exc) from None
            except OSError as exc:
                sock.close()
                failure = exc
                continue
            except BaseException:
                sock.close()
                raise
            self._open.add(conn)
            if self.closed:  # closed while connecting
                conn.transport.close() if conn.transport is not None else None
                raise aiohttp.ClientConnectionError("the upstream session is closed")
            return conn
        raise aiohttp.ClientConnectorError(origin.key, failure or OSError(f"no address for {origin.host}"))

    def put_back(self, conn: Connection, keep: bool) -> None:
        """A response is done with its connection: idle again when `keep`, else closing."""
        origin = conn.origin
        origin.held -= 1
        self._held -= 1
        if keep and not self.closed:
            conn.reused = True
            conn.idle_since = self._time()
            origin.idle.append(conn)
            if self._sweep is None:
                self._sweep = asyncio.get_running_loop().call_at(conn.idle_since + self.keepalive, self._expire)
        if self._waiters:
            self._wake()

    def gone(self, conn: Connection) -> None:
        """A connection closed (either side): forget it."""
        self._open.discard(conn)
        if conn in conn.origin.idle:
            conn.origin.idle.remove(conn)

    def _wake(self) -> None:
        # Every waiter checks again (a slot freed at one origin may not serve another's waiter).
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _expire(self) -> None:
        """Close connections idle `keepalive` seconds; come back while any stay idle."""
        self._sweep = None
        now = self._time()
        soonest = None
        for origin in self._origins.values():
            for conn in list(origin.idle):
                if now - conn.idle_since >= self.keepalive:
                    origin.idle.remove(conn)
                    if conn.transport is not None:
                        conn.transport.close()
                else:
                    soonest = min(soonest or conn.idle_since, conn.idle_since)
        if soonest is not None:
            self._sweep = asyncio.get_running_loop().call_at(soonest + self.keepalive, self._expire)

    def close(self) -> Awaitable[Any]:
        """Close every connection (idle or held) and fail waiters; awaitable until they are closed."""
        self.closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        loop = asyncio.get_running_loop()
        lost = []
        for conn in list(self._open):
            if conn.transport is not None:
                conn.lost = loop.create_future()
                lost.append(conn.lost)
                conn.transport.close()
        for origin in self._origins.values():
            origin.idle.clear()
        self._wake()
        return asyncio.wait(lost, timeout=2.0) if lost else asyncio.sleep(0)
