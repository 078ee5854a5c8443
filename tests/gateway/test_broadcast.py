"""Broadcast: target planning, decision split, concurrent calls with timeouts, response shape."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from gateway import broadcast as b
from gateway.registry import ServerConfig


def S(name: str, **kw: Any) -> ServerConfig:
    return ServerConfig(name, f"http://127.0.0.1:1/{name}", **kw)


SERVERS = {
    s.name: s
    for s in (
        S("a", tags=("logs", "prod"), tools=("search",)),
        S("b", tags=("logs",), tools=("*",)),
        S("c", tags=("crm",)),  # no hint: must be probed
        S("d", enabled=False, tags=("logs",), tools=("search",)),
        S("e", tools=("other",)),
    )
}


@pytest.mark.parametrize(
    ("names", "tags", "targets", "errors", "probe"),
    [
        (["a", "c"], None, ["a", "c"], {}, []),
        (["a", "a", "zz", "d"], None, ["a"], {"zz": "unknown MCP server 'zz'", "d": "MCP server 'd' is disabled"}, []),
        (["c"], ["logs"], ["c"], {}, []),  # names win over tags
        (None, ["logs"], ["a", "b"], {}, []),  # disabled d skipped
        (None, ["crm", "prod"], ["a", "c"], {}, []),
        (None, ["nothing"], [], {}, []),
        (None, None, ["a", "b"], {}, ["c"]),  # hint says yes (a, b "*"), no (e); c unknown
    ],
)
def test_plan_targets(names, tags, targets, errors, probe) -> None:
    plan = b.plan_targets(SERVERS, "search", names, tags)
    assert plan.targets == targets
    assert plan.errors == errors
    assert plan.to_probe == probe


@pytest.mark.parametrize(
    ("listed", "found", "failed"),
    [
        ({"c": ["search", "x"], "f": ["search"]}, ["c", "f"], {}),
        ({"c": ["x"], "f": ["search"]}, ["f"], {}),
        ({"c": RuntimeError("backend unreachable"), "f": ["y"]}, [], {"c": "could not list tools: backend unreachable"}),
        ({"f": ["search"]}, ["f"], {"c": "could not list tools: no answer"}),
        ({"c": TimeoutError(), "f": []}, [], {"c": "could not list tools: TimeoutError"}),
    ],
)
def test_resolve_probes(listed, found, failed) -> None:
    """Probe failures are reported, never silently dropped; order follows the probed list."""
    assert b.resolve_probes(["c", "f"], listed, "search") == (found, failed)


async def test_run_calls_partial_results_on_time() -> None:
    async def call(name: str) -> str:
        if name == "hung":
            await asyncio.sleep(60)
        if name == "slowish":
            await asyncio.sleep(0.5)
        if name == "broken":
            raise RuntimeError("exploded")
        return f"ok {name}"

    start = time.perf_counter()
    results, errors = await b.run_calls(
        ["fast", "hung", "slowish", "broken"], call,
        timeouts={"fast": 5, "hung": 60, "slowish": 0.1, "broken": 5}, deadline=0.3,
    )
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0  # bounded by the deadline, not by the hung call
    assert results == {"fast": "ok fast"}
    assert errors["hung"].startswith("no answer within the broadcast deadline")
    assert errors["slowish"] == "timed out after 0.1s"
    assert errors["broken"] == "exploded"


async def test_run_calls_runs_concurrently() -> None:
    running = 0
    peak = 0

    async def call(name: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        return name

    results, errors = await b.run_calls(list("abcde"), call, timeouts={}, deadline=5)
    assert peak == 5 and errors == {} and sorted(results) == list("abcde")


async def test_run_calls_starts_in_start_order_answers_in_servers_order() -> None:
    started: list[str] = []

    async def call(name: str) -> str:
        started.append(name)  # before any await: the order the tasks were started in
        if name == "b":
            raise RuntimeError("exploded")
        return name

    results, errors = await b.run_calls(list("abcd"), call, timeouts={}, deadline=5, start=list("dbca"))
    assert started == list("dbca")
    assert list(results) == ["a", "c", "d"] and errors == {"b": "exploded"}


@pytest.mark.parametrize(
    "observed, servers, first",
    [
        ([], ["a", "b", "c"], ["a", "b", "c"]),  # nothing known: as given
        ([("a", 0.01), ("b", 0.1), ("c", 0.05)], ["a", "b", "c"], ["b", "c", "a"]),
        ([("a", 0.01), ("c", 0.05)], ["a", "b", "c"], ["b", "c", "a"]),  # never called: first (maybe slow)
        ([("a", 0.01), ("b", 0.01)], ["b", "a"], ["b", "a"]),  # ties keep their order
        # A fast backend that turns slow moves ahead within a few calls (moving average, not history).
        ([("a", 0.01), ("b", 0.05), ("a", 0.2), ("a", 0.2), ("a", 0.2)], ["a", "b"], ["a", "b"]),
        ([("a", 0.01), ("b", 0.05), ("a", 0.1)], ["a", "b"], ["b", "a"]),  # one slow call is not yet a trend
    ],
)
def test_expected_latency_slowest_first(observed, servers, first) -> None:
    expected = b.ExpectedLatency()
    for server, seconds in observed:
        expected.observe(server, seconds)
    assert expected.slowest_first(servers) == first


async def test_run_calls_empty() -> None:
    assert await b.run_calls([], lambda n: asyncio.sleep(0), timeouts={}, deadline=1) == ({}, {})


def test_broadcast_response_shape_and_order() -> None:
    body = b.broadcast_response("search", ["b", "a", "c"], {"a": {"x": 1}, "b": 2}, {"c": "denied: no"}, time.perf_counter())
    assert list(body) == ["tool_name", "total_servers", "successful", "failed", "execution_time_ms", "results", "errors"]
    assert (body["total_servers"], body["successful"], body["failed"]) == (3, 2, 1)
    assert list(body["results"]) == ["b", "a"]
    assert body["errors"] == {"c": "denied: no"}
    assert body["execution_time_ms"] >= 0


def test_broadcast_response_counts_tool_errors_as_failed() -> None:
    results = {"a": {"content": [], "isError": True}, "b": {"content": [], "isError": False}}
    body = b.broadcast_response("t", ["a", "b", "c"], results, {"c": "timed out"}, time.perf_counter())
    assert (body["successful"], body["failed"]) == (1, 2) and set(body["results"]) == {"a", "b"}
