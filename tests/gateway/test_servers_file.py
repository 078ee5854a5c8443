"""The servers file (gateway/servers_file.py): the documented file loads unchanged; every error names
server and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.servers_file import RegistryError, load_servers_file, parse_servers
from gateway.upstream.guard import host_allowed
from tests.fixtures.servers_files import SALESFORCE_PROD

SAMPLE = "servers:\n" + SALESFORCE_PROD


def test_sample_loads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "mcp_servers.yaml"
    path.write_text(SAMPLE)
    servers = load_servers_file(path)
    s = servers["salesforce-prod"]
    assert (s.url, s.type, s.timeout, s.enabled, s.tags) == ("https://mcp.salesforce.example.com", "http", 60, True, ("crm",))
    assert (s.auth.method, s.auth.location, s.auth.name, s.auth.format) == ("api_key", "header", "X-API-Key", "raw")
    assert s.auth.credential_ref == "env://SALESFORCE_API_KEY"


def test_example_file_in_deploy_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    servers = load_servers_file(root / "deploy" / "examples" / "mcp_servers.yaml")
    assert servers, "the example file should declare servers"


def _one(server: dict) -> list[str]:
    return parse_servers({"servers": {"srv": server}})[1]


BASE = {"url": "http://127.0.0.1:9000/mcp"}

ERROR_CASES = [
    ("unknown server key", {**BASE, "colour": "red"}, "servers.srv.colour: unknown key"),
    ("missing url", {}, "servers.srv.url: required"),
    ("ftp url", {"url": "ftp://x/mcp"}, "servers.srv.url: must be an http:// or https:// URL"),
    ("file url", {"url": "file:///etc/passwd"}, "servers.srv.url: must be an http:// or https:// URL"),
    ("url with userinfo", {"url": "http://u:p@h/mcp"}, "servers.srv.url: must not embed credentials"),
    ("bad type", {**BASE, "type": "websocket"}, "servers.srv.type: must be one of"),
    ("zero timeout", {**BASE, "timeout": 0}, "servers.srv.timeout:"),
    ("string timeout", {**BASE, "timeout": "60"}, "servers.srv.timeout:"),
    ("enabled not bool", {**BASE, "enabled": "yes"}, "servers.srv.enabled: must be true or false"),
    ("tags not list", {**BASE, "tags": "crm"}, "servers.srv.tags: must be a list of strings"),
    ("tools not strings", {**BASE, "tools": [1]}, "servers.srv.tools: must be a list of strings"),
    ("metadata not mapping", {**BASE, "metadata": [1]}, "servers.srv.metadata: must be a mapping"),
    ("auth not mapping", {**BASE, "auth": "x"}, "servers.srv.auth: must be a mapping"),
    ("unknown auth key", {**BASE, "auth": {"method": "none", "color": 1}}, "servers.srv.auth.color: unknown key"),
    ("bad method", {**BASE, "auth": {"method": "magic"}}, "servers.srv.auth.method: must be one of"),
    ("bad location", {**BASE, "auth": {"method": "api_key", "location": "cookie", "credential_ref": "env://K"}},
     "servers.srv.auth.location: must be one of"),
    ("bad format", {**BASE, "auth": {"method": "api_key", "format": "xml", "credential_ref": "env://K"}},
     "servers.srv.auth.format: must be one of"),
    ("template without placeholder",
     {**BASE, "auth": {"method": "api_key", "format": "template", "template": "Tok", "credential_ref": "env://K"}},
     "servers.srv.auth.template: must contain {credential}"),
    ("custom needs name", {**BASE, "auth": {"method": "custom", "credential_ref": "env://K"}},
     "servers.srv.auth.name: required for method custom"),
    ("transport header", {**BASE, "auth": {"method": "custom", "name": "Host", "credential_ref": "env://K"}},
     "servers.srv.auth.name: Host is a transport header"),
    ("missing ref", {**BASE, "auth": {"method": "bearer"}}, "servers.srv.auth.credential_ref: must be a reference"),
    ("vault ref", {**BASE, "auth": {"method": "bearer", "credential_ref": "vault://secret/x"}},
     "servers.srv.auth.credential_ref: unsupported scheme vault://"),
    ("relative file ref", {**BASE, "auth": {"method": "bearer", "credential_ref": "file://rel/x"}},
     "servers.srv.auth.credential_ref: file:// needs a absolute path"),
    ("oauth2 without token_url", {**BASE, "auth": {"method": "oauth2", "client_id": "c", "client_secret_ref": "env://S"}},
     "servers.srv.auth.token_url: required for oauth2"),
    ("oauth2 without client_id",
     {**BASE, "auth": {"method": "oauth2", "token_url": "http://t/token", "client_secret_ref": "env://S"}},
     "servers.srv.auth.client_id: required for oauth2"),
    ("oauth2 field on bearer", {**BASE, "auth": {"method": "bearer", "credential_ref": "env://K", "scope": "a"}},
     "servers.srv.auth.scope: only valid with method oauth2"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "server", "expected"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_validation_error_names_server_and_field(name: str, server: dict, expected: str) -> None:
    errors = _one(server)
    assert any(e.startswith(expected) for e in errors), errors


@pytest.mark.parametrize("name", ["UPPER", "-lead", "has space", "a" * 53, "sl/ash", "", "my.bank", "name\n"])
def test_bad_server_names(name: str) -> None:
    servers, errors = parse_servers({"servers": {name: BASE}})
    assert not servers
    assert errors == [f"servers.{name}: invalid server name (1-52 of a-z 0-9 _ -, starting with a letter or digit)"]


@pytest.mark.parametrize(("name", "why"), [
    ("team__ops", "contains '__'"),  # `team__ops`+`deploy` would be listed as `team`+`ops__deploy`
    ("team_", "ends with '_'"),  # `team_`+`_x` as `team`+`__x`
])  # fmt: skip
def test_server_names_that_would_make_public_names_ambiguous_are_refused(name: str, why: str) -> None:
    servers, errors = parse_servers({"servers": {name: BASE}})
    assert not servers
    assert len(errors) == 1 and errors[0].startswith(f"servers.{name}: invalid server name: {why}"), errors


def test_an_ambiguous_server_name_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "mcp_servers.yaml"
    path.write_text("servers:\n  team:\n    url: http://127.0.0.1:9000/mcp\n  team__ops:\n    url: http://127.0.0.1:9001/mcp\n")
    with pytest.raises(RegistryError) as caught:
        load_servers_file(path)
    assert caught.value.errors == [f"{path}:4: servers.team__ops: invalid server name: contains '__', the separator "
                                   "of public names `{server}__{tool}`"]


def test_the_longest_server_name_is_accepted() -> None:
    servers, errors = parse_servers({"servers": {"a" * 52: BASE, "a-b_c-1": BASE}})
    assert not errors and len(servers) == 2


def test_all_errors_reported_together() -> None:
    _, errors = parse_servers(
        {"servers": {"a": {"url": "ftp://x"}, "b": {**BASE, "timeout": -1}, "ok": BASE}, "extra": 1}
    )
    assert len(errors) == 3
    assert "extra: unknown top-level key" in errors


def test_defaults() -> None:
    servers, errors = parse_servers({"servers": {"x": BASE}})
    assert errors == []
    s = servers["x"]
    assert (s.type, s.timeout, s.enabled, s.auth.method) == ("http", 30.0, True, "none")


@pytest.mark.parametrize(
    ("method", "name", "fmt", "prefix"),
    [("bearer", "Authorization", "prefix", "Bearer "), ("basic", "Authorization", "prefix", "Basic "),
     ("api_key", "X-API-Key", "raw", "")],
)  # fmt: skip
def test_auth_defaults(method: str, name: str, fmt: str, prefix: str) -> None:
    servers, errors = parse_servers({"servers": {"x": {**BASE, "auth": {"method": method, "credential_ref": "env://K"}}}})
    assert errors == []
    auth = servers["x"].auth
    assert (auth.name, auth.format, auth.prefix) == (name, fmt, prefix)


@pytest.mark.parametrize(
    ("host", "allow", "ok"),
    [
        ("169.254.169.254", ["10.0.0.0/8", "mcp.example.com"], False),
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("mcp.example.com", ["mcp.example.com"], True),
        ("evil.example.com", ["mcp.example.com"], False),
        ("a.internal.example", ["*.internal.example"], True),
        ("internal.example", ["*.internal.example"], False),
        ("::1", ["::1/128"], True),
        ("127.0.0.1", ["localhost"], False),
    ],
)
def test_host_allowlist(host: str, allow: list[str], ok: bool) -> None:
    assert host_allowed(host, allow) is ok


def test_allowlist_blocks_metadata_address() -> None:
    data = {"servers": {"meta": {"url": "http://169.254.169.254/latest"}, "ok": {"url": "http://10.0.0.5/mcp"}}}
    servers, errors = parse_servers(data, ["10.0.0.0/8"])
    assert errors == ["servers.meta.url: host '169.254.169.254' is not in the upstream host allowlist"]
    assert list(servers) == ["ok"]


def test_allowlist_applies_to_oauth2_token_url() -> None:
    auth = {"method": "oauth2", "token_url": "http://169.254.169.254/token", "client_id": "c",
            "client_secret_ref": "env://S"}  # fmt: skip
    data = {"servers": {"crm": {"url": "http://10.0.0.5/mcp", "auth": auth}}}
    servers, errors = parse_servers(data, ["10.0.0.0/8"])
    assert errors == ["servers.crm.auth.token_url: host '169.254.169.254' is not in the upstream host allowlist"]
    assert parse_servers(data)[1] == []  # no allowlist: any http(s) token URL
