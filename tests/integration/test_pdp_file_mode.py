"""File mode: edits are served, invalid edits are refused (and logged), half-written files never load."""

from __future__ import annotations

import asyncio
import logging
import os
import re

import pytest

from pdp.app import create_app
from pdp.filewatch import Settler
from pdp.state import sha256_text
from shared import authzen
from tests.integration.pdp_helpers import POLICY, eventually, pdp_settings, tool_eval

OPEN = POLICY.replace("default_policy: deny", "default_policy: allow")


def version_of(text: str) -> str:
    return "file:" + sha256_text(text)[:12]


async def answer(client) -> tuple[str, bool]:
    body = await (await client.post(authzen.EVALUATION_PATH, json=tool_eval("nobody", "s", "t"))).json()
    return body["context"]["policy_version"], body["decision"]


async def reloads(client, outcome: str) -> float:
    text = await (await client.get("/metrics")).text()
    found = re.search(rf'^mcpgw_pdp_policy_reloads_total\{{outcome="{outcome}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def file_pdp(tmp_path, aiohttp_client):
    async def start(interval: float = 0.02, settle: float = 0.05):
        settings = pdp_settings(tmp_path, None, policy_source="file", audit_postgres=False,
                                watch_interval=interval, watch_settle=settle)
        return await aiohttp_client(create_app(settings)), settings.policy_path
    return start


async def test_edit_is_served(file_pdp):
    client, path = await file_pdp()
    assert await answer(client) == (version_of(POLICY), False)
    path.write_text(OPEN)

    async def served():
        return await answer(client) == (version_of(OPEN), True)

    await eventually(served)


async def test_invalid_edit_keeps_last_good_policy_and_logs_why(file_pdp, caplog):
    client, path = await file_pdp()
    bad = OPEN.replace("mcp_server:", "mcp_srv:")
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "mcp_srv" in text)
    with caplog.at_level(logging.ERROR, logger="pdp.filewatch"):
        path.write_text(bad)
        await eventually(lambda: _positive(reloads(client, "failed")))
        assert await answer(client) == (version_of(POLICY), False)  # still the last good policy
        why = [r.getMessage() for r in caplog.records if r.name == "pdp.filewatch"]
        assert len(why) == 1 and str(path) in why[0]
        assert f"line {line}: rules[0].condition.mcp_srv: unknown key 'mcp_srv'" in why[0]
        # reported once, not every interval, and a later good edit is picked up again
        await asyncio.sleep(0.2)
        assert len([r for r in caplog.records if r.name == "pdp.filewatch"]) == 1
        path.write_text(OPEN)

        async def served():
            return await answer(client) == (version_of(OPEN), True)

        await eventually(served)
    assert await reloads(client, "failed") == 1


async def test_file_that_is_not_utf8_is_refused_and_watching_goes_on(file_pdp, caplog):
    client, path = await file_pdp()
    with caplog.at_level(logging.ERROR, logger="pdp.filewatch"):
        path.write_bytes(OPEN.encode() + b"# caf\xc3")  # cut inside a two-byte character

        async def logged():
            return any("codec can't decode" in r.getMessage() for r in caplog.records)

        await eventually(logged)
    assert await answer(client) == (version_of(POLICY), False)
    assert await reloads(client, "failed") == 1  # McpgwPolicyReloadFailed sees it
    path.write_text(OPEN)

    async def served():
        return await answer(client) == (version_of(OPEN), True)

    await eventually(served)


async def _positive(value) -> bool:
    return await value > 0


async def test_half_written_file_is_never_served(file_pdp):
    """A slow writer whose every intermediate state is a valid (and different) policy."""
    # Each prefix of FINAL ending at a rule is itself a valid policy with a different meaning.
    rules = "".join(f"  - {{name: r{i}, action: deny, condition: {{mcp_server: s{i}}}}}\n" for i in range(6))
    final = "default_policy: allow\nrules:\n" + rules
    cuts = [m.end() for m in re.finditer("\n", final)][1:]
    client, path = await file_pdp(interval=0.01, settle=0.4)
    seen: set[tuple[str, bool]] = set()
    done = asyncio.Event()

    async def watch_answers():
        while not done.is_set():
            seen.add(await answer(client))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch_answers())
    with path.open("w") as out:  # the same file, written in pieces with pauses, like a slow copy
        previous = 0
        for cut in cuts:
            out.write(final[previous:cut])
            out.flush()
            os.fsync(out.fileno())
            previous = cut
            await asyncio.sleep(0.04)

    async def served():
        return await answer(client) == (version_of(final), True)

    await eventually(served)
    done.set()
    await watcher
    assert seen <= {(version_of(POLICY), False), (version_of(final), True)}
    assert await reloads(client, "ok") == 2  # the start-up load and the finished file, nothing between


@pytest.mark.parametrize(("events", "ready"), [
    ([("a", 0.0)], [False]),                                      # first sight of a change: wait
    ([("a", 0.0), ("a", 0.3)], [False, True]),                    # unchanged for `settle`: load
    ([("a", 0.0), ("b", 0.3), ("b", 0.5)], [False, False, False]),  # changed again: the clock restarts
    ([("a", 0.0), ("b", 0.3), ("b", 0.6)], [False, False, True]),
    ([("L", 0.0), ("L", 9.0)], [False, False]),                   # the loaded state is never reloaded
])
def test_settler(events, ready):
    marks = {name: (1, i, 10) for i, name in enumerate("abL")}
    settler = Settler(marks["L"], settle=0.25)
    assert [settler.ready(marks[name], now) for name, now in events] == ready
