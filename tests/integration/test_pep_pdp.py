"""PolicyClient against the real PDP app (file mode, no database) on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from gateway.pep import PolicyClient
from pdp.app import create_app
from shared.auth import Principal
from shared.authzen import server_resource, tool_resource
from tests.integration.pdp_helpers import eventually, pdp_settings

ANALYST = Principal("ann@example.com", roles=("analyst",))
DEV_BY_GROUP = Principal("bob@example.com", groups=("/engineering",))


@pytest.fixture
async def pep(tmp_path: Path, aiohttp_server) -> AsyncIterator[PolicyClient]:  # type: ignore[no-untyped-def]
    settings = pdp_settings(
        tmp_path, None, policy_source="file", audit_postgres=False, watch_interval=0.05
    )
    server = await aiohttp_server(create_app(settings))
    async with aiohttp.ClientSession() as session:
        yield PolicyClient(
            session, str(server.make_url("")), registry=CollectorRegistry(), cache_ttl=60
        )


async def test_decisions_from_the_real_pdp(pep: PolicyClient) -> None:
    allowed = await pep.check(ANALYST, "invoke_tool", tool_resource("any", "read_only_tool"))
    denied = await pep.check(ANALYST, "invoke_tool", tool_resource("any", "write_tool"))
    assert allowed.allowed and not denied.allowed
    assert allowed.policy_version and allowed.policy_version == denied.policy_version
    assert denied.reason  # a safe reason the gateway can show
    by_group = await pep.check(DEV_BY_GROUP, "invoke_tool", tool_resource("dev-server", "x"))
    assert by_group.allowed


async def test_batch_search_and_servers(pep: PolicyClient) -> None:
    decisions = await pep.check_many(
        ANALYST,
        [("list_tools", server_resource("a")), ("invoke_tool", tool_resource("a", "write"))],
    )
    assert [d.allowed for d in decisions] == [True, False]
    pairs = [("a", "read_only_tool"), ("a", "write"), ("b", "read_only_tool")]
    assert await pep.filter_tools(ANALYST, pairs) == {
        ("a", "read_only_tool"),
        ("b", "read_only_tool"),
    }
    nobody = await pep.check_many(Principal("nobody"), [("list_servers", server_resource(n)) for n in ("a", "b")])
    assert not any(d.allowed for d in nobody)


async def test_policy_change_flushes_the_cache(pep: PolicyClient, tmp_path: Path) -> None:
    res = tool_resource("any", "read_only_tool")
    assert (await pep.check(ANALYST, "invoke_tool", res)).allowed
    first_version = pep.cache.policy_version
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy.read_text().replace('"mcp:*:read_only_tool"', '"mcp:*:other_tool"'))

    probes = iter(range(1_000_000))

    async def new_version_seen() -> bool:
        # Any fresh answer (an uncached check on a new server name) carries the PDP's version.
        await pep.check(Principal("probe"), "list_servers", server_resource(f"probe{next(probes)}"))
        return pep.cache.policy_version != first_version

    await eventually(new_version_seen)
    assert not (await pep.check(ANALYST, "invoke_tool", res)).allowed


async def test_lists_longer_than_the_pdps_batch_limit_are_asked_in_chunks(tmp_path: Path, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    # The PDP refuses more than max_batch items per request (a deny for all); the client sends at most that.
    settings = pdp_settings(tmp_path, None, policy_source="file", audit_postgres=False, max_batch=3)
    server = await aiohttp_server(create_app(settings))
    async with aiohttp.ClientSession() as session:
        pep = PolicyClient(session, str(server.make_url("")), registry=CollectorRegistry(), max_batch=3)
        pairs = [(f"s{i}", tool) for i in range(4) for tool in ("read_only_tool", "write")]
        assert await pep.filter_tools(ANALYST, pairs) == {(f"s{i}", "read_only_tool") for i in range(4)}
        decisions = await pep.check_many(ANALYST, [("invoke_tool", tool_resource(s, t)) for s, t in pairs])
        assert [d.allowed for d in decisions] == [t == "read_only_tool" for _, t in pairs]
