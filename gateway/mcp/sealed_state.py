"""A 2026-07-28 backend's own `requestState`, sealed before the agent sees it.

A backend that answers `input_required` hands the agent a `requestState` to send back on its retry;
the backend trusts it (it is how it finds the call in progress), so relayed as is it would be honoured
for whoever holds it. The gateway relays it in an envelope instead, `mcpgw-sealed-<payload>.<mac>`:
the backend's state (as it sent it) and an expiry, under an HMAC (the key derived from
MCPGW_GATEWAY_MCP_SESSION_SECRET, so any replica opens it and nothing is stored) over the payload
and what the state was issued for — the subject, the server, the method and its target (tool or
prompt name, resource URI) and the canonical JSON of the arguments. A retry's envelope is opened
only for that same binding, before its expiry; anything else is `InvalidState` (−32602 "Invalid or
expired requestState", the answer for the gateway's own held-call states) and nothing is forwarded.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import orjson

from gateway.mcp.backchannel import InvalidState, invalid_state
from shared import b64url

PREFIX = "mcpgw-sealed-"
MAC_BYTES = 16


def binding(subject: str, server: str, method: str, params: dict[str, Any]) -> bytes:
    """What a state is bound to: subject, server, method, its target and the arguments' canonical JSON
    (1, 1.0 and true differ, as for the gateway's own states)."""
    target = params.get("name") if method != "resources/read" else params.get("uri")
    try:
        arguments = orjson.dumps(params.get("arguments") or {}, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        raise InvalidState() from None
    digest = hashlib.sha256(arguments).hexdigest()
    return orjson.dumps([subject, server, method, target if isinstance(target, str) else None, digest])


class StateSeal:
    """Seals and opens backend requestStates with one key; `ttl` seconds is how long a state is honoured."""

    def __init__(self, key: bytes, ttl: float) -> None:
        self._key = hmac.new(key, b"mcpgw-backend-state-v1", hashlib.sha256).digest()
        self.ttl = ttl

    def _mac(self, payload: bytes, bound: bytes) -> bytes:
        return hmac.new(self._key, payload + b"\0" + bound, hashlib.sha256).digest()[:MAC_BYTES]

    def seal(self, state: Any, bound: bytes, now: float | None = None) -> str:
        """The envelope the agent gets for the backend's `state`, issued for `bound` (binding())."""
        expires = (time.time() if now is None else now) + self.ttl
        payload = orjson.dumps([expires, state])
        return f"{PREFIX}{b64url.encode(payload)}.{b64url.encode(self._mac(payload, bound))}"

    def open(self, token: Any, bound: bytes, now: float | None = None) -> Any:
        """The backend's state inside `token` if this gateway sealed it for `bound` and it is live;
        else InvalidState."""
        if not isinstance(token, str) or not token.startswith(PREFIX):
            raise InvalidState()
        head, _, mac = token[len(PREFIX):].partition(".")
        payload, tag = b64url.decode(head), b64url.decode(mac)
        if payload is None or tag is None or not hmac.compare_digest(tag, self._mac(payload, bound)):
            raise InvalidState()
        expires, state = orjson.loads(payload)  # ours (the MAC holds): [unix time, the backend's state]
        if (time.time() if now is None else now) > expires:
            raise InvalidState()
        return state

    def unsealed(self, params: dict[str, Any], bound: bytes) -> dict[str, Any]:
        """A retry's `params` carrying the backend's own state out of its envelope; RpcFailure (−32602
        "Invalid or expired requestState") unless it was sealed for `bound` and is live."""
        try:
            return {**params, "requestState": self.open(params.get("requestState"), bound)}
        except InvalidState:
            raise invalid_state() from None

    def result(self, result: dict[str, Any], bound: Callable[[], bytes]) -> dict[str, Any]:
        """A backend's result for the agent: an input_required's requestState sealed for `bound()`;
        any other result is `result` itself."""
        if result.get("resultType") != "input_required" or "requestState" not in result:
            return result
        return {**result, "requestState": self.seal(result["requestState"], bound())}
