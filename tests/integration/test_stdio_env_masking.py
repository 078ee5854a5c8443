"""A stdio server's environment secrets are masked like a backend's credential (gateway/credentials.py
`forms`, gateway/masking.py): the real SDK server (tests/fixtures/stdio_server.py), launched by the
gateway with `env:` references, says its secret back in a protocol error, a tool error and a
successful result, and on stderr; no agent answer, audit row or log line shows it, on any entry point.
"""
# ruff: noqa: F811

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from gateway.keys import SERVERS
from shared.redact import REDACTED
from tests.integration.gateway_harness import gateway_stack
from tests.integration.test_call_outcomes import ENTRIES, call_via, row_of
from tests.integration.test_stdio_backends import FIXTURE

SECRET = "stdio-S3cr3t-9vQx2LmZ"  # in the gateway's environment, given to the child by reference
FILE_SECRET = "file-K7pW4nRt-secret"  # in a file, given by reference too
NEEDLES = ("stdio-s3", "s3cr3t-9", "file-k7p", "k7pw4nrt", "c3rkaw8t", "zmlszs1l")  # cut short, any case, base64


@pytest.mark.parametrize("entry", ENTRIES)
async def test_a_stdio_servers_env_secret_is_masked_wherever_it_says_it(
        tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        entry: str) -> None:
    monkeypatch.setenv("MCPGW_TEST_STDIO_SECRET", SECRET)
    (tmp_path / "secret").write_text(FILE_SECRET)
    env = {"API_TOKEN": "env://MCPGW_TEST_STDIO_SECRET", "FILE_TOKEN": f"file://{tmp_path / 'secret'}",
           "PLAIN": "not-a-secret-value"}
    servers = {name: {**FIXTURE, "env": env} for name in ("local", "other")}
    caplog.set_level(logging.DEBUG)
    said: list[str] = []
    rows: list[str] = []
    async with gateway_stack(tmp_path, pg_dsn, servers) as stack:
        for variable in ("API_TOKEN", "FILE_TOKEN", "PLAIN"):
            for how in ("rpc", "tool", "ok"):
                rid = uuid.uuid4().hex
                answer: Any = await call_via(stack, entry, "leak_env", {"name": variable, "how": how},
                                             ("local", "other"), rid)
                said.append(json.dumps(answer))
                rows.append(json.dumps({k: str(v) for k, v in dict(await row_of(stack, pg_dsn, rid)).items()}))
    assert any("not-a-secret-value" in s for s in said), said  # a literal value is no secret: said as it is
    assert any("debug: PLAIN=not-a-secret-value" in r.getMessage() for r in caplog.records)  # stderr is logged
    assert any("fine" in s for s in said) and any("-32000" in s or "refused" in s for s in said), said
    assert sum(REDACTED in s for s in said) >= 6, said  # each secret, in each way it was said
    for needle in NEEDLES:
        for text in (*said, *rows, caplog.text):
            assert needle not in text.lower(), (needle, text)


async def test_a_running_childs_launch_secret_stays_masked_after_rotations(tmp_path: Path, pg_dsn: str) -> None:
    """The child holds the value it was started with, however often the file rotated since."""
    secret = tmp_path / "secret"
    secret.write_text("file-V0-Qm8zRt2w")
    servers = {"local": {**FIXTURE, "env": {"FILE_TOKEN": f"file://{secret}"}}}
    async with gateway_stack(tmp_path, pg_dsn, servers) as stack:
        pid = (await call_via(stack, "rest", "pid", {}, ("local", "local"), uuid.uuid4().hex))["result"]
        credentials = stack.app[SERVERS].credentials
        assert credentials is not None
        for step, value in enumerate(("file-V1-Lp4nXc7e", "file-V1-Lp4nXc7e"), 1):  # rotated, then rewritten as it was
            secret.write_text(value)
            st = secret.stat()
            os.utime(secret, ns=(st.st_atime_ns, st.st_mtime_ns + step * 1_000_000_000))
            assert credentials.refresh() == ["local"]
        said = [json.dumps(await call_via(stack, "rest", "leak_env", {"name": "FILE_TOKEN", "how": how},
                                          ("local", "local"), uuid.uuid4().hex)) for how in ("rpc", "tool", "ok")]
        assert (await call_via(stack, "rest", "pid", {}, ("local", "local"), uuid.uuid4().hex))["result"] == pid
    assert all(REDACTED in s for s in said), said  # the child (never restarted) still says its first value
    for text in said:
        assert "v0-qm8z" not in text.lower() and "qm8zrt2w" not in text.lower(), text
