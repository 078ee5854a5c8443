"""JWKS cache: OIDC discovery, periodic refresh, and a rate-limited single-flight refetch.

An unknown `kid` triggers at most one refetch per `refetch_interval` seconds, shared by every
concurrent caller, so key rotation works without restarts while a flood of made-up kids costs
the identity provider at most one extra request per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from joserfc.errors import JoseError
from joserfc.jwk import Key, import_key

from shared.jsonutil import loads

log = logging.getLogger(__name__)

DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
# Only asymmetric signing keys: an `oct` key would let a token pick an HMAC algorithm.
SIGNING_KTYS = ("RSA", "EC", "OKP")


class JwksUnavailable(Exception):
    """Discovery or the JWKS could not be fetched or parsed (no detail for clients)."""


def discovery_url(issuer: str) -> str:
    """Where an issuer publishes its OpenID configuration."""
    return issuer.rstrip("/") + DISCOVERY_SUFFIX


def parse_jwks(document: Any) -> dict[str, Key]:
    """Public signing keys by kid ("" for a key without one); unusable entries are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("JWKS has no 'keys' list")
    keys: dict[str, Key] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") not in SIGNING_KTYS:
            continue
        if entry.get("use", "sig") != "sig":
            continue
        public = {
            k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth")
        }
        try:
            key = import_key(public)
        except (JoseError, ValueError, TypeError):
            log.warning(
                "skipping an unparsable JWKS key", extra={"kid": str(entry.get("kid"))[:64]}
            )
            continue
        keys[str(entry.get("kid", ""))] = key
    return keys


class JwksCache:
    """Signing keys of one issuer, fetched over the app's ClientSession."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        jwks_url: str | None = None,
        issuer: str | None = None,
        refetch_interval: float = 30.0,
        max_age: float = 3600.0,
        retry_interval: float = 5.0,
        timeout: float = 5.0,
        on_refresh: Callable[[str], None] | None = None,
    ) -> None:
        if not jwks_url and not issuer:
            raise ValueError("JwksCache needs jwks_url or issuer")
        self._session = session
        self._jwks_url = jwks_url
        self._issuer = issuer
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._retry_interval = retry_interval
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._keys: dict[str, Key] = {}
        self._loaded_at: float | None = None
        self._last_forced = -float("inf")
        self._last_failure = -float("inf")
        self._inflight: asyncio.Task[None] | None = None
        # Called once per fetch with "ok" or "error" (the app counts refreshes by outcome).
        self._on_refresh = on_refresh

    @property
    def keys(self) -> dict[str, Key]:
        """The keys currently held (by kid)."""
        return dict(self._keys)

    async def get_key(self, kid: str | None) -> Key | None:
        """The key for `kid`, refreshing when stale and once (rate-limited) when the kid is unknown."""
        now = time.monotonic()
        stale = self._loaded_at is None or now - self._loaded_at > self._max_age
        if stale and now - self._last_failure >= self._retry_interval:
            await self._refresh()
        if not self._keys:
            raise JwksUnavailable("no signing keys available")
        key = self._lookup(kid)
        if key is None and now - self._last_forced >= self._refetch_interval:
            self._last_forced = now
            await self._refresh()
            key = self._lookup(kid)
        return key

    def _lookup(self, kid: str | None) -> Key | None:
        if kid is None:
            # A token without kid is only usable when the issuer publishes exactly one key.
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        # Single flight: concurrent callers await the same fetch; shield so one cancelled
        # caller does not cancel the fetch for the others.
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._fetch())
        try:
            await asyncio.shield(self._inflight)
        except JwksUnavailable:
            if not self._keys:
                raise
            # Keep serving the keys we have; the IdP being down must not log everyone out.

    async def _fetch(self) -> None:
        try:
            url = self._jwks_url or await self._discover()
            keys = parse_jwks(await self._get_json(url))
        except JwksUnavailable as exc:
            log.warning("JWKS refresh failed", extra={"reason": str(exc)})
            # Remembered so a dead IdP is retried once per retry_interval, not on every request.
            self._last_failure = time.monotonic()
            self._report("error")
            raise
        self._keys = keys
        self._loaded_at = time.monotonic()
        self._report("ok")

    def _report(self, outcome: str) -> None:
        if self._on_refresh is not None:
            self._on_refresh(outcome)

    async def _discover(self) -> str:
        assert self._issuer is not None
        document = await self._get_json(discovery_url(self._issuer))
        if not isinstance(document, dict):
            raise JwksUnavailable("discovery document is not an object")
        if document.get("issuer") != self._issuer:
            raise JwksUnavailable("discovery document names a different issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise JwksUnavailable("discovery document has no jwks_uri")
        self._jwks_url = jwks_uri
        return jwks_uri

    async def _get_json(self, url: str) -> Any:
        try:
            async with self._session.get(url, timeout=self._timeout, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise JwksUnavailable(f"{url} answered HTTP {resp.status}")
                return loads(await resp.read())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise JwksUnavailable(f"{url}: {type(exc).__name__}") from None
