"""Table tests for gateway.mcp.naming: prefixing, spec-valid shortening, stateless reversal."""

from __future__ import annotations

import pytest

from gateway.mcp import naming as n


@pytest.mark.parametrize(
    ("server", "tool", "expected"),
    [
        ("github", "create_issue", "github__create_issue"),
        ("a-b", "x-y", "a-b__x-y"),
    ],
)
def test_simple_names_are_kept(server: str, tool: str, expected: str) -> None:
    assert n.public_name(server, tool) == expected


@pytest.mark.parametrize(
    ("server", "tool"),
    [
        ("github", "repo.create"),
        ("files", "read/file"),
        ("s", "x" * 80),
        ("very-long-server-name-" * 3, "tool"),
        ("srv", "naïve tool"),
    ],
)
def test_invalid_or_long_names_are_shortened_validly_and_stably(server: str, tool: str) -> None:
    name = n.public_name(server, tool)
    assert n.is_valid(name) and len(name) <= 64
    assert name == n.public_name(server, tool)
    assert n.resolve(name, {server: [tool, "other"]}) == (server, tool)


def test_hash_suffix_separates_near_collisions() -> None:
    assert n.public_name("s", "a.b") != n.public_name("s", "a/b")
    long_a, long_b = "x" * 70 + "a", "x" * 70 + "b"
    assert n.public_name("s", long_a) != n.public_name("s", long_b)


def test_resolve_prefers_longest_server_prefix() -> None:
    lists = {"a": ["b__c"], "a__b": ["c"]}
    assert n.resolve("a__b__c", lists) in {("a__b", "c"), ("a", "b__c")}
    assert n.resolve("a__b__c", {"a__b": ["c"], "a": []}) == ("a__b", "c")


@pytest.mark.parametrize(
    ("public", "servers", "expected"),
    [
        ("github__create_issue", ["github", "jira"], ("github", "create_issue")),
        ("jira__x", ["github", "jira"], ("jira", "x")),
        ("nope__x", ["github"], None),
        ("github__", ["github"], None),
        ("github__repo_create_1a2b3c4d", ["github"], ("github", "repo_create_1a2b3c4d")),
    ],
)
def test_split_simple(public: str, servers: list[str], expected: tuple[str, str] | None) -> None:
    assert n.split_simple(public, servers) == expected


def test_resolve_unknown_is_none() -> None:
    assert n.resolve("github__missing", {"github": ["create_issue"]}) is None


def test_broadcast_name() -> None:
    assert n.broadcast_name("search") == "search"
    assert n.is_valid(n.broadcast_name("web.search"))


def test_a_trailing_newline_is_not_a_valid_name() -> None:
    assert not n.is_valid("tool\n")
    name = n.public_name("s", "tool\n")
    assert "\n" not in name and n.is_valid(name)
