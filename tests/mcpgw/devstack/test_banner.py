"""What `make run` prints is true of the stack it started (pure: the banner from its facts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import load_gateway_settings
from mcpgw.devstack import preflight
from mcpgw.devstack.banner import StackInfo, banner


def info(no_auth: bool, leeway: float) -> StackInfo:
    here = Path("/x")
    return StackInfo("http://127.0.0.1:8000", "http://127.0.0.1:8181", "http://127.0.0.1:9001/mcp",
                     "http://127.0.0.1:8900", here, here, "created", here, here, no_auth, "agent", leeway)


def test_temp_users_401_comes_at_expiry_plus_the_gateways_leeway() -> None:
    default = load_gateway_settings(environ={}, dotenv=None, overrides=preflight.PLACEHOLDERS).leeway
    assert preflight.gateway_leeway({}, {}) == default == 30
    text = banner(info(False, default), "tok")
    assert "a minute later" not in text
    assert "the token expires after 60 s; the gateway allows 30 s of clock skew (MCPGW_GATEWAY_LEEWAY), " \
           "so 401 from 90 s on" in text
    assert preflight.gateway_leeway({"MCPGW_GATEWAY_LEEWAY": "0"}, {}) == 0
    assert "the token expires after 60 s: 401 from then on" in banner(info(False, 0), "tok")


@pytest.mark.parametrize("no_auth", [False, True])
def test_admin_api_line_names_a_token_that_the_banner_gives_or_says_how_to_get(no_auth: bool) -> None:
    text = banner(info(no_auth, 30), None if no_auth else "tok")
    admin = next(line for line in text.splitlines() if "admin API" in line)
    if no_auth:
        assert "MCPGW_TOKEN=" not in text.replace(admin, "") and "below" not in admin
        assert "mcpgw token --user alice" in admin
    else:
        assert "the dev token below: role admin" in admin and "export MCPGW_TOKEN=tok" in text
