"""The official MCP conformance suite: our SDK backend directly, then through the gateway.

Rule: every scenario that passes directly must pass through `/servers/{name}/mcp`. Through the
aggregated `/mcp` the suite's tool, prompt and resource names are renamed by design
(`{server}__{tool}`), so there only the scenarios listed in `expected_aggregated.yaml` as passing
are required to pass — the rest are the baseline of expected failures (and a scenario on it that
starts passing is reported, so the baseline stays honest).
"""
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from tests.conformance import runner
from tests.integration.gateway_harness import Stack, gateway_stack

# `make test` sets MCPGW_REQUIRE_NODE_TOOLS=1: in CI a missing suite is a failure, never a skip.
pytestmark = pytest.mark.skipif(not runner.installed() and not runner.REQUIRED,
                                reason="Node tools missing: run `make tools`")
BASELINE = yaml.safe_load((Path(__file__).parent / "expected_aggregated.yaml").read_text())
# The gateway in dev mode: the suite cannot send a token. Policy still runs (the dev subject has
# the admin role), so every message takes the same path as an authenticated one.
POLICY = """
roles:
  admin:
    permissions:
      - resource: "*"
        actions: ["*"]
user_roles:
  dev: [admin]
default_policy: deny
"""


@pytest.fixture(scope="module")
def backend_url() -> Iterator[str]:
    with runner.conformance_backend() as url:
        yield url


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, backend_url: str) -> AsyncIterator[Stack]:
    async with gateway_stack(
        tmp_path, pg_dsn, {"conf": {"url": backend_url, "timeout": 30}}, policy=POLICY,
        env={"MCPGW_GATEWAY_NO_AUTH": "true", "MCPGW_GATEWAY_DEV_ROLES": "admin"},
    ) as s:
        yield s


async def test_direct_and_through_gateway(stack: Stack, backend_url: str, tmp_path: Path) -> None:
    assert runner.installed(), "Node tools missing: run `make tools`"
    direct, direct_out = await runner.run_suite(backend_url)
    passing = {name for name, o in direct.items() if o.ok}
    assert len(passing) >= 25, direct_out  # the backend implements the suite's features

    out_dir = tmp_path / "through"
    through, through_out = await runner.run_suite(stack.url + "/servers/conf/mcp", output_dir=out_dir)
    # No retry: a scenario lost through the gateway is a gateway (or backend) bug to find, not noise.
    lost = sorted(name for name in passing if not (name in through and through[name].ok))
    details = runner.failure_details(out_dir, set(lost))
    assert not lost, f"pass directly but fail through /servers/conf/mcp: {lost}\n{details}\n{through_out}"

    aggregated, agg_out = await runner.run_suite(stack.url + "/mcp")
    required = set(BASELINE["must_pass"])
    broken = sorted(n for n in required if not (n in aggregated and aggregated[n].ok))
    assert not broken, f"fail through /mcp: {broken}\n{agg_out}"
    newly = sorted(n for n, o in aggregated.items() if o.ok and n not in required)
    assert not newly, f"now passing through /mcp; move them to must_pass in the baseline: {newly}"
