"""Who may ask for decisions: loopback callers (sidecar) or holders of the API token (standalone)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from pdp.settings import PdpSettings
from shared.jsonutil import error_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROTECTED_PREFIX = "/access/"


def is_loopback(remote: str | None) -> bool:
    """Whether a peer address is loopback (unknown = no)."""
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def access_middleware(settings: PdpSettings) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Guard the decision API according to `access_mode`."""
    token = settings.api_token.get().encode() if settings.api_token else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(PROTECTED_PREFIX):
            return await handler(request)
        if settings.access_mode == "sidecar":
            if not is_loopback(request.remote):
                return error_response(403, "forbidden", "sidecar mode: decisions are served to loopback callers only")
            return await handler(request)
        if len(request.headers.getall("Authorization", [])) > 1:
            return error_response(400, "bad_request", "more than one Authorization header")
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if token is None or scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
            return error_response(401, "unauthorized", "a valid bearer API token is required",)
        return await handler(request)

    return middleware
