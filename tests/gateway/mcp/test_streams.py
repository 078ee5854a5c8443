"""until_disconnect: the shared per-loop poller cancels only the request whose client left."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from gateway.backend_auth import AuthConfig
from gateway.masking import credential_forms
from gateway.mcp import streams
from gateway.upstream import codec, sse
from shared.redact import REDACTED


class Transport:
    """The one method until_disconnect reads from an aiohttp transport."""

    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing


async def test_client_gone_cancels_only_its_own_request() -> None:
    left, stays = Transport(), Transport()
    cancelled: list[str] = []

    async def work(name: str, done: asyncio.Event) -> web.StreamResponse:
        try:
            await done.wait()
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        return web.StreamResponse(status=204)

    finish = asyncio.Event()
    req_left: Any = SimpleNamespace(transport=left)
    req_stays: Any = SimpleNamespace(transport=stays)
    a = asyncio.create_task(streams.until_disconnect(req_left, work("left", asyncio.Event())))
    b = asyncio.create_task(streams.until_disconnect(req_stays, work("stays", finish)))
    await asyncio.sleep(0)
    left.closing = True
    with pytest.raises(streams.ClientGone):
        await asyncio.wait_for(a, 2)
    assert cancelled == ["left"]
    finish.set()
    assert (await b).status == 204
    assert not b.cancelled()
    watcher = streams._watchers[asyncio.get_running_loop()]
    assert not watcher.watches
    await asyncio.sleep(streams.DISCONNECT_POLL * 2)
    assert watcher.handle is None  # idle: no timer left running


async def test_outside_cancellation_still_propagates() -> None:
    req: Any = SimpleNamespace(transport=Transport())
    task = asyncio.create_task(streams.until_disconnect(req, asyncio.Event().wait()))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_work_swallowing_the_cancel_is_still_client_gone() -> None:
    transport = Transport()
    req: Any = SimpleNamespace(transport=transport)

    async def stubborn() -> web.StreamResponse:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        return web.StreamResponse()

    task = asyncio.create_task(streams.until_disconnect(req, stubborn()))
    await asyncio.sleep(0)
    transport.closing = True
    with pytest.raises(streams.ClientGone):
        await asyncio.wait_for(task, 2)


SECRET = "sk-live-Zq8vN2kLp0xR7tYb"
FORMS = credential_forms(AuthConfig(method="bearer", name="Authorization", format="prefix", prefix="Bearer "), SECRET)
ESCAPED = "\\u0073k-live-Zq8vN2kLp0xR7tYb"  # \u-escaped: only a parser sees the secret


def _seen(raw: bytes) -> str:
    """What a client reads: the bytes, and the JSON of the body or of each SSE event decoded."""
    texts = [e.data for e in sse.parse(raw + b"\n\n") if e.data] if b"data:" in raw else [raw.decode()]
    return raw.decode() + "".join(json.dumps(codec.loads_or_none(t)) for t in texts)


@pytest.mark.parametrize("body", [
    f'[{{"jsonrpc":"2.0","id":1,"result":{{"t":"{ESCAPED}"}}}}]',  # a batch, the secret escaped
    f'"{ESCAPED}"',
    f'{{"jsonrpc":"2.0","id":1,"result":{{}},"x":"{ESCAPED}"}}',
    f"401: bad token {SECRET}",
])
def test_a_body_is_masked_whatever_json_it_holds(body: str) -> None:
    masked = streams.masked_answer(body.encode(), FORMS)
    assert SECRET not in _seen(masked) and REDACTED in masked.decode(), masked


@pytest.mark.parametrize("raw", [
    f'data: [{{"jsonrpc":"2.0","method":"notifications/message","params":{{"data":"{SECRET}"}}}}]\n\n',
    f'data: "{ESCAPED}"\n\n',
    f'data: [{{"jsonrpc":"2.0","id":1,"result":{{"t":"{ESCAPED}"}}}}]\n\n',
    f': {SECRET}\nid: {SECRET}\nevent: {SECRET}\nx-{SECRET}: 1\ndata: {{"jsonrpc":"2.0","method":"ping"}}\n\n',
    f": {SECRET}\n\n",  # a comment alone
    f'data: not json {SECRET}\n\n',
])
def test_an_event_is_masked_in_every_field(raw: str) -> None:
    event = sse.parse(raw.encode())[0]
    msg = codec.loads_or_none(event.data) if event.data else None
    masked, out = streams.masked_event(event, FORMS, msg)
    assert SECRET not in _seen(out.raw) and SECRET not in json.dumps(masked), out.raw
    assert out.id is None or SECRET not in out.id


def test_an_unterminated_last_block_with_a_trace_is_dropped() -> None:
    assert streams.masked_rest(f"data: {SECRET}".encode(), FORMS) == b""
    assert streams.masked_rest(b"data: clean", FORMS) == b"data: clean"
