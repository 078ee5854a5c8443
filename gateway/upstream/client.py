"""One backend's MCP client over Streamable HTTP, for both protocol eras.

The era is detected once per backend and remembered: a `server/discover` probe in 2026-07-28
style; positive modern evidence (a discover result, or a -32022/-32020 error) means stateless
requests carrying `_meta` and routing headers; anything else falls back to the 2025-11-25
handshake (`initialize`, `Mcp-Session-Id`, `notifications/initialized`), redone once when the
backend refuses the session (404, or 400 as after a TypeScript SDK server's restart:
`codec.session_refused`); the refused request is then sent again in the new session — whatever
its method, since a refused message was never run. Only headers built here are sent: nothing from the agent's
request reaches the backend except through `open_stream`'s explicit allowlist.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from gateway.backend_auth import inject
from gateway.credentials import CredentialError, CredentialStore
from gateway.settings import MAX_CALL_BYTES, MAX_RESPONSE_BYTES
from gateway.upstream import codec
from gateway.upstream.errors import (
    CallBudgetExceeded,
    ResponseTooLarge,
    UpstreamError,
    UpstreamRpcError,
    UpstreamTimeout,
    status_error,
)
from shared import tracing

if TYPE_CHECKING:
    from gateway.registry import ServerConfig

log = logging.getLogger(__name__)

MODERN, LEGACY = "2026-07-28", "legacy"
CLIENT_INFO = {"name": "mcpgw", "version": "0.1.0"}
ACCEPT = "application/json, text/event-stream"
# Agent headers a passthrough stream may carry; everything else (Authorization, Cookie, Host…) stays behind.
PASSTHROUGH_HEADERS = frozenset({"last-event-id", "mcp-param"})
# Requests that change nothing on a backend: sent again once when the connection closes before any answer
# (a keep-alive connection to a backend that just restarted). Others, tools/call first, may have run.
IDEMPOTENT = frozenset({"ping", "tools/list", "prompts/list", "resources/list", "resources/templates/list",
                        "resources/read", "prompts/get"})
# Notifications kept on a Reply (the rest are counted against the call's budget, then dropped).
MAX_NOTES = 100


@dataclass
class Reply:
    """A backend's answer: the JSON-RPC response plus notifications that came before it."""

    response: dict[str, Any]
    status: int
    notifications: list[dict[str, Any]] = field(default_factory=list)


class _SessionGone(Exception):
    """The backend refused our session id (404, or 400 as TypeScript SDK servers do): initialize again."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Disconnected(UpstreamError):
    """The connection closed (or was reset) before the backend's answer began."""


class _Unauthorized(Exception):
    """The backend answered 401: a cached oauth2 token may have been revoked."""


