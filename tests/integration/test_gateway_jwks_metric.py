"""`/metrics` counts JWKS refreshes by outcome (shared/auth/jwks.py hook, gateway registry)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.gateway_harness import gateway_stack


def refreshes(text: str, outcome: str) -> float:
    match = re.search(rf'^mcpgw_gateway_jwks_refreshes_total{{outcome="{outcome}"}} (\S+)$', text, re.M)
    assert match, f"no jwks refresh series for {outcome}"
    return float(match.group(1))


async def test_jwks_refreshes_are_counted_by_outcome(tmp_path: Path, pg_dsn: str) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {}) as stack:
        _, text, _ = await stack.call("GET", "/metrics", subject=None)
        assert refreshes(text, "ok") == 1 and refreshes(text, "error") == 0  # the warm-up fetch

        # A token signed by a key the gateway has not seen forces a refetch; the IdP fails it.
        stack.issuer.rotate()
        stack.issuer.fail_jwks = True
        status, _, _ = await stack.call("GET", "/mcp/servers")
        assert status == 401
        _, text, _ = await stack.call("GET", "/metrics", subject=None)
        assert refreshes(text, "ok") == 1 and refreshes(text, "error") == 1
