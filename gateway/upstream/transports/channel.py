"""The seam between the multiplexer (mux.py) and a transport: what a connection implements, the
error a transport raises, and the gateway's own answer to a server request nobody relays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any


class Unavailable(Exception):
    """The server is not reachable (or dropped mid-call); `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Channel:
    """One connection to the server: what a transport implements."""

    async def send(self, message: dict[str, Any]) -> None:
        """Deliver one JSON-RPC message; raise Unavailable if the connection is gone."""
        raise NotImplementedError

    def messages(self) -> AsyncIterator[dict[str, Any]]:
        """The server's messages, ending when the connection ends."""
        raise NotImplementedError

    async def close(self) -> None:
        """End the connection (stop the process)."""
        raise NotImplementedError

    def ended(self) -> str:
        """How the connection ended, for messages ("exited with code 3")."""
        return "ended"


def answer_server_request(request: dict[str, Any]) -> dict[str, Any]:
    """The gateway's answer to a request the server sends on its shared session."""
    method, rid = request.get("method"), request.get("id")
    if method == "ping":
        return {"jsonrpc": "2.0", "id": rid, "result": {}}
    if method == "roots/list":
        return {"jsonrpc": "2.0", "id": rid, "result": {"roots": []}}
    return {"jsonrpc": "2.0", "id": rid, "error": {
        "code": -32601, "message": f"{method} is not available: the gateway does not relay it to agents"}}
