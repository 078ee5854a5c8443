"""gateway/upstream/transports/stdio*: pure parts table-tested; the multiplexer against a real child."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.credentials import CredentialError, CredentialStore
from gateway.masking import secret_forms
from gateway.registry import StdioConfig, parse_server, parse_servers
from gateway.upstream.transports.mux import Unavailable
from gateway.upstream.transports.stdio import StdioServer
from gateway.upstream.transports.stdio_process import (
    StdioLimits,
    backoff,
    child_env,
    drain_stderr,
    env_secrets,
)


def test_stdio_entry_parses_without_url_and_ignores_the_allowlist() -> None:
    raw = {"type": "stdio", "command": "npx", "args": ["-y", "pkg"], "env": {"B": "2", "A": "env://X"}, "cwd": "/tmp"}
    config, errors = parse_server("local", raw, allowlist=["api.example.com"])
    assert errors == [] and config is not None
    assert config.stdio == StdioConfig("npx", ("-y", "pkg"), (("A", "env://X"), ("B", "2")), "/tmp")


@pytest.mark.parametrize(("raw", "problem"), [
    ({"type": "stdio"}, "servers.s.command: required"),
    ({"type": "stdio", "command": "x", "url": "http://h/mcp"}, "servers.s.url: not allowed with type: stdio"),
    ({"type": "stdio", "command": "x", "args": "-v"}, "servers.s.args: must be a list of strings"),
    ({"type": "stdio", "command": "x", "env": {"A": 1}}, "servers.s.env: must map variable names"),
    ({"type": "stdio", "command": "x", "env": {"BAD-NAME": "1"}}, "servers.s.env: must map variable names"),
    ({"type": "stdio", "command": "x", "env": {"A": "env://"}}, "servers.s.env.A: empty reference"),
    ({"type": "stdio", "command": "x", "cwd": 3}, "servers.s.cwd: must be a directory path"),
    ({"type": "stdio", "command": "x", "bogus": 1}, "servers.s.bogus: unknown key"),
    ({"type": "stdio", "command": "x", "auth": {"method": "none"}}, "servers.s.auth: not used with type: stdio"),
    ({"url": "http://h/mcp", "command": "x"}, "servers.s.command: unknown key"),
])
def test_bad_stdio_entries_are_named(raw: dict[str, object], problem: str) -> None:
    _, errors = parse_servers({"servers": {"s": raw}})
    assert any(e.startswith(problem) for e in errors), errors


def test_child_env_is_minimal_plus_named_values(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("from-file\n")
    environ = {"PATH": "/bin", "HOME": "/h", "AWS_SECRET_ACCESS_KEY": "no", "MCPGW_GATEWAY_PDP_TOKEN": "no", "K": "v"}
    config = StdioConfig("x", env=(("A", "env://K"), ("B", f"file://{secret_file}"), ("C", "plain")))
    assert child_env(config, environ) == {"PATH": "/bin", "HOME": "/h", "A": "v", "B": "from-file", "C": "plain"}
    with pytest.raises(CredentialError, match="MISSING"):
        child_env(StdioConfig("x", env=(("A", "env://MISSING"),)), environ)


async def test_stderr_lines_are_logged_with_the_env_secrets_masked(caplog: pytest.LogCaptureFixture) -> None:
    config = StdioConfig("x", env=(("A", "env://K"), ("C", "plain")))
    forms = secret_forms(env_secrets(config, child_env(config, {"K": "s3cret-Env-Value"})))
    stream = asyncio.StreamReader()
    stream.feed_data(b"token s3cret-Env-Value\nTOKEN S3CRET-ENV-VALUE czNjcmV0LUVudi1WYWx1ZQ== plain\n")
    stream.feed_eof()
    caplog.set_level(logging.INFO)
    await drain_stderr(stream, "local", 100.0, forms)
    lines = [r.getMessage() for r in caplog.records if "stderr" in r.getMessage()]
    assert len(lines) == 2 and all("REDACTED" in line for line in lines), lines
    assert "s3cret-e" not in " ".join(lines).lower() and "plain" in lines[1], lines  # a literal value is no secret
    assert "cznjcmv0" not in " ".join(lines).lower(), lines  # base64 too


def test_backoff_is_immediate_once_then_doubles_to_the_cap() -> None:
    assert [backoff(n, 4.0) for n in range(1, 7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]


CHILD = textwrap.dedent("""
    import json, sys
    def send(m): sys.stdout.write(json.dumps(m) + "\\n"); sys.stdout.flush()
    def read(): return json.loads(sys.stdin.readline())
    init = read()
    send({"jsonrpc": "2.0", "id": init["id"], "result": {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "raw", "version": "1"}}})
    assert read()["method"] == "notifications/initialized"
    for i in range(2000):
        sys.stderr.write(f"noise {i}\\n")
    sys.stderr.flush()
    req = read()
    answers = {}
    for n, method in enumerate(["ping", "roots/list", "sampling/createMessage"]):
        send({"jsonrpc": "2.0", "id": f"s{n}", "method": method, "params": {}})
        answer = read()
        answers[method] = answer.get("result", answer.get("error"))
    send({"jsonrpc": "2.0", "id": req["id"], "result": {"echoId": req["id"], "answers": answers}})
    sys.stdin.readline()