class BackendClient:
    """MCP client state for one backend: era, session id, negotiated version."""

    def __init__(
        self,
        server: ServerConfig,
        session: aiohttp.ClientSession,
        credentials: CredentialStore,
        *,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_call_bytes: int = MAX_CALL_BYTES,
        capabilities: dict[str, Any] | None = None,
        era_hint: str | None = None,
        on_era: Callable[[BackendClient], None] | None = None,
    ) -> None:
        self.server = server
        # Declared at initialize: a per-caller client declares its agent's (sessions.py), the shared one none.
        self.capabilities = capabilities or {}
        self.era_hint = era_hint  # the era another client of this backend already detected
        self._on_era = on_era  # told the era this client detected (so its siblings skip the probe)
        self.max_response_bytes = max_response_bytes
        self.max_call_bytes = max_call_bytes
        self.session = session
        self.credentials = credentials
        self.era: str | None = None
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.server_info: dict[str, Any] = {}
        self.initialize_count = 0
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        # Built once: parsing the URL and building the timeout on every call showed in profiles.
        self._url = URL(server.url)
        self._http_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=server.timeout, sock_read=server.timeout
        )

    async def request(self, method: str, params: dict[str, Any] | None = None) -> Reply:
        """Send one request and return the backend's reply (JSON-RPC errors included).

        The server's `timeout` is an idle limit, as on every path (docs/mcp.md): the session's
        `sock_read` ends an exchange the backend leaves silent that long, however long it runs
        while it keeps sending (progress, logs, keep-alives).
        """
        try:
            return await self._request(method, params)
        except TimeoutError:
            raise UpstreamTimeout(self.server.name, self.server.timeout) from None

    async def _request(self, method: str, params: dict[str, Any] | None) -> Reply:
        await self._ensure_era()
        renewed = refreshed = resent = False  # each remedy at most once
        while True:
            message, headers = self._frame(method, params)
            stale = self.session_id
            try:
                reply = await self._exchange(message, headers)
            except _SessionGone as gone:
                if renewed:
                    raise UpstreamError(self.server.name, "backend keeps refusing its own new session "
                                        f"(HTTP {gone.status})", gone.status) from None
                renewed = True
                await self._handshake(stale)
                continue
            except _Unauthorized:
                if refreshed or self.server.auth.method != "oauth2":
                    raise UpstreamError(
                        self.server.name, "backend rejected our credential", 401
                    ) from None
                refreshed = True
                self.credentials.invalidate_token(self.server.name)
                continue
            except _Disconnected:
                if resent or method not in IDEMPOTENT:
                    raise
                resent = True
                continue
            assert reply is not None
            return reply

    async def open_stream(
        self, message: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        """POST `message` and return the unread response (caller must release it)."""
        await self._ensure_era()
        extra = {k: v for k, v in (headers or {}).items() if k.lower() in PASSTHROUGH_HEADERS}
        for attempt in range(2):
            framed, own = self._frame(message["method"], message.get("params"), message.get("id"))
            stale = self.session_id
            resp = await self._post(framed, {**extra, **own})
            if resp.status in (400, 404) and stale and self.era == LEGACY and attempt == 0:
                async with resp:
                    answer = await self._refusal(resp)
                if not codec.session_refused(resp.status, answer):
                    raise _refusal_error(self.server.name, answer, framed.get("id"), resp.status)
                await self._handshake(stale)
                continue
            return resp
        raise AssertionError("unreachable")

    async def ensure_era(self) -> None:
        """Detect the backend's era (and initialize a 2025-era session) if not done yet."""
        await self._ensure_era()

    async def renew_session(self, stale: str | None) -> None:
        """Initialize again unless another request already replaced the `stale` session."""
        await self._handshake(stale)

    async def open_get(self) -> aiohttp.ClientResponse:
        """Open this session's 2025-era GET stream (caller must release it)."""
        try:
            injection = await self.credentials.injection(self.server)
        except CredentialError as exc:
            raise UpstreamError(self.server.name, f"credential unavailable: {exc}") from None
        headers = {"Accept": "text/event-stream", **self._session_headers()}
        query: dict[str, str] = {}
        inject(injection, headers, query, {})
        url = self._url.update_query(query) if query else self._url
        try:
            return await self.session.get(url, headers=headers, allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.server.timeout))
        except aiohttp.ClientError as exc:
            raise UpstreamError(self.server.name, f"cannot reach backend: {type(exc).__name__}") from None

    def adopt_era(self, other: BackendClient) -> None:
        """Learn the era a sibling client of this backend detected: 2026-07-28 is stateless, so it is
        taken as is; for 2025 only the hint (this client's own session starts without a probe)."""
        if self.era is None and other.era == MODERN:
            self.era, self.protocol_version, self.server_info = MODERN, MODERN, dict(other.server_info)
        elif other.era == LEGACY:
            self.era_hint = LEGACY

    def end_soon(self) -> None:
        """End this client's 2025-era backend session with a DELETE (best effort, in the background)."""
        if self.era != LEGACY or not self.session_id:
            return
        task = asyncio.get_running_loop().create_task(self._delete(self._session_headers()))
        _background.add(task)
        task.add_done_callback(_background.discard)
        self.session_id, self.era = None, None  # a later request starts a new session

    async def _delete(self, headers: dict[str, str]) -> None:
        try:
            injection = await self.credentials.injection(self.server)
            query: dict[str, str] = {}
            inject(injection, headers, query, {})
            url = self._url.update_query(query) if query else self._url
            async with asyncio.timeout(self.server.timeout):
                resp = await self.session.delete(url, headers=headers, allow_redirects=False)
                resp.release()
        except (CredentialError, aiohttp.ClientError, TimeoutError) as exc:
            log.debug("ending a backend session failed", extra={"server": self.server.name, "error": str(exc)})

    def cancel_soon(self, request_id: Any, reason: str) -> None:
        """Tell a 2025-era backend to stop working on `request_id` (best effort, in the background).

        A 2026-07-28 backend needs nothing more: closing the request's stream is its cancel.
        """
        if self.era != LEGACY or request_id is None:
            return
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": request_id, "reason": reason}}
        task = asyncio.get_running_loop().create_task(self._cancel(note))
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _cancel(self, note: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(self.server.timeout):
                await self._exchange(note, self._session_headers())
        except (UpstreamError, TimeoutError, aiohttp.ClientError) as exc:
            log.debug("cancel notification failed", extra={"server": self.server.name, "error": str(exc)})

    async def send_response(self, answer: dict[str, Any]) -> int:
        """POST a JSON-RPC response to a backend's request (2025 era) in our session; the HTTP status."""
        async with await self._post(answer, self._session_headers()) as resp:
            return resp.status

    def _frame(
        self, method: str, params: dict[str, Any] | None, request_id: Any = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        request_id = next(self._ids) if request_id is None else request_id
        if self.era == MODERN:
            params = codec.with_modern_meta(params, {})
            return codec.request_message(request_id, method, params), codec.routing_headers(
                method, params
            )
        return codec.request_message(request_id, method, params), self._session_headers()

    def _session_headers(self) -> dict[str, str]:
        """A 2025-era request's headers: the negotiated version and, once there is one, the session id."""
        headers = {"MCP-Protocol-Version": self.protocol_version or codec.HANDSHAKE_VERSION}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        return headers

    async def _ensure_era(self) -> None:
        if self.era is not None:
            return
        async with self._lock:
            if self.era is not None:
                return
            if self.era_hint == LEGACY:
                await self._initialize()
                return
            probe = codec.request_message(0, "server/discover", codec.with_modern_meta(None, {}))
            reply = await self._exchange(
                probe, codec.routing_headers("server/discover", None), probing=True
            )
            versions = codec.modern_evidence(reply.response if reply else None) or []
            if MODERN in versions:
                self.era, self.protocol_version = MODERN, MODERN
                self.server_info = dict((reply.response.get("result") or {}) if reply else {})
                log.info("backend speaks 2026-07-28", extra={"server": self.server.name})
                if self._on_era is not None:
                    self._on_era(self)
                return
            await self._initialize()
            if self._on_era is not None:
                self._on_era(self)

    async def _handshake(self, stale: str | None) -> None:
        async with self._lock:
            if self.session_id == stale:  # another request may already have re-initialized
                await self._initialize()

    async def _initialize(self) -> None:
        self.session_id = None
        self.initialize_count += 1
        params = {
            "protocolVersion": codec.HANDSHAKE_VERSION,
            "capabilities": self.capabilities,
            "clientInfo": CLIENT_INFO,
        }
        message = codec.request_message(next(self._ids), "initialize", params)
        reply = await self._exchange(message, {}, capture_session=True)
        assert reply is not None
        result = reply.response.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("protocolVersion"), str):
            raise UpstreamError(self.server.name, "initialize failed", reply.status)
        self.protocol_version = result["protocolVersion"]
        self.server_info = result
        self.era = LEGACY
        await self._exchange({"jsonrpc": "2.0", "method": "notifications/initialized"}, self._session_headers())
        log.info(
            "backend initialized",
            extra={"server": self.server.name, "version": self.protocol_version},
        )

    async def _post(
        self, message: dict[str, Any], headers: dict[str, str]
    ) -> aiohttp.ClientResponse:
        try:
            injection = await self.credentials.injection(self.server)
        except CredentialError as exc:
            raise UpstreamError(self.server.name, f"credential unavailable: {exc}") from None
        headers = {"Accept": ACCEPT, "Content-Type": "application/json", **headers}
        query: dict[str, str] = {}
        message = inject(injection, headers, query, message)
        url = self._url.update_query(query) if query else self._url
        try:
            # One span per backend request, to the response head; `traceparent` goes with it.
            traced = tracing.current_span.get() is not None  # off: no names or attributes built
            with tracing.span(f"backend {self.server.name}", True, {
                "mcp.server": self.server.name, "mcp.method": str(message.get("method", ""))}) if traced else tracing.OFF:
                tracing.inject(headers)
                # Never follow a redirect: it would resend the credential to a host the registry
                # (and its allowlist) never approved.
                return await self.session.post(
                    url, data=codec.encode(message), headers=headers, timeout=self._http_timeout,
                    allow_redirects=False,
                )
        except TimeoutError:  # silent for `timeout` (sock_read) before the response headers
            raise UpstreamTimeout(self.server.name, self.server.timeout) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise _Disconnected(self.server.name, f"cannot reach backend: {type(exc).__name__}") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                self.server.name, f"cannot reach backend: {type(exc).__name__}"
            ) from None

    async def _exchange(
        self,
        message: dict[str, Any],
        headers: dict[str, str],
        *,
        probing: bool = False,
        capture_session: bool = False,
    ) -> Reply | None:
        request_id = message.get("id")
        async with await self._post(message, headers) as resp:
            if capture_session and resp.headers.get("Mcp-Session-Id"):
                self.session_id = resp.headers["Mcp-Session-Id"]
            if request_id is None:  # a notification: 202, nothing to read
                if resp.status >= 400:
                    raise UpstreamError(
                        self.server.name,
                        f"notification refused with HTTP {resp.status}",
                        resp.status,
                    )
                return None
            if resp.status == 401:
                raise _Unauthorized
            if resp.status in (400, 404) and "Mcp-Session-Id" in headers:
                answer = await self._refusal(resp)
                if codec.session_refused(resp.status, answer):
                    raise _SessionGone(resp.status)
                if codec.is_response_to(answer, request_id):
                    return Reply(answer, resp.status)
                raise _refusal_error(self.server.name, answer, request_id, resp.status)
            if resp.status >= 500:
                raise await status_error(self.server.name, resp)
            try:
                reply = await self._read(resp, request_id)
            except aiohttp.ClientPayloadError:
                raise UpstreamError(
                    self.server.name, "response stream broke off", resp.status
                ) from None
            except CallBudgetExceeded:
                resp.close()  # drop the stream at once: a modern backend reads that as the cancel
                self.cancel_soon(request_id, "call exceeded the gateway's byte budget")
                raise
            if reply is not None:
                return reply
            if probing and 400 <= resp.status < 500:
                return None  # no modern evidence: the caller falls back to the handshake
            raise UpstreamError(
                self.server.name, f"HTTP {resp.status} without a JSON-RPC response", resp.status
            )

    async def _refusal(self, resp: aiohttp.ClientResponse) -> Any:
        """The decoded body of a 4xx answer (None when it is not JSON)."""
        try:
            return codec.decode(await read_capped(resp, self.server.name, self.max_response_bytes))
        except ValueError:
            return None

    async def _read(self, resp: aiohttp.ClientResponse, request_id: Any) -> Reply | None:
        ctype = resp.content_type
        if ctype == "text/event-stream":
            parser, notes = codec.SSEParser(), list[dict[str, Any]]()
            relayed = 0
            async for chunk in resp.content.iter_any():
                relayed += len(chunk)
                if relayed > self.max_call_bytes:
                    raise CallBudgetExceeded(self.server.name, self.max_call_bytes, resp.status)
                for event in parser.feed(chunk):
                    found = self._event(event, request_id, notes, resp.status)
                    if found is not None:
                        await _drain(resp)
                        return Reply(found, resp.status, notes)
                # An event still being assembled past the cap: stop before it grows further.
                if parser.pending > self.max_response_bytes:
                    raise ResponseTooLarge(self.server.name, self.max_response_bytes, resp.status)
            for event in parser.close():
                found = self._event(event, request_id, notes, resp.status)
                if found is not None:
                    return Reply(found, resp.status, notes)
            raise UpstreamError(
                self.server.name, "event stream ended without a response", resp.status
            )
        if ctype != "application/json":
            return None
        try:
            body = codec.decode(await read_capped(resp, self.server.name, self.max_response_bytes))
        except ValueError:
            raise UpstreamError(
                self.server.name, "backend sent malformed JSON", resp.status
            ) from None
        return Reply(body, resp.status) if codec.is_response_to(body, request_id) else None

    def _event(
        self, event: codec.SSEEvent, request_id: Any, notes: list[dict[str, Any]], status: int
    ) -> dict[str, Any] | None:
        if len(event.data) > self.max_response_bytes:  # completed within one chunk: `pending` never saw it
            raise ResponseTooLarge(self.server.name, self.max_response_bytes, status)
        if event.event != "message" or not event.data:
            return None
        try:
            message = codec.decode(event.data)
        except ValueError:
            raise UpstreamError(self.server.name, "backend sent a malformed event") from None
        if codec.is_response_to(message, request_id):
            return message
        if isinstance(message, dict) and "method" in message and len(notes) < MAX_NOTES:
            notes.append(message)
        return None


