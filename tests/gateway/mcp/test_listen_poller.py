"""The shared catalog poller's pure parts and its sharing: advertised kinds, digests, one view per key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from gateway.mcp.listen import CatalogPoller, advertised, digest


@pytest.mark.parametrize(("info", "expected"), [
    ({"capabilities": {"tools": {"listChanged": True}}}, ["tools/list"]),
    ({"capabilities": {"tools": {}, "prompts": {}, "resources": {"subscribe": True}}},
     ["tools/list", "prompts/list", "resources/list", "resources/templates/list"]),
    ({"capabilities": {"logging": {}}}, []),  # advertises no catalog: never polled
    ({"capabilities": {"tools": True}}, []),  # not a capability object
    ({}, []),
])
def test_only_advertised_kinds_are_polled(info: dict[str, Any], expected: list[str]) -> None:
    assert advertised(info) == expected


def test_digest_ignores_order_but_not_content_or_owner() -> None:
    a, b = {"name": "a"}, {"name": "b"}
    assert digest({"tools/list": {"s": [a, b]}}) == digest({"tools/list": {"s": [b, a]}})
    assert digest({"tools/list": {"s": [a]}}) != digest({"tools/list": {"t": [a]}})
    assert digest({"tools/list": {"s": [a]}}) != digest({"prompts/list": {"s": [a]}})


class Srv:
    def __init__(self, name: str) -> None:
        self.name = name


async def test_a_refresh_reads_each_advertised_list_once_and_bumps_the_generation_on_change() -> None:
    tools = [{"name": "a"}]
    calls: list[tuple[str, str]] = []

    async def fetch(server: Any, method: str) -> list[dict[str, Any]]:
        calls.append((server.name, method))
        return list(tools)

    async def info(server: Any) -> dict[str, Any]:
        return {"capabilities": {"tools": {}}} if server.name == "t" else {"capabilities": {}}

    changes: list[int] = []
    poller = CatalogPoller()
    poller.bind(fetch, lambda: [Srv("t"), Srv("none")], info, lambda: 3600.0,
                lambda: changes.append(poller.generation))
    await poller.refresh()
    assert calls == [("t", "tools/list")] and poller.generation == 1
    await poller.refresh()
    assert poller.generation == 1  # nothing changed
    tools.append({"name": "b"})
    await poller.refresh()
    assert poller.generation == 2 and poller.lists["tools/list"]["t"] == tools
    # `changed` ran for each new generation before it was visible (the /mcp list cache empties there)
    assert changes == [0, 1]


async def test_one_view_per_key_however_many_streams_ask() -> None:
    poller = CatalogPoller()
    computed = 0
    gate = asyncio.Event()

    async def compute() -> str:
        nonlocal computed
        computed += 1
        await gate.wait()
        return "digest"

    waiters = [asyncio.ensure_future(poller.view(("alice", 1), compute)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiters) == ["digest"] * 50
    assert computed == 1


async def test_streams_opening_together_wait_for_one_first_read() -> None:
    reads = 0
    gate = asyncio.Event()

    async def fetch(server: Any, method: str) -> list[dict[str, Any]]:
        nonlocal reads
        reads += 1
        await gate.wait()
        return []

    async def info(server: Any) -> dict[str, Any]:
        return {"capabilities": {"tools": {}}}

    poller = CatalogPoller()
    poller.bind(fetch, lambda: [Srv("t")], info, lambda: 3600.0)

    async def stream() -> None:
        async with poller.subscribed():
            pass

    streams = [asyncio.create_task(stream()) for _ in range(20)]
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.gather(*streams)
    assert reads == 1 and poller.rounds == 1
    await poller.close()


async def test_a_backends_announcement_rereads_only_that_backend_once_per_burst() -> None:
    tools = {"t": [{"name": "a"}], "u": [{"name": "z"}]}
    calls: list[str] = []
    pokes: dict[str, Callable[[], None]] = {}
    watching = asyncio.Event()

    async def fetch(server: Any, method: str) -> list[dict[str, Any]]:
        calls.append(server.name)
        return list(tools[server.name])

    async def info(server: Any) -> dict[str, Any]:
        return {"capabilities": {"tools": {}}}

    async def watch(server: Any, poke: Callable[[], None]) -> None:
        pokes[server.name] = poke
        if len(pokes) == 2:
            watching.set()
        await asyncio.Event().wait()  # a backend stream, open until the poller stops watching

    changed = asyncio.Event()
    poller = CatalogPoller()
    poller.bind(fetch, lambda: [Srv("t"), Srv("u")], info, lambda: 3600.0, changed.set, watch)
    async with poller.subscribed():
        await asyncio.wait_for(watching.wait(), 5)
        assert sorted(calls) == ["t", "u"] and poller.generation == 1
        calls.clear()
        changed.clear()
        tools["t"].append({"name": "b"})
        for _ in range(5):  # one burst of announcements
            pokes["t"]()
        await asyncio.wait_for(changed.wait(), 5)
        assert calls == ["t"] and poller.generation == 2  # only the announcing backend, once
        assert poller.lists["tools/list"] == {"t": tools["t"], "u": tools["u"]}  # the other kept its list
    await poller.close()
    assert not poller._watchers  # the last stream gone: nothing is watched


async def test_a_backend_repeating_its_announcement_is_reread_at_most_once_per_interval(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.mcp.listen.MIN_REREAD", 0.3, raising=False)
    loop = asyncio.get_running_loop()
    reads: list[float] = []
    pokes: dict[str, Callable[[], None]] = {}
    watching, read = asyncio.Event(), asyncio.Event()

    async def fetch(server: Any, method: str) -> list[dict[str, Any]]:
        reads.append(loop.time())
        read.set()
        return [{"name": f"t{len(reads)}"}]

    async def info(server: Any) -> dict[str, Any]:
        return {"capabilities": {"tools": {}}}

    async def watch(server: Any, poke: Callable[[], None]) -> None:
        pokes[server.name] = poke
        watching.set()
        await asyncio.Event().wait()

    poller = CatalogPoller()
    poller.bind(fetch, lambda: [Srv("t")], info, lambda: 3600.0, watch=watch)
    async with poller.subscribed():
        await asyncio.wait_for(watching.wait(), 5)
        for _ in range(3):  # announced again as soon as each re-read is done
            read.clear()
            pokes["t"]()
            await asyncio.wait_for(read.wait(), 5)
        announced = reads[1:]
        assert len(announced) == 3
        assert all(b - a >= 0.3 for a, b in zip(announced, announced[1:], strict=False))
    await poller.close()
