"""Credential formatting, injection into copies only, reference resolution and refresh."""

from __future__ import annotations

import base64
import copy
import os
from pathlib import Path

import pytest

from gateway.backend_auth import AuthConfig, Injection, format_value, inject
from gateway.credentials import CredentialError, CredentialStore, read_ref
from gateway.registry import parse_servers


@pytest.mark.parametrize(
    ("auth", "credential", "expected"),
    [
        (AuthConfig("api_key", format="raw"), "k1", "k1"),
        (AuthConfig("bearer", format="prefix", prefix="Bearer "), "t1", "Bearer t1"),
        (AuthConfig("custom", format="template", template="Token {credential}!"), "c", "Token c!"),
        (AuthConfig("basic", format="prefix", prefix="Basic "), "u:p w", "Basic " + base64.b64encode(b"u:p w").decode()),
        (AuthConfig("basic", format="raw"), "u:p", base64.b64encode(b"u:p").decode()),
    ],
)  # fmt: skip
def test_format_value(auth: AuthConfig, credential: str, expected: str) -> None:
    assert format_value(auth, credential) == expected


def _msg(method: str = "tools/call") -> dict:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"name": "t", "arguments": {"x": 1}}}


@pytest.mark.parametrize(
    ("injection", "headers", "query", "params"),
    [
        (Injection("header", "X-K", "v"), {"X-K": "v"}, {}, {"name": "t", "arguments": {"x": 1}}),
        (Injection("query", "k", "v"), {}, {"k": "v"}, {"name": "t", "arguments": {"x": 1}}),
        (Injection("body", "api_key", "v"), {}, {}, {"name": "t", "arguments": {"x": 1, "api_key": "v"}}),
        (None, {}, {}, {"name": "t", "arguments": {"x": 1}}),
    ],
)
def test_inject(injection: Injection | None, headers: dict, query: dict, params: dict) -> None:
    message = _msg()
    original = copy.deepcopy(message)
    h: dict[str, str] = {}
    q: dict[str, str] = {}
    out = inject(injection, h, q, message)
    assert (h, q, out["params"]) == (headers, query, params)
    assert message == original  # the caller's message/params/arguments are never modified


def test_body_injection_outside_tool_calls_goes_to_params() -> None:
    out = inject(Injection("body", "k", "v"), {}, {}, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert out["params"] == {"k": "v"}


def test_injection_repr_hides_value() -> None:
    assert "sekrit" not in repr(Injection("header", "X", "sekrit"))


def test_read_ref_env_and_file(tmp_path: Path) -> None:
    assert read_ref("env://A", {"A": "x"}).secret.get() == "x"
    f = tmp_path / "tok"
    f.write_text("file-secret\n")
    assert read_ref(f"file://{f}", {}).secret.get() == "file-secret"
    with pytest.raises(CredentialError, match="environment variable B is not set"):
        read_ref("env://B", {})
    with pytest.raises(CredentialError, match="cannot read"):
        read_ref(f"file://{tmp_path}/missing", {})
    f.write_text("")
    with pytest.raises(CredentialError, match="is empty"):
        read_ref(f"file://{f}", {})


def _servers(tmp_path: Path) -> list:
    servers, errors = parse_servers(
        {
            "servers": {
                "e": {"url": "http://h/mcp", "auth": {"method": "bearer", "credential_ref": "env://TOKEN_E"}},
                "f": {"url": "http://h/mcp", "auth": {"method": "api_key", "credential_ref": f"file://{tmp_path}/k"}},
            }
        }
    )
    assert errors == []
    return list(servers.values())


async def test_refresh_rereads_changed_sources_only(tmp_path: Path) -> None:
    (tmp_path / "k").write_text("k1")
    env = {"TOKEN_E": "t1"}
    store = CredentialStore(environ=env)
    resolved, errors = store.resolve(_servers(tmp_path))
    assert errors == []
    store.commit(resolved)
    e, f = _servers(tmp_path)
    assert (await store.injection(e)).value == "Bearer t1"  # type: ignore[union-attr]
    assert (await store.injection(f)).value == "k1"  # type: ignore[union-attr]
    assert store.refresh() == []

    env["TOKEN_E"] = "t2"
    (tmp_path / "k").write_text("k2")
    st = (tmp_path / "k").stat()
    os.utime(tmp_path / "k", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert "Bearer t1" in store.forms(e) and "k1" in store.forms(f)  # what a backend's text is masked with
    assert sorted(store.refresh()) == ["e", "f"]
    assert "Bearer t2" in store.forms(e) and "t1" not in store.forms(e)  # follows a refreshed secret
    assert (await store.injection(e)).value == "Bearer t2"  # type: ignore[union-attr]
    assert (await store.injection(f)).value == "k2"  # type: ignore[union-attr]

    del env["TOKEN_E"]  # a vanished source keeps the last good secret
    assert store.refresh() == []
    assert (await store.injection(e)).value == "Bearer t2"  # type: ignore[union-attr]


async def test_unresolved_server_fails_closed(tmp_path: Path) -> None:
    store = CredentialStore(environ={})
    e, _ = _servers(tmp_path)
    with pytest.raises(CredentialError):
        await store.injection(e)


def test_a_stdio_servers_env_references_are_masked_and_follow_a_refresh(tmp_path: Path) -> None:
    (tmp_path / "k").write_text("file-secret-1")
    env = {"STDIO_E": "env-secret-1"}
    servers, errors = parse_servers({"servers": {"s": {"type": "stdio", "command": "x", "env": {
        "A": "env://STDIO_E", "B": f"file://{tmp_path / 'k'}", "C": "literal-value"}}}})
    assert errors == []
    store = CredentialStore(environ=env)
    resolved, errors = store.resolve(servers.values())
    assert errors == []
    store.commit(resolved)
    forms = store.forms(servers["s"])
    assert {"env-secret-1", "file-secret-1"} <= set(forms) and "literal-value" not in forms
    assert base64.b64encode(b"env-secret-1").decode() in forms
    release = store.launched("s", ["env-secret-1", "file-secret-1"])  # a child started with these
    for rotation in (2, 3):  # rotated twice (the file also rewritten with the same content)
        env["STDIO_E"] = f"env-secret-{rotation}"
        (tmp_path / "k").write_text("file-secret-1" if rotation == 2 else "file-secret-3")
        st = (tmp_path / "k").stat()
        os.utime(tmp_path / "k", ns=(st.st_atime_ns, st.st_mtime_ns + rotation * 1_000_000_000))
        assert store.refresh() == ["s"]
    # The current values, and those the running child was launched with, however many rotations ago.
    assert {"env-secret-1", "env-secret-3", "file-secret-1", "file-secret-3"} <= set(store.forms(servers["s"]))
    release()  # that child stopped: what it held is no longer needed
    assert {"env-secret-3", "file-secret-3"} <= set(store.forms(servers["s"]))
    assert not {"env-secret-1", "env-secret-2", "file-secret-1"} & set(store.forms(servers["s"]))