def _refusal_error(server: str, answer: Any, request_id: Any, status: int) -> UpstreamError:
    """A 4xx that is not about the session: the backend's JSON-RPC error to our request, else the status."""
    if codec.is_response_to(answer, request_id) and isinstance(answer.get("error"), dict):
        return UpstreamRpcError(server, answer["error"], status)
    return UpstreamError(server, f"HTTP {status} without a JSON-RPC response", status)


_background: set[asyncio.Task[None]] = set()  # cancels and session ends in flight (kept from the GC)


async def drain_background(limit: float = 2.0) -> None:
    """Wait (up to `limit` seconds) for background cancels and session ends to finish."""
    loop = asyncio.get_running_loop()
    mine = {task for task in _background if task.get_loop() is loop}
    if mine:
        await asyncio.wait(mine, timeout=limit)


async def read_capped(resp: aiohttp.ClientResponse, server: str, limit: int) -> bytes:
    """A whole (non-SSE) body, refused past `limit` bytes: a declared length before reading, else
    at the first chunk that crosses it, so a huge or endless body never sits in memory."""
    if resp.content_length is not None and resp.content_length > limit:
        raise ResponseTooLarge(server, limit, resp.status)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(server, limit, resp.status)
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read the end of an SSE stream the server closes right after the response (the usual case),
    so the keep-alive connection can be reused; a stream still open after 20 ms is just closed."""
    if resp.content.at_eof():
        return
    try:
        async with asyncio.timeout(0.02):
            await resp.content.read()
    except (TimeoutError, aiohttp.ClientError):
        pass
