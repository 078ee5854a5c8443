"""One backend MCP session's state and lifecycle, for both protocol eras (client.py sends in it).

The era is detected once per backend and remembered: a `server/discover` probe in 2026-07-28
style; positive modern evidence (a discover result, or a -32022/-32020 error) means stateless
requests carrying `_meta` and routing headers; anything else falls back to the 2025-11-25
handshake (`initialize`, `Mcp-Session-Id`, `notifications/initialized`). A renewal keeps the old
session id until the new session is ready, so a request sent meanwhile is refused as stale and
resent (client.py). Every message goes out on the one request path (sender.py); answers are read
by its `read_reply`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from gateway.credentials import CredentialStore
from gateway.settings import MAX_CALL_BYTES, MAX_RESPONSE_BYTES
from gateway.upstream import codec, sse
from gateway.upstream.errors import CallBudgetExceeded, UpstreamError, status_error
from gateway.upstream.sender import Reply, Sender, in_background, read_reply

if TYPE_CHECKING:
    from gateway.registry import ServerConfig

log = logging.getLogger(__name__)

MODERN, LEGACY = "2026-07-28", "legacy"
ACCEPT = "application/json, text/event-stream"


class BackendSession:
    """One backend's era, session id and negotiated version, and the messages that manage them."""

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
        on_era: Callable[[BackendSession], None] | None = None,
        handshake: bool = False,
        streams: aiohttp.ClientSession | None = None,
        ear: Callable[[], None] | None = None,
    ) -> None:
        self.server = server
        # Declared at initialize: a per-caller client declares its agent's (sessions.py), the shared one none.
        self.capabilities = capabilities or {}
        self.era_hint = era_hint  # the era another client of this backend already detected
        self._on_era = on_era  # told the era this client detected (so its siblings skip the probe)
        # A 2025-era session even on a backend offering 2026-07-28 (for an agent it may ask mid-call);
        # a backend refusing the handshake is spoken to in 2026-07-28 after all.
        self.handshake = handshake
        self.max_response_bytes = max_response_bytes
        self.max_call_bytes = max_call_bytes
        self.session = session
        self.credentials = credentials
        # The one request path (sender.py); long-lived streams go out on `streams`' pool (connections.py);
        # `ear` hears the backend's list changes in any answer.
        self.http = Sender(server, session, credentials, streams=streams, ear=ear)
        self.era: str | None = None
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.server_info: dict[str, Any] = {}
        self.initialize_count = 0
        self.closed = False  # ended (end_soon): a session a renewal still opens is ended at once
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    async def ensure_era(self) -> None:
        """Detect the backend's era (and initialize a 2025-era session) if not done yet."""
        if self.era is not None:
            return
        async with self._lock:
            if self.era is not None:
                return
            if self.era_hint == LEGACY:
                await self._initialize()
                return
            if self.handshake and await self._handshake_accepted():
                return
            probe = codec.request_message(0, "server/discover", codec.with_modern_meta(None, {}))
            reply = await self._exchange(probe, codec.routing_headers("server/discover", None), probing=True)
            versions = codec.modern_evidence(reply.response if reply else None) or []
            if MODERN in versions:
                self.era, self.protocol_version = MODERN, MODERN
                self.server_info = dict((reply.response.get("result") or {}) if reply else {})
                log.info("backend speaks 2026-07-28", extra={"server": self.server.name})
            else:
                await self._initialize()
            if self._on_era is not None:
                self._on_era(self)

    async def _handshake_accepted(self) -> bool:
        """Initialize a 2025-era session; False when the backend refuses the handshake (4xx)."""
        try:
            await self._initialize()
        except UpstreamError as exc:
            if exc.status is None or exc.status >= 500:
                raise
            log.info("backend refused the handshake; 2026-07-28", extra={"server": self.server.name})
            return False
        return True

    async def renew_session(self, stale: str | None) -> None:
        """Initialize again unless another request already replaced the `stale` session."""
        async with self._lock:
            if self.session_id == stale:  # another request may already have re-initialized
                await self._initialize()

    async def _initialize(self) -> None:
        """A new 2025-era session. The old `session_id` stays until the new one is ready (initialized
        notified): requests sent meanwhile carry the old one, are refused as stale and resent."""
        self.initialize_count += 1
        message = codec.request_message(next(self._ids), "initialize", codec.initialize_params(self.capabilities))
        async with await self._post(message, {}) as resp:
            new_id = resp.headers.get("Mcp-Session-Id")
            reply = await self._read(message["id"], resp)
        assert reply is not None
        result = reply.response.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("protocolVersion"), str):
            raise UpstreamError(self.server.name, "initialize failed", reply.status)
        headers = {"MCP-Protocol-Version": result["protocolVersion"], **({"Mcp-Session-Id": new_id} if new_id else {})}
        if not self.closed:
            await self._exchange({"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)
        if self.closed:  # ended (evicted) while this renewal ran: the new session would be nobody's
            if new_id:
                in_background(self._quietly("ending a backend session", self.http.send("DELETE", headers)))
            raise UpstreamError(self.server.name, "the backend session was ended")
        self.protocol_version, self.server_info, self.session_id = result["protocolVersion"], result, new_id
        self.era = LEGACY
        log.info("backend initialized", extra={"server": self.server.name, "version": self.protocol_version})

    def adopt_era(self, other: BackendSession) -> None:
        """Learn the era a sibling client of this backend detected: 2026-07-28 is stateless, so it is
        taken as is; for 2025 only the hint (this client's own session starts without a probe)."""
        if self.era is None and other.era == MODERN:
            self.era, self.protocol_version, self.server_info = MODERN, MODERN, dict(other.server_info)
        elif other.era == LEGACY:
            self.era_hint = LEGACY

    def end_soon(self) -> None:
        """End this client's 2025-era backend session with a DELETE (best effort, in the background);
        a session a renewal in progress opens is ended too (`closed`)."""
        self.closed = True
        if self.era != LEGACY or not self.session_id:
            return
        in_background(self._quietly("ending a backend session", self.http.send("DELETE", self._session_headers())))
        self.session_id, self.era = None, None  # a later request starts a new session

    def _session_headers(self) -> dict[str, str]:
        """A 2025-era request's headers: the negotiated version and, once there is one, the session id."""
        headers = {"MCP-Protocol-Version": self.protocol_version or codec.HANDSHAKE_VERSION}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        return headers

    async def _post(self, message: dict[str, Any], headers: dict[str, str]) -> aiohttp.ClientResponse:
        return await self.http.send("POST", {"Accept": ACCEPT, "Content-Type": "application/json", **headers},
                                    message)

    async def _exchange(self, message: dict[str, Any], headers: dict[str, str], *, probing: bool = False) -> Reply | None:
        """POST a message outside the session-refusal remedy (the handshake, its probe, a cancel)."""
        async with await self._post(message, headers) as resp:
            return await self._read(message.get("id"), resp, probing)

    async def _read(self, request_id: codec.RequestId | None, resp: aiohttp.ClientResponse, probing: bool = False) -> Reply | None:
        name = self.server.name
        if request_id is None:  # a notification: 202, nothing to read
            if resp.status >= 400:
                raise UpstreamError(name, f"notification refused with HTTP {resp.status}", resp.status)
            return None
        if resp.status == 401:  # still, after sender.py refreshed an oauth2 token
            raise UpstreamError(name, "backend rejected our credential", 401)
        if resp.status >= 500:
            raise await status_error(name, resp, self.credentials.forms(self.server))
        try:
            reply = await read_reply(resp, name, request_id, limit=self.max_response_bytes,
                                     budget=sse.Budget(self.max_call_bytes), idle_limit=self.server.timeout,
                                     on_request=self._refuse_soon)
        except CallBudgetExceeded:
            resp.close()  # drop the stream at once: a modern backend reads that as the cancel
            self.cancel_soon(request_id, "call exceeded the gateway's byte budget")
            raise
        if reply is not None:
            return reply
        if probing and 400 <= resp.status < 500:
            return None  # no modern evidence: the caller falls back to the handshake
        raise UpstreamError(name, f"HTTP {resp.status} without a JSON-RPC response", resp.status)


    def _refuse_soon(self, request: dict[str, Any]) -> None:
        """Refuse a backend's request on a plain request's stream (REST, a bridged passthrough call):
        nobody here can answer it, and the backend must not wait for its timeout."""
        error = {"code": -32601, "message": f"{request['method']} cannot be relayed on this path"}
        in_background(self._quietly("refusing a backend request",
                                    self.send_response({"jsonrpc": "2.0", "id": request["id"], "error": error})))

    async def _quietly(self, what: str, work: Awaitable[Any]) -> None:
        """Await `work` within the backend's timeout; a failure is only logged (the caller has moved on)."""
        try:
            async with asyncio.timeout(self.server.timeout):
                done = await work
            if isinstance(done, aiohttp.ClientResponse):
                done.release()
        except (UpstreamError, TimeoutError, aiohttp.ClientError) as exc:
            log.debug("%s failed", what, extra={"server": self.server.name, "error": str(exc)})

    def cancel_soon(self, request_id: codec.RequestId | None, reason: str) -> None:
        """Tell a 2025-era backend to stop working on `request_id` (best effort, in the background).

        A 2026-07-28 backend needs nothing more: closing the request's stream is its cancel.
        """
        if self.era != LEGACY or request_id is None:
            return
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": request_id, "reason": reason}}
        in_background(self._quietly("cancel notification", self._exchange(note, self._session_headers())))

    async def send_response(self, answer: dict[str, Any]) -> int:
        """POST a JSON-RPC response to a backend's request (2025 era) in our session; the HTTP status."""
        async with await self._post(answer, self._session_headers()) as resp:
            return resp.status
