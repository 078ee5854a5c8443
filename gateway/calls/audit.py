"""The call's audit record: the request's AuditInfo, which every entry point fills the same way.

Below both gateway/mcp and gateway/routes, so the MCP server never imports the REST routes.
"""

from __future__ import annotations

from aiohttp import web

from gateway.gwaudit import AuditInfo
from gateway.keys import AUDIT_INFO


def audit(request: web.Request) -> AuditInfo:
    """The request's AuditInfo, or a throwaway one when audit is off."""
    info = request.get(AUDIT_INFO)
    if info is None:
        info = AuditInfo()
        request[AUDIT_INFO] = info
    return info
