"""Files `make run` keeps between starts: the servers file the gateway watches, the CLI's config.

The servers file is created once from a template and afterwards belongs to the user (and to
`mcpgw register-mcp`, whose default is the same file): registrations survive restarts. Only the
demo entry's loopback URL is kept in step with MCPGW_DEV_BACKEND_PORT.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from mcpgw.devstack.users import CLI_CLIENT_ID, CLI_CLIENT_SECRET, DEV_PASSWORD

DEFAULT_SERVERS_FILE = Path("mcp_servers.yaml")
TEMPLATE = """\
# Backends of the gateway that `make run` starts (it watches this file: edits apply while it runs).
# `mcpgw register-mcp NAME URL` adds entries here; see docs/upstream.md for every key.
servers:
  demo:
    url: {url}
    type: http
    timeout: 30
    enabled: true
    description: Demo MCP backend (official SDK), started by make run
    tags: ["demo"]
"""


def servers_path(environ: dict[str, str] | os._Environ[str]) -> Path:
    """MCPGW_GATEWAY_SERVERS_FILE, else ./mcp_servers.yaml: the same default as `register-mcp`."""
    return Path(environ.get("MCPGW_GATEWAY_SERVERS_FILE") or DEFAULT_SERVERS_FILE)


def ensure_servers_file(path: Path, backend_url: str) -> str:
    """Create the file when missing; point an existing loopback demo entry at `backend_url`.

    Returns what happened ("created", "kept", "demo URL updated") for the banner.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TEMPLATE.format(url=backend_url))
        return "created"
    text = path.read_text()
    try:
        demo = ((yaml.safe_load(text) or {}).get("servers") or {}).get("demo") or {}
    except (yaml.YAMLError, AttributeError):
        return "kept"  # preflight has reported what is wrong with it
    url = demo.get("url") if isinstance(demo, dict) else None
    if isinstance(url, str) and url != backend_url and url.startswith("http://127.0.0.1:") and url.endswith("/mcp"):
        from mcpgw.client import servers_file

        entry = {k: v for k, v in demo.items()}
        entry["url"] = backend_url
        new = servers_file.add_entry(text, "demo", entry, replace=True, path=path)
        servers_file.write_atomic(path, new)
        return "demo URL updated"
    return "kept"


def write_cli_config(path: Path, gateway: str, pdp: str, issuer: str) -> None:
    """The `mcpgw` client's config for this stack (MCPGW_CONFIG): URLs and the dev OIDC client."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "url": gateway, "pdp_url": pdp, "issuer": issuer, "client_id": CLI_CLIENT_ID,
        "client_secret": CLI_CLIENT_SECRET, "password": DEV_PASSWORD,
    }
    path.write_text("# Written by `make run` for this stack; `export MCPGW_CONFIG=" + str(path) + "`\n"
                    + yaml.safe_dump(body, sort_keys=False))
    path.chmod(0o600)
