"""Browser guard (CSRF, DNS rebinding) for every route, REST and MCP alike.

A page can make a browser send "simple" requests (a POST with a `text/plain` or form body, no
preflight); in no-auth mode that used to run a tool. So a foreign `Origin` (or, without one, a
cross-site `Sec-Fetch-Site`) is refused, and a state-changing REST request must carry JSON, which
a browser cannot send cross-origin without a CORS preflight the gateway never grants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiohttp import hdrs, web

from gateway.edge import WELL_KNOWN, is_mcp_path, origin_allowed
from gateway.middlewares.refuse import refuse

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS_SITE = frozenset({"cross-site", "same-site"})
# Content types a page may POST cross-origin without a preflight (the Fetch standard's list).
CORS_SAFELISTED = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})


def browser_problem(
    method: str, path: str, headers: Mapping[str, str], allowed: Sequence[str], host: str | None,
    *, has_body: bool = True,
) -> tuple[int, str, str] | None:
    """(status, code, message) when a request looks like a cross-site browser request, else None."""
    origin = headers.get(hdrs.ORIGIN)
    if origin is not None and not origin_allowed(origin, allowed, host):
        return 403, "origin_not_allowed", "Origin not allowed"
    changes_state = method not in SAFE_METHODS
    if origin is None and changes_state and (headers.get("Sec-Fetch-Site") or "").lower() in CROSS_SITE:
        return 403, "origin_not_allowed", "cross-site request without an allowed Origin"
    if changes_state and not is_mcp_path(path) and not json_body(headers.get(hdrs.CONTENT_TYPE), has_body):
        return 415, "unsupported_media_type", "Content-Type must be application/json"
    return None


def json_body(content_type: str | None, has_body: bool) -> bool:
    """A JSON body (`application/json` or `application/<x>+json`, parameters ignored); an empty one
    may carry any type but those a form can send (refused, body or not)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not has_body:
        return media not in CORS_SAFELISTED
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def browser_refusal(request: web.Request, allowed: Sequence[str]) -> web.Response | None:
    """403 for a foreign Origin, 415 for a state-changing REST request without a JSON body, else None."""
    # The RFC 9728 metadata is public, static and meant to be fetched by browser clients.
    if request.path.startswith(WELL_KNOWN):
        return None
    # request.host is read lazily: it is only needed to judge an Origin.
    host = request.host if request.headers.get(hdrs.ORIGIN) is not None else None
    # An unknown route keeps its 404 (the content-type rule is about routes that act).
    routed = request.match_info.http_exception is None
    problem = browser_problem(
        request.method, request.path if routed else "/mcp", request.headers, allowed, host,
        has_body=request.body_exists,
    )
    return refuse(request, *problem) if problem is not None else None
