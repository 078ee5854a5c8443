"""servers_file: splicing edits keep every other byte; validation refuses bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from mcpgw.client import servers_file as sf
from mcpgw.client.errors import UsageError
from mcpgw.client.register import validate
from tests.fixtures.servers_files import SALESFORCE_PROD

SAMPLE = (
    "# Backends for the demo: comments must survive edits.\n"
    "servers:\n"
    "  # CRM (leading comment of salesforce-prod)\n"
    + SALESFORCE_PROD
    + """
  docs:
    url: 'http://127.0.0.1:9001/mcp'
    tags:
      - docs
      - read-only

# footer comment stays last
"""
)

NEW = {"url": "http://127.0.0.1:9002/mcp", "type": "http", "enabled": True, "tags": ["a", "b"]}


def test_add_appends_entry_and_keeps_every_other_line() -> None:
    out = sf.add_entry(SAMPLE, "new-one", NEW)
    added = ["  new-one:", "    url: http://127.0.0.1:9002/mcp", "    type: http", "    enabled: true", "    tags: [a, b]"]
    lines = out.splitlines()
    start = lines.index("  new-one:")
    assert lines[start : start + len(added)] == added
    assert lines[:start] + lines[start + len(added) :] == SAMPLE.splitlines()
    assert lines[-1] == "# footer comment stays last"
    assert yaml.safe_load(out)["servers"]["new-one"] == NEW


def test_remove_drops_entry_and_its_leading_comment_only() -> None:
    out = sf.remove_entry(SAMPLE, "salesforce-prod")
    assert "salesforce" not in out and "CRM" not in out
    assert out.splitlines() == [SAMPLE.splitlines()[0], "servers:", *SAMPLE.splitlines()[18:]]


def test_add_then_remove_round_trips_byte_for_byte() -> None:
    assert sf.remove_entry(sf.add_entry(SAMPLE, "x", NEW), "x") == SAMPLE


def test_replace_keeps_position() -> None:
    out = sf.add_entry(SAMPLE, "salesforce-prod", {"url": "https://other.example.com"}, replace=True)
    data = yaml.safe_load(out)
    assert list(data["servers"]) == ["salesforce-prod", "docs"]
    assert data["servers"]["salesforce-prod"] == {"url": "https://other.example.com"}
    assert "# CRM (leading comment of salesforce-prod)" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"servers": {"a": NEW}}),
        ("servers: {}\n", {"servers": {"a": NEW}}),
        ("# only a comment\nservers:\n", {"servers": {"a": NEW}}),
    ],
)
def test_add_to_empty_documents(text: str, expected: dict) -> None:
    out = sf.add_entry(text, "a", NEW)
    assert yaml.safe_load(out) == expected
    if text.startswith("#"):
        assert out.startswith("# only a comment")


def test_removing_last_entry_leaves_an_empty_mapping() -> None:
    one = "servers:\n  a:\n    url: http://x\n# tail\n"
    out = sf.remove_entry(one, "a")
    assert yaml.safe_load(out) == {"servers": {}}
    assert "# tail" in out
    assert validate(yaml.safe_load(out)) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sf.add_entry(SAMPLE, "docs", NEW), "already registered"),
        (lambda: sf.remove_entry(SAMPLE, "nope"), "not registered"),
        (lambda: sf.add_entry("servers: [\n", "a", NEW), "not valid YAML"),
        (lambda: sf.add_entry("- a\n", "a", NEW), "mapping"),
        (lambda: sf.add_entry("servers: [a]\n", "a", NEW), "`servers` must be a mapping"),
        (lambda: sf.add_entry("servers: {a: {url: 'http://x'}}\n", "b", NEW), "block style"),
    ],
)
def test_refusals(call, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call()


def test_check_refuses_invalid_entry_with_gateway_reasons() -> None:
    bad = sf.add_entry(SAMPLE, "Bad", {"url": "ftp://x", "auth": {"method": "api_key", "credential_ref": "vault://k"}})
    with pytest.raises(UsageError) as info:
        sf.check(SAMPLE, bad, "Bad", validate, Path("s.yaml"))
    text = info.value.message
    assert "servers.Bad: invalid server name" in text
    assert "servers.Bad.url" in text
    assert "vault://" in text


def test_check_refuses_changes_to_other_entries() -> None:
    tampered = SAMPLE.replace("timeout: 60", "timeout: 61")
    with pytest.raises(UsageError, match="change other entries"):
        sf.check(SAMPLE, tampered, "x", validate, Path("s.yaml"))


def test_check_accepts_the_sample_plus_one() -> None:
    sf.check(SAMPLE, sf.add_entry(SAMPLE, "x", NEW), "x", validate, Path("s.yaml"))


def test_write_atomic_keeps_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "s.yaml"
    target.write_text("old")
    os.chmod(target, 0o600)
    sf.write_atomic(target, "new")
    assert target.read_text() == "new"
    assert (target.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["s.yaml"]


def test_crlf_file_keeps_its_line_endings_through_add_and_remove(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    original = SAMPLE.replace("\n", "\r\n")
    path.write_bytes(original.encode())
    text = sf.load_text(path)
    assert text == original  # not normalised to "\n" on read
    added = sf.add_entry(text, "extra", NEW, path=path)
    sf.check(text, added, "extra", validate, path)
    sf.write_atomic(path, added)
    raw = path.read_bytes().decode()
    assert raw.count("\n") == raw.count("\r\n") and "  extra:\r\n" in raw
    removed = sf.remove_entry(sf.load_text(path), "extra", path=path)
    sf.write_atomic(path, removed)
    assert path.read_bytes().decode() == original
