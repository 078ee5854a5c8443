"""Forwarding to the replica that owns a held call or a pending server→client request (peers.py).

This replica has already authenticated the agent and, for a retry, decided it: it sends the owner
only what the owner checks and acts on — the subject, the tool as named, the arguments' canonical
JSON (the binding HeldCalls.claim checks, as for a local retry), the server it decided for, the
retry's `inputResponses` and the agent's progress token — never the agent's token or headers. The
owner streams the round back (peer_listener.py): notifications for the agent as they come, then the
result or the error. The audit row is this replica's (the decision was made here); the owner writes
none. An owner that cannot be reached is gone with its calls: the retry gets −32602.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp
import orjson
from aiohttp import web

from gateway.calls import outcome
from gateway.errors import BadGateway, GatewayError, GatewayTimeout, Overloaded
from gateway.keys import PEERS
from gateway.mcp.backchannel import PREFIX, invalid_state
from gateway.mcp.peers import Peers
from gateway.mcp.protocol import RequestId, RpcFailure
from gateway.registry import ServerConfig

log = logging.getLogger(__name__)
RESUME, ANSWER, END = "/peer/v1/resume", "/peer/v1/answer", "/peer/v1/end"
FAILURES: dict[int, type[GatewayError]] = {502: BadGateway, 503: Overloaded, 504: GatewayTimeout}


class Writer(Protocol):
    """The agent's request in progress, as a round writes to it (call_stream.Call)."""

    request: web.Request
    client_token: RequestId
    server: ServerConfig

    async def send(self, message: dict[str, Any]) -> None:
        """Write one message to the agent."""


def owner_body(owner: tuple[Any, ...]) -> dict[str, Any]:
    """A held call's owner binding (subject, tool as named, canonical arguments) as JSON."""
    subject, name, arguments = owner
    return {"subject": subject, "name": name, "arguments": arguments.decode()}


def owner_of(body: dict[str, Any]) -> tuple[Any, ...]:
    """The binding `owner_body` wrote, as HeldCalls compares it."""
    return body["subject"], body.get("name"), body["arguments"].encode()


class Remote:
    """Another replica's held call, continued by a retry that reached this one."""

    def __init__(self, peers: Peers, address: str, token: str, owner: tuple[Any, ...]) -> None:
        self.peers, self.address, self.token, self.owner = peers, address, token, owner
        self.resumed = False

    def end(self, reason: str) -> None:
        """The retry was refused here: the owner ends its call, as a local refusal would (bridge.claimed)."""
        self.peers.later(_end(self, reason))


async def _end(remote: Remote, reason: str) -> None:
    try:
        async with remote.peers.post(remote.address, END, {"state": remote.token, "reason": reason,
                                                           **owner_body(remote.owner)}, quick=True) as resp:
            await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("could not tell the owning replica to end a held call", extra={"error": type(exc).__name__})


async def resume(remote: Remote, writer: Writer, params: dict[str, Any]) -> dict[str, Any]:
    """One round of a held call on its owner, relayed to `writer`: its result (or input_required)."""
    remote.resumed = True
    body = {"state": remote.token, **owner_body(remote.owner), "server": writer.server.name,
            "inputResponses": params.get("inputResponses") or {}, "progressToken": writer.client_token}
    try:
        resp = await remote.peers.post(remote.address, RESUME, body)
    except (aiohttp.ClientConnectionError, TimeoutError):
        raise invalid_state() from None  # the owner is gone, and its held calls with it
    try:
        if resp.status != 200:
            log.error("the owning replica refused a forward (is MCPGW_GATEWAY_PEER_SECRET the same everywhere?)",
                      extra={"status": resp.status, "peer": remote.address})
            raise invalid_state()
        async for line in _lines(resp, remote.peers.max_line, writer.server.name):
            if "send" in line:
                await writer.send(line["send"])
            elif "result" in line:
                result: dict[str, Any] = line["result"]
                outcome.settle_tool(writer.request, str(params.get("name", "")), writer.server.name, False, result)
                return result
            elif "error" in line:
                err = line["error"]
                raise RpcFailure(err["code"], err["message"], err.get("data"), status=err.get("status"))
            elif "failed" in line:
                failed = line["failed"]
                raise FAILURES.get(failed.get("status"), BadGateway)(str(failed.get("message", "")))
    except (aiohttp.ClientError, ValueError, KeyError, TypeError):
        pass
    finally:
        resp.close()  # never back to the pool half read (an agent that left mid-round)
    raise BadGateway(f"backend {writer.server.name}: the replica holding the call broke off")


async def _lines(resp: aiohttp.ClientResponse, limit: int, server: str) -> AsyncIterator[dict[str, Any]]:
    """The owner's answer, one JSON object a line, each at most `limit` bytes."""
    buf = bytearray()
    async for chunk in resp.content.iter_any():
        buf += chunk
        while (end := buf.find(b"\n")) >= 0:
            line = orjson.loads(bytes(buf[:end]))
            del buf[:end + 1]
            if not isinstance(line, dict):
                raise ValueError("not an object")
            yield line
        if len(buf) > limit:
            raise BadGateway(f"backend {server}: the replica holding the call sent too long a message")


async def answer_elsewhere(request: web.Request, subject: str, gid: RequestId, message: dict[str, Any]) -> None:
    """A 2025 agent's answer to a server→client request another replica opened: handed to that replica
    (which checks the subject, as for a local answer). Anything else is dropped, as before."""
    peers = request.app.get(PEERS)
    address = peers.elsewhere(PREFIX, gid) if peers is not None and isinstance(gid, str) else None
    if peers is None or address is None:
        return
    try:
        async with peers.post(address, ANSWER, {"subject": subject, "id": gid, "message": message}, quick=True) as resp:
            await resp.read()
            if resp.status != 200:
                log.error("the owning replica refused a forwarded answer", extra={"status": resp.status, "peer": address})
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("could not forward an answer to its replica", extra={"error": type(exc).__name__, "peer": address})
