"""Backend catalog items the gateway cannot represent are left out, logged once, counted."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, Counter

from gateway.mcp import admission

HOSTILE_TOOLS = ["evil:tool", "resource/fetch", "prompt/x", "method/y", "x" * 500, "nul\x00tool", "new\nline",
                 "trailing\n", "", "sp ace", "naïve"]


@pytest.mark.parametrize("name", HOSTILE_TOOLS)
def test_hostile_tool_names_are_refused(name: str) -> None:
    assert admission.why_not("tool", name) is not None


@pytest.mark.parametrize("name", ["echo", "get-weather", "repo.create", "a", "x" * 128, "A_b-9.z"])
def test_good_tool_names_pass(name: str) -> None:
    assert admission.why_not("tool", name) is None


@pytest.mark.parametrize(("kind", "value", "ok"), [
    ("prompt", "code_review", True), ("prompt", "Code Review", True), ("prompt", "a:b", False), ("prompt", "*", False), ("prompt", "a*", False),
    ("prompt", " lead", False), ("prompt", "nl\n", False), ("prompt", "x" * 129, False),
    ("resource", "file:///public/a.txt", True), ("resource", "file:///public/../secret", False),
    ("template", "file:///public/{path}", True), ("template", "file:///p/%2e%2e/{x}", False),
    ("tool", 42, False),
])
def test_other_kinds(kind: str, value: object, ok: bool) -> None:
    assert (admission.why_not(kind, value) is None) is ok


def test_guard_leaves_out_only_the_bad_items_logs_once_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    counter = Counter("dropped_total", "d", ["server", "kind"], registry=registry)
    guard = admission.CatalogGuard(counter)
    result = {"tools": [{"name": "echo"}, {"name": "evil:tool"}, "not an object", {"name": "resource/fetch"}],
              "nextCursor": "c"}
    with caplog.at_level(logging.WARNING, logger="gateway.mcp.admission"):
        out = guard.result("hostile", "tools/list", result)
        again = guard.result("hostile", "tools/list", result)
    assert out == again == {"tools": [{"name": "echo"}], "nextCursor": "c"}
    assert len(caplog.records) == 3  # each bad item logged once, not once per listing
    assert registry.get_sample_value("dropped_total", {"server": "hostile", "kind": "tool"}) == 6
    clean = {"prompts": [{"name": "p"}]}
    assert guard.result("s", "prompts/list", clean) == clean


def test_guard_counts_a_listing_left_out_for_its_size_and_logs_it_once(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    guard = admission.CatalogGuard(Counter("dropped_total", "d", ["server", "kind"], registry=registry))
    with caplog.at_level(logging.WARNING, logger="gateway.mcp.admission"):
        guard.oversized("many", "tools/list", 10_001, "tools/list lists more than 10000 items")
        guard.oversized("many", "tools/list", 10_001, "tools/list lists more than 10000 items")
    assert registry.get_sample_value("dropped_total", {"server": "many", "kind": "tool"}) == 20_002
    assert len(caplog.records) == 1 and "more than 10000 items" in caplog.records[0].getMessage()