""")


STDIO_LOG = "gateway.upstream.transports.stdio_process"


@contextlib.contextmanager
def _logged(text: str) -> Iterator[asyncio.Event]:
    """An event set once the stdio transport logs a line holding `text` (a child's stderr)."""
    seen = asyncio.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if text in record.getMessage():
                seen.set()

    handler = Seen()
    logging.getLogger(STDIO_LOG).addHandler(handler)
    try:
        yield seen
    finally:
        logging.getLogger(STDIO_LOG).removeHandler(handler)


async def test_child_requests_are_answered_and_ids_restored(caplog: pytest.LogCaptureFixture) -> None:
    limits = StdioLimits(stderr_lines_per_second=10.0, stop_grace=2.0)
    server = StdioServer("raw", StdioConfig(sys.executable, ("-c", CHILD)), limits, {"PATH": "/usr/bin"})
    try:
        with caplog.at_level(logging.INFO, logger=STDIO_LOG), _logged("noise") as logged:
            reply = await server.request({"jsonrpc": "2.0", "id": "mine", "method": "probe", "params": {}})
            await asyncio.wait_for(logged.wait(), 5)  # the stderr reader runs beside the request
        assert reply["id"] == "mine"
        result = reply["result"]
        assert result["echoId"] != "mine"  # the child saw a gateway id
        assert result["answers"]["ping"] == {} and result["answers"]["roots/list"] == {"roots": []}
        assert result["answers"]["sampling/createMessage"]["code"] == -32601
    finally:
        await server.close()
    noise = [r for r in caplog.records if "noise" in r.getMessage()]
    assert 0 < len(noise) <= 60  # burst of 5 s worth at 10 lines/s, not 2,000 lines
    with pytest.raises(Unavailable, match="shut down"):
        await server.request({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})


HANGS = textwrap.dedent("""
    import sys
    sys.stdin.readline()  # the initialize: never answered
    sys.stderr.write("initialize read\\n")
    sys.stderr.flush()
    sys.stdin.read()
""")


async def test_a_start_cancelled_mid_initialize_stops_the_child_and_releases_its_secrets(
        caplog: pytest.LogCaptureFixture) -> None:
    """An agent leaving while a stdio server starts cancels the handshake: the child is stopped and
    the secrets it was launched with no longer held (credentials.launched released)."""
    store = CredentialStore(environ={})
    config = StdioConfig(sys.executable, ("-c", HANGS), (("TOK", "env://TOK"),))
    server = StdioServer("hangs", config, StdioLimits(stop_grace=2.0), {"PATH": "/usr/bin", "TOK": "sk-launch-9f2"}, store)
    try:
        with caplog.at_level(logging.INFO, logger=STDIO_LOG), _logged("initialize read") as read:
            start = asyncio.create_task(server.handshake())
            await asyncio.wait_for(read.wait(), 10)
        pid = server.pid
        assert pid is not None and "sk-launch-9f2" in store._env_forms("hangs")
        start.cancel()
        with pytest.raises(asyncio.CancelledError):
            await start
        assert server.pid is None and store._env_forms("hangs") == []
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # stopped and reaped
    finally:
        await server.close()
