"""Readiness for `GET /readyz`: the servers file is loaded, the PDP answers, signing keys are held.

The PDP check is cached and single-flight (many replicas' probes must not load the PDP). The audit
database is reported, not required: events are spooled meanwhile, and failing readiness on it
would turn a database outage into a full gateway outage without saving a single event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp

from shared.settings import Secret

if TYPE_CHECKING:
    from shared.audit.emitter import AuditEmitter
    from shared.auth.authenticator import Authenticator

PDP_READY_PATH = "/readyz"


class PdpProbe:
    """`GET <pdp>/readyz`, remembered for `ttl` seconds; None when ready, else the problem."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, *, token: Secret | None = None,
                 timeout: float = 2.0, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + PDP_READY_PATH
        self._headers = {"Authorization": f"Bearer {token.get()}"} if token is not None else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ttl = ttl
        self._clock = clock
        self._checked_at = -float("inf")
        self._problem: str | None = "PDP not checked yet"
        self._lock = asyncio.Lock()

    async def check(self) -> str | None:
        """The PDP's readiness problem (cached), or None when it is ready."""
        if self._clock() - self._checked_at < self._ttl:
            return self._problem
        async with self._lock:
            if self._clock() - self._checked_at >= self._ttl:
                self._problem = await self._ask()
                self._checked_at = self._clock()
        return self._problem

    async def _ask(self) -> str | None:
        try:
            async with self._session.get(self._url, headers=self._headers, timeout=self._timeout) as resp:
                await resp.read()
                # 404: an AuthZEN PDP of another make without a readiness endpoint, but it answered.
                if resp.status in (200, 404):
                    return None
                return f"PDP not ready (HTTP {resp.status})"
        except TimeoutError:
            return "PDP did not answer in time"
        except aiohttp.ClientError as exc:
            return f"PDP unreachable ({type(exc).__name__})"


def audit_state(emitter: AuditEmitter | None, postgres: bool) -> str | None:
    """"ok"/"spooling" for the audit database, None when audit rows do not go to Postgres."""
    if emitter is None or not postgres:
        return None
    return "ok" if emitter.healthy else "spooling"


async def keys_problem(authenticator: Authenticator | None) -> str | None:
    """None when the signing keys are held; otherwise try to fetch them (rate-limited) first."""
    if authenticator is None or authenticator.jwks.keys:
        return None
    # Without traffic nothing else would retry the IdP, and without keys the pod never gets any.
    if await authenticator.warm():
        return None
    return "identity provider signing keys unavailable"
