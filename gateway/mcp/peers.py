"""The peer channel's ground: which replica owns a held call or a pending request, the signature
authenticating one replica's forward to another, and `Peers` (this replica's key, route and client).

An id the gateway mints for the agent to carry back (a `requestState`, a server→client request's
id) names its owner as a route: the owner's peer address and an HMAC of it under the peers' shared
key, `<address, base64url>.<mac, base64url>`. So a replica forwards only to an address a replica
minted — a forged route is refused before anything is sent, never a request to where an agent
chose. A forward is signed over its time, path and body; the owner accepts it within `WINDOW`
seconds of its clock (what it acts on is single-use: a claimed state, an answered request).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Coroutine
from typing import Any

import aiohttp
import orjson

from shared import b64url

WINDOW = 30.0  # seconds a signed forward stays acceptable (clock skew between replicas included)
SIGNATURE = "Mcpgw-Peer-Signature"
MAC_BYTES = 16
STAMP_DIGITS = 12  # unix seconds fit in 12 digits for the next 30,000 years
QUICK = 10.0  # seconds for a forward the owner answers at once (an answer, an end)


def _mac(key: bytes, label: bytes, data: bytes) -> bytes:
    return hmac.new(key, label + b"\0" + data, hashlib.sha256).digest()


def seal(key: bytes, address: str) -> str:
    """The route naming `address` (host:port) as an id's owner, for ids minted here."""
    raw = address.encode()
    return f"{b64url.encode(raw)}.{b64url.encode(_mac(key, b'route', raw)[:MAC_BYTES])}"


def unseal(key: bytes, route: str) -> str | None:
    """The address a route names; None unless a holder of `key` sealed it."""
    head, _, mac = route.partition(".")
    raw, tag = b64url.decode(head), b64url.decode(mac)
    if not raw or tag is None or not hmac.compare_digest(tag, _mac(key, b"route", raw)[:MAC_BYTES]):
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def mint(prefix: str, route: str, nonce: str) -> str:
    """An id: the prefix, the owner's route (none when this replica has no peers) and the random part."""
    return f"{prefix}{route}.{nonce}" if route else prefix + nonce


def route_of(prefix: str, ident: str) -> str | None:
    """The route part of an id minted with one (None for a plain or foreign id)."""
    if not ident.startswith(prefix):
        return None
    parts = ident[len(prefix):].split(".")
    return f"{parts[0]}.{parts[1]}" if len(parts) == 3 else None


def sign(key: bytes, now: float, path: str, body: bytes) -> str:
    """The signature header of a forward of `body` to `path` sent at `now` (unix seconds)."""
    stamp = str(int(now))
    return f"{stamp}.{b64url.encode(_mac(key, b'forward', stamp.encode() + b' ' + path.encode() + b' ' + body))}"


def fresh(now: float, header: str | None) -> bool:
    """Whether `header` has a signature's form and time, within WINDOW seconds of `now`: checked before
    the body is read. The stamp is ASCII digits, at most STAMP_DIGITS of them (int() would take "²"
    as a digit, never, and thousands of digits slowly)."""
    stamp, _, mac = (header or "").partition(".")
    if not (mac and stamp.isascii() and stamp.isdigit() and len(stamp) <= STAMP_DIGITS):
        return False
    return abs(now - int(stamp)) <= WINDOW


def verify(key: bytes, now: float, path: str, body: bytes, header: str | None) -> bool:
    """Whether `header` signs this forward with `key`, sent within WINDOW seconds of `now`."""
    if not fresh(now, header):
        return False
    stamp, _, mac = (header or "").partition(".")
    expected = _mac(key, b"forward", stamp.encode() + b" " + path.encode() + b" " + body)
    tag = b64url.decode(mac)
    return tag is not None and hmac.compare_digest(tag, expected)


class Peers:
    """This replica among its peers: the shared key, its own route, and the client forwards go out on."""

    def __init__(self, key: bytes, address: str, session: aiohttp.ClientSession, max_line: int) -> None:
        self.key, self.address, self.session, self.max_line = key, address, session, max_line
        self.route = seal(key, address)
        self.tasks: set[asyncio.Task[None]] = set()

    def elsewhere(self, prefix: str, ident: str) -> str | None:
        """The peer address owning `ident` when another replica minted it; None when it is ours, plain or forged."""
        route = route_of(prefix, ident)
        if route is None or route == self.route:
            return None
        return unseal(self.key, route)

    def post(self, address: str, path: str, body: dict[str, Any], quick: bool = False) -> Any:
        """A signed forward of `body` to `path` on the peer at `address` (an aiohttp request context);
        `quick`: answered at once (an answer, an end), so bounded by QUICK seconds in all."""
        data = orjson.dumps(body)
        headers = {SIGNATURE: sign(self.key, time.time(), path, data), "Content-Type": "application/json"}
        url = f"http://{address}{path}"
        # A peer never redirects: following one (aiohttp keeps the body across 307/308) would send the
        # agent's arguments wherever whoever holds a once-peer address chose.
        if quick:
            return self.session.post(url, data=data, headers=headers, allow_redirects=False,
                                     timeout=aiohttp.ClientTimeout(total=QUICK))
        # the session's timeout: connect 5 s, then rounds
        return self.session.post(url, data=data, headers=headers, allow_redirects=False)

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background, kept referenced until it ends (closed at shutdown)."""
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """Stop background forwards and close the client."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.session.close()
