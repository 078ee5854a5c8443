"""gateway.upstream.http1: one lean keep-alive connection against real loopback servers sending edge-case
answers — chunked with extensions and trailers, interim 1xx, no-body statuses, a close mid-body, a slow
or silent head, oversized and malformed heads — each read as aiohttp would, or failed clearly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from gateway.upstream.http1 import LeanResponse, MalformedResponse, head
from gateway.upstream.lean import LeanPool
from tests.fixtures import raw_http
from tests.fixtures.raw_http import answering, read_request

serve = raw_http.serve  # the loopback server fixture


@pytest.fixture
async def pool() -> AsyncIterator[LeanPool]:
    lean = LeanPool(limit=10, limit_per_host=4, resolver=ThreadedResolver(), keepalive=4.0)
    yield lean
    await lean.close()


async def post(pool: LeanPool, url: str, body: bytes = b"{}", method: str = "POST", idle: float = 5.0,
               headers: dict[str, str] | None = None) -> tuple[LeanResponse, bytes]:
    resp = await pool.request(method, URL(url), headers or {"Content-Type": "application/json"},
                              body if method == "POST" else None, connect_limit=idle, read_timeout=idle)
    async with resp:
        return resp, await resp.content.read()


async def test_a_content_length_answer_is_read_and_its_connection_reused(serve: Any, pool: LeanPool) -> None:
    ok = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nX-Twice: a\r\n"
          b"x-twice: b\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
    server, url = await serve(answering(ok, ok))
    resp, body = await post(pool, url)
    assert (resp.status, body, resp.content_type) == (200, b'{"ok":true}', "application/json")
    assert resp.headers.getall("X-TWICE") == ["a", "b"]  # case-insensitive, duplicates kept
    resp, body = await post(pool, url)
    assert body == b'{"ok":true}' and server.connections == 1


async def test_the_request_is_one_write_with_its_own_framing(serve: Any, pool: LeanPool) -> None:
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await reader.read()

    _, url = await serve(script)
    await post(pool, url + "?k=v", b'{"a":1}', headers={"Content-Type": "application/json", "X-Key": "s3cret",
                                                        "Host": "evil", "Content-Length": "1"})
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /mcp?k=v HTTP/1.1"
    assert b"X-Key: s3cret" in lines and b"Content-Length: 7" in lines and body == b'{"a":1}'
    assert [line for line in lines if line.lower().startswith(b"host:")] == [b"Host: " + url.split("/")[2].encode()]


@pytest.mark.parametrize(("method", "headers", "body", "expected"), [
    ("POST", {"Content-Type": "application/json"}, b"{}",
     b"POST /p HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\nAccept: */*\r\nUser-Agent: %s\r\n"
     b"Content-Length: 2\r\n\r\n{}"),
    ("POST", {"accept": "text/event-stream", "HOST": "x", "transfer-encoding": "chunked"}, b"",
     b"POST /p HTTP/1.1\r\nHost: h:1\r\naccept: text/event-stream\r\nUser-Agent: %s\r\n"
     b"Content-Type: application/octet-stream\r\nContent-Length: 0\r\n\r\n"),
    ("DELETE", {"Mcp-Session-Id": "s"}, None,
     b"DELETE /p HTTP/1.1\r\nHost: h:1\r\nMcp-Session-Id: s\r\nAccept: */*\r\nUser-Agent: %s\r\n\r\n"),
    ("POST", {}, None,
     b"POST /p HTTP/1.1\r\nHost: h:1\r\nAccept: */*\r\nUser-Agent: %s\r\nContent-Length: 0\r\n\r\n"),
])
def test_head_frames_the_request_itself(method: str, headers: dict[str, str], body: bytes | None,
                                        expected: bytes) -> None:
    assert head(method, "/p", "h:1", headers, body) == expected % SERVER_SOFTWARE.encode()


@pytest.mark.parametrize("name", ["X Key", "X:Key", "", "X\u00e9"])
def test_a_header_name_that_is_no_token_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        head("POST", "/", "h", {name: "v"}, b"")


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\0b"])
async def test_a_header_value_that_would_split_the_head_is_refused(pool: LeanPool, value: str) -> None:
    with pytest.raises(ValueError):
        await pool.request("POST", URL("http://127.0.0.1:1/"), {"X-Key": value}, b"", connect_limit=1)


async def test_chunked_with_extensions_and_trailers_is_joined_and_the_connection_kept(serve: Any, pool: LeanPool) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
               b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    server, url = await serve(answering(chunked, chunked))
    for _ in range(2):
        resp, body = await post(pool, url)
        assert (resp.status, body) == (200, b"hello world")
    assert server.connections == 1


async def test_interim_answers_are_skipped_for_the_final_one(serve: Any, pool: LeanPool) -> None:
    _, url = await serve(answering(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                                   b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
    resp, body = await post(pool, url)
    assert (resp.status, body) == (200, b"{}")


async def test_a_switch_of_protocols_nobody_asked_for_is_malformed_and_the_connection_closed(
    serve: Any, pool: LeanPool
) -> None:
    switch = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"
    two = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(switch + two if server.connections == 1 else two)  # the tail is no answer of ours
        await reader.read()

    server, url = await serve(script)
    with pytest.raises(MalformedResponse, match="101"):
        await post(pool, url)
    resp, body = await post(pool, url)  # a new connection: the switched one is never reused
    assert (resp.status, body, server.connections) == (200, b"two", 2)


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_statuses_read_nothing_and_keep_the_connection(serve: Any, pool: LeanPool, status: int) -> None:
    answer = f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode()
    server, url = await serve(answering(answer, answer))
    for _ in range(2):
        resp, body = await post(pool, url)
        assert (resp.status, body) == (status, b"")
    assert server.connections == 1


async def test_a_head_answer_has_no_body_whatever_its_length(serve: Any, pool: LeanPool) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"
    server, url = await serve(answering(answer, answer))
    for _ in range(2):
        resp, body = await post(pool, url, method="HEAD")
        assert (resp.status, body, resp.content_length) == (200, b"", 50)
    assert server.connections == 1


async def test_connection_close_ends_a_body_read_to_the_close_and_is_not_reused(serve: Any, pool: LeanPool) -> None:
    server, url = await serve(answering(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", then_close=True))
    resp, body = await post(pool, url)
    assert body == b"until the end"
    resp, body = await post(pool, url)
    assert body == b"until the end" and server.connections == 2


async def test_a_close_mid_body_is_a_payload_error(serve: Any, pool: LeanPool) -> None:
    _, url = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", then_close=True))
    with pytest.raises(aiohttp.ClientPayloadError, match="received 3 of 10"):
        await post(pool, url)


async def test_a_chunked_body_cut_short_is_a_payload_error(serve: Any, pool: LeanPool) -> None:
    _, url = await serve(answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", then_close=True))
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(pool, url)


async def test_a_close_before_any_answer_is_a_disconnect(serve: Any, pool: LeanPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    _, url = await serve(script)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(pool, url)


async def test_a_silent_head_times_out_on_the_idle_limit(serve: Any, pool: LeanPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")  # part of a head, then nothing
        await reader.read()

    _, url = await serve(script)
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await post(pool, url, idle=0.3)
    assert asyncio.get_running_loop().time() - started < 3


async def test_the_timeout_is_an_idle_limit_not_a_total(serve: Any, pool: LeanPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(6):  # 0.6 s in all, never 0.3 s silent
            await asyncio.sleep(0.1)
            writer.write(b"1\r\nx\r\n")
        writer.write(b"0\r\n\r\n")
        await reader.read()

    _, url = await serve(script)
    _, body = await post(pool, url, idle=0.3)
    assert body == b"x" * 6


async def test_a_body_gone_silent_times_out(serve: Any, pool: LeanPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await reader.read()

    _, url = await serve(script)
    with pytest.raises(TimeoutError):
        await post(pool, url, idle=0.3)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 9000 + b"\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"Content-Length: 0\r\n\r\n",
    b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
    b"SMTP ready\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
])
async def test_an_oversized_or_malformed_head_is_a_clear_error(serve: Any, pool: LeanPool, answer: bytes) -> None:
    _, url = await serve(answering(answer))
    with pytest.raises(MalformedResponse, match="malformed response"):
        await post(pool, url)


async def test_a_body_released_before_its_end_closes_its_connection(serve: Any, pool: LeanPool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")  # the rest never comes
        await reader.read()

    server, url = await serve(script)
    resp = await pool.request("POST", URL(url), {}, b"", connect_limit=5, read_timeout=5)
    resp.release()  # not read to its end: its connection cannot carry another answer
    assert resp.connection is None
    with pytest.raises(TimeoutError):
        await post(pool, url, idle=0.3)  # a new connection (the old one would have its rest first)
    assert server.connections == 2


async def test_a_body_that_arrived_whole_keeps_its_connection_even_unread(serve: Any, pool: LeanPool) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    server, url = await serve(answering(answer, answer))
    resp = await pool.request("POST", URL(url), {}, b"", connect_limit=5, read_timeout=5)
    await asyncio.sleep(0.05)
    resp.release()
    await post(pool, url)
    assert server.connections == 1


async def test_an_obsolete_folded_header_is_joined_or_refused_never_misread(serve: Any, pool: LeanPool) -> None:
    _, url = await serve(answering(b"HTTP/1.1 200 OK\r\nX-Fold: one\r\n two\r\nContent-Length: 2\r\n\r\n{}"))
    try:
        resp, body = await post(pool, url)
    except MalformedResponse:
        return
    assert body == b"{}" and resp.headers["X-Fold"].split() == ["one", "two"]


async def test_a_connection_failed_after_its_body_ended_is_never_handed_to_a_waiter(serve: Any) -> None:
    # The body's end puts the connection back (inside the parse) and wakes the POST waiting for the one
    # slot; the unasked answer in the same bytes closes it then: the POST must go out on a new one.
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            seen.append(request.split(b"\r\n")[0])
            if len(seen) == 1:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
                await asyncio.sleep(0.2)
                writer.write(b"cdHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server, url = await serve(script)
    pool = LeanPool(limit=1, limit_per_host=1, resolver=ThreadedResolver(), keepalive=4.0)
    try:
        first = await pool.request("GET", URL(url), {}, None, connect_limit=2, read_timeout=2)
        waiting = asyncio.create_task(post(pool, url))
        await asyncio.sleep(0.05)
        assert await first.read() == b"abcd"
        resp, body = await waiting
        assert (resp.status, body) == (200, b"ok")
        assert seen[1].startswith(b"POST") and server.connections == 2
    finally:
        await pool.close()
