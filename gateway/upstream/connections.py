"""The gateway's outgoing ClientSessions: one per purpose, each a keep-alive pool of its own.

`create_session` builds one (no cookies, no proxy environment, the SSRF guard with an upstream
allowlist); its `Connector` carries the lean HTTP/1.1 client (lean.py) that backend requests
(sender.py) go out on, under the same limits; anything else using the session goes through aiohttp. Backend requests wait their turn for a pooled connection (bounded by the server's
`timeout`: sender.py); a session made with `queue=False` — the one long-lived backend streams use —
never waits: a stream finding every connection held fails at once with `PoolFull`, which the
sender turns into a 503 naming the settings to raise (errors.StreamsExhausted). A stream holds its
connection for as long as it is open, so waiting for one would mean waiting for another agent to
leave.

Every connection has TCP keepalive on (`keepalive_socket`). Streams have no read timeout (a backend
may rightly stay quiet for hours), so a backend host lost without a reset (power, a partition)
would otherwise leave a stream — the gateway's own list-change followers, an agent's relayed
stream — hung for good, holding its pool slot: the kernel's probes fail it within
`KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_PROBES` seconds, and its reader reconnects.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from gateway.upstream.guard import GuardedResolver
from gateway.upstream.lean import (
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    KEEPALIVE_PROBES,
    LeanPool,
    PoolFull,
    keepalive_socket,
)

__all__ = [
    "KEEPALIVE_IDLE", "KEEPALIVE_INTERVAL", "KEEPALIVE_PROBES", "Connector", "PoolFull", "create_session",
    "keepalive_socket",
]

# Idle keep-alive connections are closed by us before the common servers close them (uvicorn,
# Node's http and the MCP SDKs' hosts: 5 s): a call written on a connection the server is closing
# at that moment would fail with "server disconnected" (a 502) and a tools/call is never resent.
IDLE_KEEPALIVE = 4.0


def _refuse_to_queue(limit: int, per_host: int) -> aiohttp.TraceConfig:
    """A trace that turns "wait for a free connection" into PoolFull (aiohttp removes the waiter)."""

    async def queued(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        raise PoolFull(limit, per_host)

    trace = aiohttp.TraceConfig()
    trace.on_connection_queued_start.append(queued)
    return trace


class Connector(aiohttp.TCPConnector):
    """The request session's connector: aiohttp's pool, plus `lean` (lean.py), the keep-alive
    HTTP/1.1 client sender.py sends the session's requests on, under the same limits, resolver and
    keep-alive; closing the session closes both."""

    def __init__(self, *, limit: int, limit_per_host: int, keepalive_timeout: float, queue: bool = True,
                 **options: Any) -> None:
        super().__init__(limit=limit, limit_per_host=limit_per_host, keepalive_timeout=keepalive_timeout, **options)
        self.lean = LeanPool(limit=limit, limit_per_host=limit_per_host, resolver=self._resolver,
                             keepalive=keepalive_timeout, queue=queue)

    async def close(self, *, abort_ssl: bool = False) -> None:
        """Close the lean connections, then aiohttp's."""
        await self.lean.close()
        await super().close(abort_ssl=abort_ssl)


def create_session(
    *,
    limit: int = 200,
    limit_per_host: int = 32,
    allowlist: Sequence[str] | None = None,
    resolver: AbstractResolver | None = None,
    keepalive: float = IDLE_KEEPALIVE,
    queue: bool = True,
) -> aiohttp.ClientSession:
    """An upstream ClientSession: keep-alive pool, TCP keepalive, no cookies, no proxy env; `queue=False`: PoolFull
    instead of waiting when `limit` (or `limit_per_host` to one host) connections are held.

    With an upstream `allowlist`, names resolve through `GuardedResolver` (no connection to
    metadata/link-local addresses unless a CIDR of the allowlist names them).
    """
    if resolver is None and allowlist:
        resolver = GuardedResolver(allowlist)
    # Sender.send goes out on the connector's lean client (lean.py); anything else using the session
    # (token fetches, readiness) on aiohttp's, under the same settings.
    connector = Connector(
        queue=queue, limit=limit, limit_per_host=limit_per_host, ttl_dns_cache=60, resolver=resolver,
        keepalive_timeout=keepalive, socket_factory=keepalive_socket,
    )
    # A cookie jar would carry one backend's cookies to another on the same host (ports share cookies).
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        trust_env=False,
        trace_configs=None if queue else [_refuse_to_queue(limit, limit_per_host)],
    )
