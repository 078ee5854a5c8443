"""gateway.upstream.sse: the one SSE parser (WHATWG rules, raw bytes kept), the one read loop, encode."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from gateway.upstream import sse
from gateway.upstream.errors import CallBudgetExceeded, ResponseTooLarge, UpstreamError
from shared.jsonutil import dumps_str

# (name, payload, dispatched events as (event, data, id, retry))
CASES = [
    ("lf", b"event: message\ndata: {}\n\n", [("message", "{}", None, None)]),
    ("crlf", b"event: message\r\ndata: {}\r\n\r\n", [("message", "{}", None, None)]),
    ("cr only", b"data: a\rdata: b\r\r", [("message", "a\nb", None, None)]),
    ("comment keep-alive", b": ping\r\n\r\ndata: x\r\n\r\n", [("message", "x", None, None)]),
    ("multi-line data", b"data: {\"a\":\ndata: 1}\n\n", [("message", '{"a":\n1}', None, None)]),
    ("no space after colon", b"data:x\n\n", [("message", "x", None, None)]),
    ("only one leading space stripped", b"data:  x\n\n", [("message", " x", None, None)]),
    ("custom event", b"event: other\ndata: x\n\n", [("other", "x", None, None)]),
    ("id and retry", b"id: 7\nretry: 500\ndata: x\n\n", [("message", "x", "7", 500)]),
    ("event without data is not dispatched", b"event: message\n\ndata: y\n\n", [("message", "y", None, None)]),
    ("empty data line dispatches empty data", b"data:\n\n", [("message", "", None, None)]),
    ("unknown field ignored", b"foo: bar\ndata: x\n\n", [("message", "x", None, None)]),
    ("unterminated event dropped", b"data: x\n", []),
    ("two events", b"data: 1\n\ndata: 2\n\n", [("message", "1", None, None), ("message", "2", None, None)]),
    ("id persists", b"id: 1\ndata: a\n\ndata: b\n\n", [("message", "a", "1", None), ("message", "b", "1", None)]),
    ("U+2028 is data, not a line end", "data: a\u2028b\n\n".encode(), [("message", "a\u2028b", None, None)]),
]


def _dispatched(events: list[sse.Event]) -> list[tuple[str, str, str | None, int | None]]:
    return [(e.event, e.data, e.id, e.retry) for e in events if e.data is not None]


@pytest.mark.parametrize(("name", "payload", "expected"), CASES, ids=[c[0] for c in CASES])
def test_whole(name: str, payload: bytes, expected: list[tuple]) -> None:
    assert _dispatched(sse.parse(payload)) == expected


@pytest.mark.parametrize(("name", "payload", "expected"), CASES, ids=[c[0] for c in CASES])
def test_byte_by_byte(name: str, payload: bytes, expected: list[tuple]) -> None:
    # Chunk boundaries anywhere (including between CR and LF) change neither the events nor their bytes.
    parser = sse.Parser()
    events: list[sse.Event] = []
    for i in range(len(payload)):
        events += parser.feed(payload[i : i + 1])
    events += parser.close()
    assert _dispatched(events) == expected
    assert b"".join(e.raw for e in events) + parser.rest() == payload


STREAM = (
    b": ping\r\n\r\n"
    b"event: message\r\nid: 7\r\ndata: {\"a\":1}\r\n\r\n"
    b"retry: 100\nid: 8\ndata: line1\ndata: line2\n\n"
)


@pytest.mark.parametrize("size", [1, 2, 5, 13, len(STREAM)])
def test_raw_bytes_pass_through_whatever_the_chunking(size: int) -> None:
    parser = sse.Parser()
    events: list[sse.Event] = []
    for i in range(0, len(STREAM), size):
        events += parser.feed(STREAM[i : i + size])
    assert [e.data is None for e in events] == [True, False, False]  # the keep-alive is a block too
    assert events[1].id == "7" and events[1].data == '{"a":1}'
    assert events[2].id == "8" and events[2].data == "line1\nline2" and events[2].retry == 100
    assert b"".join(e.raw for e in events) == STREAM  # byte-exact passthrough
    assert parser.rest() == b""


def test_trailing_cr_waits_then_ends_its_line_at_close() -> None:
    parser = sse.Parser()
    assert parser.feed(b"data: x\r\r") == []  # the last CR might be half of a CRLF
    assert _dispatched(parser.close()) == [("message", "x", None, None)]


def test_crlf_split_is_one_line_end() -> None:
    parser = sse.Parser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n") == []
    assert _dispatched(parser.feed(b"\r\n")) == [("message", "x", None, None)]


def test_unterminated_tail_is_kept_for_a_relay() -> None:
    parser = sse.Parser()
    assert parser.feed(b"data: x\n") == []
    assert parser.close() == []
    assert parser.rest() == b"data: x\n"


@pytest.mark.parametrize(("chunks", "pending"), [
    ([b"data: abc\n"], 10),
    ([b"data: abc\ndata: de"], 18),  # the unfinished line counts too
    ([b"data: abc\n\n"], 0),  # dispatched
    ([b"data: abc\n\ndata: x"], 7),
    ([b"data: abc\n", b"\n"], 0),
])  # fmt: skip
def test_pending_counts_the_block_being_assembled(chunks: list[bytes], pending: int) -> None:
    parser = sse.Parser()
    for chunk in chunks:
        parser.feed(chunk)
    assert parser.pending == pending


@pytest.mark.parametrize("cut", [3, 9, 10, 11])
def test_skip_drops_the_rest_of_the_block_and_keeps_the_next(cut: int) -> None:
    big, small = b"data: " + b"x" * 20 + b"\ndata: y\n\n", b"data: next\n\n"
    parser = sse.Parser()
    parser.feed(big[:cut])
    parser.skip()
    assert parser.pending <= 2
    assert _dispatched(parser.feed(big[cut:] + small)) == [("message", "next", None, None)]


def test_skip_at_a_line_end_then_blank_line_ends_the_skipped_block() -> None:
    parser = sse.Parser()
    parser.feed(b"data: big\r")  # the CR may be half of a CRLF
    parser.skip()
    assert _dispatched(parser.feed(b"\n\r\ndata: after\n\n")) == [("message", "after", None, None)]


def test_encode_round_trip() -> None:
    raw = sse.encode('{"x":\n1}', id="3")
    (event,) = sse.parse(raw)
    assert event.data == '{"x":\n1}' and event.id == "3" and event.raw == raw


# The read loop, over a real aiohttp response from a loopback server.

Body = list[bytes]


@pytest.fixture
async def stream(aiohttp_server: Callable, aiohttp_client: Callable) -> Callable:
    """`open(chunks)`: a response whose SSE body arrives in exactly those chunks."""
    async def open_(chunks: Body, *, broken: bool = False) -> aiohttp.ClientResponse:
        async def handler(request: web.Request) -> web.StreamResponse:
            out = web.StreamResponse(headers=sse.SSE_HEADERS)
            await out.prepare(request)
            for chunk in chunks:
                await out.write(chunk)
            if broken:  # a chunked body that stops mid-chunk
                assert request.transport is not None
                request.transport.close()
                return out
            await out.write_eof()
            return out

        app = web.Application()
        app.router.add_get("/", handler)
        client = await aiohttp_client(await aiohttp_server(app))
        return await client.get("/")  # type: ignore[no-any-return]

    return open_


async def _collect(events: AsyncIterator[sse.Event]) -> list[sse.Event]:
    return [e async for e in events]


async def test_loop_yields_every_block_as_it_completes(stream: Callable) -> None:
    resp = await stream([b"data: 1\n", b"\n: ka\n\nda", b"ta: 2\n\n"])
    events = await _collect(sse.events(resp, "s", 1000))
    assert [e.data for e in events] == ["1", None, "2"]


async def test_loop_fails_on_an_oversized_event(stream: Callable) -> None:
    resp = await stream([b"data: small\n\n", b"data: " + b"x" * 200 + b"\n\n"])
    seen: list[str | None] = []
    with pytest.raises(ResponseTooLarge):
        async for event in sse.events(resp, "s", 100):
            seen.append(event.data)
    assert seen == ["small"]


@pytest.mark.parametrize("chunks", [
    [b"data: " + b"x" * 200 + b"\n\ndata: after\n\n"],  # complete within one chunk
    [b"data: " + b"x" * 150, b"x" * 150 + b"\n\n", b"data: after\n\n"],  # still being assembled
])  # fmt: skip
async def test_loop_skips_an_oversized_event_when_asked(stream: Callable, chunks: Body) -> None:
    resp = await stream(chunks)
    events = await _collect(sse.events(resp, "s", 100, oversized="skip"))
    assert [e.data for e in events] == ["after"]


async def test_loop_counts_a_calls_budget_across_rounds(stream: Callable) -> None:
    budget = sse.Budget(60, used=40)  # an earlier round of the call already read 40 bytes
    resp = await stream([b"data: 12345\n\n", b"data: " + b"y" * 20 + b"\n\n"])
    with pytest.raises(CallBudgetExceeded) as raised:
        await _collect(sse.events(resp, "s", 1000, budget=budget))
    assert raised.value.limit == 60 and budget.used > 60


async def test_loop_reports_a_stream_that_breaks_off(stream: Callable) -> None:
    resp = await stream([b"data: 1\n\ndata: par"], broken=True)
    with pytest.raises(UpstreamError, match="broke off"):
        await _collect(sse.events(resp, "s", 1000))


@pytest.mark.parametrize(("message", "event", "id"), [
    ({"jsonrpc": "2.0", "id": 1, "result": {"text": "two\nlines", "n": 1.5}}, "message", None),
    ({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}, "message", "7"),
    ({"jsonrpc": "2.0", "id": "x", "result": {}}, None, None),
    ({"emoji": "\u2603", "nul": "\u0000"}, "other", "s-1"),
])
def test_json_event_is_the_encoding_of_the_json_text(message: dict[str, object], event: str | None,
                                                     id: str | None) -> None:
    assert sse.json_event(message, event=event, id=id) == sse.encode(dumps_str(message), event=event, id=id)
