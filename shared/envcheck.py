"""Which `MCPGW_*` variables exist: a typo in one must be reported, never silently ignored."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable

from shared.common_settings import CommonSettings
from shared.envexample import SECTIONS
from shared.settings import describe

# Read by code outside the settings classes: the CLI client, the dev stack, tests.
OTHER = frozenset({
    "MCPGW_URL", "MCPGW_TOKEN", "MCPGW_TIMEOUT", "MCPGW_PDP_URL", "MCPGW_CONFIG", "MCPGW_DEBUG",
    "MCPGW_ADMIN_TOKEN", "MCPGW_OIDC_ISSUER", "MCPGW_OIDC_TOKEN_URL", "MCPGW_OIDC_CLIENT_ID",
    "MCPGW_OIDC_CLIENT_SECRET", "MCPGW_OIDC_USERNAME", "MCPGW_OIDC_PASSWORD", "MCPGW_OIDC_SCOPE",
    "MCPGW_OIDC_AUDIENCE", "MCPGW_REQUIRE_NODE_TOOLS", "MCPGW_DEV_GATEWAY_PORT", "MCPGW_DEV_PDP_PORT",
    "MCPGW_DEV_BACKEND_PORT", "MCPGW_DEV_ISSUER_PORT",
})


def known_variables() -> frozenset[str]:
    """Every MCPGW_* name some part of mcpgw reads."""
    names = {env for env, _, _ in describe(CommonSettings, "MCPGW_")}
    for _title, module_name, class_name, prefix in SECTIONS:
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except ModuleNotFoundError:
            continue
        names |= {env for env, _, _ in describe(cls, prefix)}
    return frozenset(names | OTHER)


def unknown_variables(names: Iterable[str]) -> list[str]:
    """One message per unknown MCPGW_* name, with the closest known name when there is one."""
    known = known_variables()
    out = []
    for name in sorted(set(names)):
        if not name.startswith("MCPGW_") or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        out.append(f"{name}: unknown variable" + (f" (did you mean {close[0]}?)" if close else ""))
    return out
