"""Registry (gateway/registry.py): reloads swap the set atomically and keep the last good one."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import yaml

from gateway.registry import Registry, RegistryError
from tests.gateway.test_servers_file import BASE


def _write(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data))
    # Make every rewrite visible to the mtime check even on coarse-clock filesystems.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_reload_swaps_atomically_and_keeps_last_good(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "servers.yaml"
    _write(path, {"servers": {"a": BASE}})
    registry = Registry(path)
    registry.load()
    assert list(registry.servers) == ["a"]
    assert registry.poll() is False  # unchanged file: nothing to do

    _write(path, {"servers": {"a": BASE, "b": {"url": "http://127.0.0.1:9001/mcp", "enabled": False}}})
    assert registry.poll() is True
    assert sorted(registry.servers) == ["a", "b"]
    assert registry.get("b") is None  # disabled servers are not handed out
    assert [s.name for s in registry.enabled()] == ["a"]

    with caplog.at_level(logging.ERROR, logger="gateway.registry"):
        _write(path, {"servers": {"a": BASE, "c": {"url": "gopher://x"}}})
        assert registry.poll() is False
    assert sorted(registry.servers) == ["a", "b"]  # last good set kept
    assert "servers.c.url" in caplog.text
    assert registry.last_error is not None

    path.write_text("servers: [unclosed")
    assert registry.poll() is False
    assert sorted(registry.servers) == ["a", "b"]


def test_initial_bad_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "servers.yaml"
    _write(path, {"servers": {"x": {"url": "ftp://x"}}})
    with pytest.raises(RegistryError) as info:
        Registry(path).load()
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "url:" in text)
    assert info.value.errors == [f"{path}:{line}: servers.x.url: must be an http:// or https:// URL, got 'ftp://x'"]


def test_missing_credential_rejects_the_set(tmp_path: Path) -> None:
    from gateway.credentials import CredentialStore

    path = tmp_path / "servers.yaml"
    _write(path, {"servers": {"x": {**BASE, "auth": {"method": "bearer", "credential_ref": "env://NOPE"}}}})
    registry = Registry(path, credentials=CredentialStore(environ={}))
    with pytest.raises(RegistryError) as info:
        registry.load()
    assert info.value.errors == ["servers.x.auth.credential_ref: environment variable NOPE is not set"]
    assert registry.servers == {}
