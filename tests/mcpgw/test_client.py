"""Pure parts of the client CLI: config layering, params, error messages, tables, rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpgw.client import fanout, health, output, reads
from mcpgw.client.config import DEFAULT_URL, resolve
from mcpgw.client.errors import EXIT_FAILED, EXIT_USAGE, UsageError, explain_http_error
from mcpgw.client.token import grant_form


def test_config_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("url: http://file:1\ntoken: file-token\ntimeout: 5\n")
    env = {"MCPGW_URL": "http://env:2", "HOME": str(tmp_path)}
    got = resolve({"url": None, "token": None}, env, str(cfg_file))
    assert (got.url, got.token.get(), got.timeout) == ("http://env:2", "file-token", 5.0)
    got = resolve({"url": "http://flag:3/", "token": "flag-token"}, env, str(cfg_file))
    assert (got.url, got.token.get()) == ("http://flag:3", "flag-token")
    assert "flag-token" not in repr(got)


def test_config_defaults_and_missing_default_file(tmp_path: Path) -> None:
    got = resolve({}, {"HOME": str(tmp_path)})
    assert got.url == DEFAULT_URL and got.token is None


def test_default_config_file_under_xdg(tmp_path: Path) -> None:
    (tmp_path / "mcpgw").mkdir()
    (tmp_path / "mcpgw" / "config.yaml").write_text("url: http://xdg:9\n")
    assert resolve({}, {"XDG_CONFIG_HOME": str(tmp_path)}).url == "http://xdg:9"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("urll: http://x\n", "unknown setting"),
        ("- a\n", "mapping"),
        ("url: [\n", "config file"),
        ("timeout: soon\n", "timeout must be a number"),
        ("timeout: 0\n", "greater than 0"),
    ],
)
def test_config_errors_are_usage_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(UsageError, match=message) as info:
        resolve({}, {}, str(path))
    assert info.value.exit_code == EXIT_USAGE


def test_named_config_must_exist(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        resolve({}, {"MCPGW_CONFIG": str(tmp_path / "nope.yaml")})


@pytest.mark.parametrize(
    ("params", "expected"),
    [(None, {}), ('{"a": 1}', {"a": 1}), ("{}", {})],
)
def test_parse_params_ok(params: str | None, expected: dict) -> None:
    assert reads.parse_params(params, None) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [("{bad", "not valid JSON"), ("[1, 2]", "must be a JSON object"), ('"s"', "must be a JSON object")],
)
def test_parse_params_errors(params: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        reads.parse_params(params, None)


def test_params_file_and_both(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text('{"x": [1]}')
    assert reads.parse_params(None, str(f)) == {"x": [1]}
    with pytest.raises(UsageError, match="either"):
        reads.parse_params("{}", str(f))
    with pytest.raises(UsageError, match="cannot read"):
        reads.parse_params(None, str(tmp_path / "missing.json"))


@pytest.mark.parametrize(
    ("status", "body", "needle"),
    [
        (401, {"error": {"code": "unauthorized", "message": "token expired"}}, "missing or expired"),
        (403, {"error": {"code": "forbidden", "message": "rule 3 denies delete_records"}}, "denied by policy: rule 3 denies"),
        (404, {"error": {"code": "not_found", "message": "unknown MCP server 'x'"}}, "unknown MCP server 'x'"),
        (503, {"error": {"code": "pdp_unavailable", "message": "PDP down"}}, "fails closed"),
        (502, {"error": {"code": "upstream_error", "message": "boom"}}, "502 upstream_error: boom"),
        (500, "plain text", "500 error: plain text"),
    ],
)
def test_http_errors_say_what_to_do(status: int, body: object, needle: str) -> None:
    err = explain_http_error(status, body, "http://gw/x")
    assert needle in err.message
    assert err.exit_code == EXIT_FAILED


def test_403_includes_statement_when_given() -> None:
    body = {"error": {"code": "forbidden", "message": "no", "statement": {"kind": "rule", "line": 7}, "decision_id": "d1"}}
    assert "statement: kind=rule, line=7; decision_id: d1" in explain_http_error(403, body, "u").message


def test_table_aligns_columns() -> None:
    text = output.table(["A", "LONGER"], [["xxxx", 1], ["y", None], ["z", ["t1", "t2"]]])
    assert text.splitlines() == ["A     LONGER", "xxxx  1", "y     -", "z     t1,t2"]


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ({"content": [{"type": "text", "text": "hi"}, {"type": "image"}]}, "hi\n[image]"),
        ({"content": [], "structuredContent": {"a": 1}}, '{\n  "a": 1\n}'),
        ("raw", '"raw"'),
    ],
)
def test_content_text(result: object, text: str) -> None:
    assert output.content_text(result) == text


def test_server_rows_accepts_list_or_mapping() -> None:
    assert reads.server_rows({"servers": [{"name": "a"}], "count": 1}) == [{"name": "a"}]
    assert reads.server_rows({"servers": {"b": {"url": "u"}}}) == [{"name": "b", "url": "u"}]


def test_render_summary_and_full() -> None:
    body = {
        "tool_name": "echo", "total_servers": 2, "successful": 1, "failed": 1, "execution_time_ms": 3.2,
        "results": {"a": {"content": [{"type": "text", "text": "hi"}]}}, "errors": {"b": "denied: nope"},
    }
    summary = fanout.render(body, "summary")
    assert summary.splitlines()[0] == "echo: 1/2 servers succeeded, 1 failed (3.2 ms)"
    assert "a       ok      hi" in summary and "b       failed  denied: nope" in summary
    full = fanout.render(body, "full")
    assert "== a (ok)\nhi" in full and "== b (failed)\ndenied: nope" in full


def test_full_format_shows_every_content_item() -> None:
    result = {"content": [{"type": "text", "text": "hi"}, {"type": "image", "mimeType": "image/png", "data": "QUJD"},
                          {"type": "resource", "resource": {"uri": "file:///a.txt", "mimeType": "text/plain", "text": "A"}},
                          {"type": "resource_link", "uri": "file:///b", "name": "b"}],
              "structuredContent": {"n": 1}}
    body = {"tool_name": "t", "total_servers": 1, "successful": 1, "failed": 0, "results": {"s": result}}
    full = fanout.render(body, "full")
    assert "hi\n[image image/png, 4 base64 characters]\n[resource file:///a.txt text/plain]\nA" in full
    assert "[link file:///b b]" in full and 'structured content:\n{\n  "n": 1\n}' in full


def test_split_list() -> None:
    assert fanout.split_list(" a, b,,a ") == ["a", "b"]
    assert fanout.split_list(None) == []


def test_gateway_health_lines() -> None:
    checks = health.gateway_checks(
        {"status": "healthy", "servers": 2, "auth_enabled": False, "audit_database": "spooling", "servers_file_error": True},
        1.0, "http://gw",
    )
    assert [(c.component, c.status) for c in checks] == [("gateway", "ok"), ("servers file", "fail"), ("database", "fail")]
    assert "AUTH OFF" in checks[0].detail


class _Cfg(dict):
    def get(self, key, default=None):  # noqa: D401 - dict-like config stand-in
        return super().get(key, default)


def test_grant_forms() -> None:
    from shared.settings import Secret

    cc = grant_form(_Cfg(client_id="cli", client_secret=Secret("s3"), scope="openid"))
    assert cc == {"client_id": "cli", "client_secret": "s3", "grant_type": "client_credentials", "scope": "openid"}
    pw = grant_form(_Cfg(client_id="cli", username="ann", password=Secret("pw")))
    assert pw["grant_type"] == "password" and pw["username"] == "ann" and pw["password"] == "pw"
    with pytest.raises(UsageError, match="client secret"):
        grant_form(_Cfg(client_id="cli"))
    with pytest.raises(UsageError, match="--client-id"):
        grant_form(_Cfg())
    with pytest.raises(UsageError, match="--password"):
        grant_form(_Cfg(client_id="c", username="ann"))


def test_progress_block_redraws_in_place() -> None:
    import io

    from mcpgw.client.progress import FAILED, OK, Progress

    out = io.StringIO()
    p = Progress(out, "echo", ["a", "bb"])
    p.draw()
    p.update("bb", FAILED, "denied: no")
    p.update("a", OK, "3 ms")
    assert p.lines() == ["echo: 2/2 answered, 1 failed, 0 pending", "  ✓ a   ok  3 ms", "  ✗ bb  failed  denied: no"]
    # Each redraw after the first moves the cursor up over the 3 lines it drew before.
    assert out.getvalue().count("\x1b[3F") == 2


@pytest.mark.parametrize(
    ("raw", "message"),
    [("abc\ndef", "whitespace or a control character"), ("ab c", "whitespace"), ("abc\u2019", "non-ASCII")],
)
def test_token_that_cannot_be_a_header_is_a_usage_error_without_its_value(raw: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        _ = resolve({"token": raw}, {"HOME": "/nonexistent"}).token
    assert raw not in info.value.message and info.value.exit_code == EXIT_USAGE


def test_token_is_trimmed_and_bearer_prefix_dropped() -> None:
    env = {"HOME": "/nonexistent"}
    assert resolve({"token": " eyJ.a.b\n"}, env).token.get() == "eyJ.a.b"
    assert resolve({"token": "Bearer eyJ.a.b"}, env).token.get() == "eyJ.a.b"
    assert resolve({"token": "  "}, env).token is None


def test_broadcast_exit_status_counts_tool_errors() -> None:
    ok = {"successful": 2, "failed": 0, "results": {"a": {"content": []}, "b": {"isError": False}}}
    assert fanout.all_succeeded(ok)
    assert not fanout.all_succeeded({**ok, "results": {"a": {"isError": True}, "b": {}}})
    assert not fanout.all_succeeded({"successful": 0, "failed": 0, "results": {}})
    assert not fanout.all_succeeded({**ok, "failed": 1})
    head = fanout.render({"tool_name": "t", "successful": 0, "total_servers": 1, "failed": 1,
                          "results": {"a": {"isError": True, "content": [{"type": "text", "text": "boom"}]}}}, "summary")
    assert "0/1 servers succeeded, 1 failed (1 of them with a tool error)" in head and head.splitlines()[-1].split() == ["a", "error", "boom"]


def test_health_pdp_line_from_gateway_readiness() -> None:
    line, others = health.readiness_checks({"status": "ready", "problems": []})
    assert line is not None and (line.status, others) == ("ok", [])
    line, others = health.readiness_checks(
        {"status": "not_ready", "problems": ["PDP unreachable (ClientConnectorError)", "signing keys unavailable"]}
    )
    assert line is not None and line.status == "fail" and "PDP unreachable" in line.detail
    assert others == ["signing keys unavailable"]
    assert health.readiness_checks(None) == (None, [])  # an older gateway without /readyz


def test_health_mentions_backends_the_token_cannot_see() -> None:
    assert health.backend_summary(3, [{"name": "a"}, {"name": "b"}, {"name": "c"}]) is None
    line = health.backend_summary(3, [{"name": "a"}])
    assert line is not None and (line.component, line.status) == ("backends", "skip") and "2 of 3" in line.detail


def test_unexpected_error_is_one_masked_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from mcpgw.cli import unexpected

    monkeypatch.delenv("MCPGW_DEBUG", raising=False)
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlc2ln"
    assert unexpected(ValueError(f"bad header Authorization: Bearer {jwt}")) == EXIT_FAILED
    err = capsys.readouterr().err
    assert jwt not in err and err.startswith("mcpgw: error: unexpected ValueError") and "Traceback" not in err


def _command(path: str):  # noqa: ANN202 - argparse parser
    import argparse

    from mcpgw.cli import build_parser

    parser = build_parser()
    for word in path.split():
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


ALL_COMMANDS = [
    "serve", "gateway serve", "pdp serve", "register-mcp", "unregister-mcp", "list-servers", "list-tools", "invoke",
    "invoke-broadcast", "token", "health", "policy validate", "policy compile", "policy test", "policy explain",
    "policy push", "policy history", "audit tail", "audit query",
]


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_every_command_exists_with_help(command: str) -> None:
    assert _command(command).format_help().startswith(f"usage: mcpgw {command}")


@pytest.mark.parametrize(
    "command",
    ["list-servers", "list-tools", "invoke", "invoke-broadcast", "health", "policy history", "audit tail", "audit query"],
)
def test_every_read_command_takes_json(command: str) -> None:
    assert "--json" in _command(command).format_help()


def test_serve_flags_named_in_the_issue() -> None:
    gateway = _command("gateway serve").format_help()
    for flag in ("--host", "--port", "--servers", "--pdp-url", "--issuer", "--jwks-url", "--audience", "--no-auth"):
        assert flag in gateway and flag in _command("serve").format_help(), flag
    for flag in ("--host", "--port", "--policy"):
        assert flag in _command("pdp serve").format_help(), flag


@pytest.mark.parametrize(
    ("status", "needle"),
    [(0, "mcpgw pdp serve"), (401, "MCPGW_ADMIN_TOKEN"), (403, "admin role"), (409, "file mode")],
)
def test_policy_remote_errors_say_what_to_do(status: int, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    from pdp.cli_policy import _print_error

    _print_error(status, {"error": {"code": "x", "message": "the PDP runs in file mode"}})
    assert needle in capsys.readouterr().err


def test_bad_token_in_env_does_not_block_getting_a_new_one() -> None:
    cfg = resolve({"client_id": "cli"}, {"HOME": "/nonexistent", "MCPGW_TOKEN": "stale\ntoken"})
    assert cfg.get("client_id") == "cli"  # `mcpgw token` resolves fine; only a use of the token fails
    with pytest.raises(UsageError, match="control character"):
        _ = cfg.token


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://h/", "http://", "http://[bad"])
def test_gateway_url_without_scheme_or_host_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError, match="must look like http://HOST:PORT"):
        _ = resolve({"url": url}, {"HOME": "/nonexistent"}).url
