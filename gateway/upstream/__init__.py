"""MCP client to backends over Streamable HTTP, both protocol eras (see README.md here)."""

from gateway.upstream.client import LEGACY, MODERN, BackendClient
from gateway.upstream.connections import create_session
from gateway.upstream.errors import (
    CallBudgetExceeded,
    ResponseTooLarge,
    UpstreamError,
    UpstreamRpcError,
    UpstreamTimeout,
)
from gateway.upstream.pool import UpstreamPool
from gateway.upstream.sender import Reply

__all__ = [
    "LEGACY",
    "MODERN",
    "BackendClient",
    "CallBudgetExceeded",
    "Reply",
    "ResponseTooLarge",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamRpcError",
    "UpstreamTimeout",
    "create_session",
]
