"""Table tests for gateway.mcp.naming: prefixing, spec-valid shortening, stateless reversal."""

from __future__ import annotations

import pytest

from gateway.mcp import naming as n
from gateway.servers_file import parse_servers


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
        # May be the shortened name of `repo.create`: only the list can tell (resolve).
        ("github__repo_create_1a2b3c4d", ["github"], None),
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


# Every listed name resolves back: names the fast path would misread as `server__name` included.
@pytest.mark.parametrize(
    ("server", "tool"),
    [
        ("fm", "files.read_text"),  # the reported case: fm__files_read_text_<hash>
        ("fm", "files/read"),
        ("github", "x" * 70),  # valid characters, too long
        ("s", "a" * 59),  # exactly one over 64 with the prefix
        ("long-server-name-" * 4, "t"),  # the server alone is too long
        ("fm", "plain"),
        ("fm", "looks_shortened_13f73928"),  # a real name with a hash-like tail
        ("a__b", "c"),
    ],
)
def test_every_public_name_resolves_back(server: str, tool: str) -> None:
    public = n.public_name(server, tool)
    lists = {server: ["other", tool], "fmx": [tool], "zz": ["x" * 70]}
    assert n.resolve(public, lists) == (server, tool)
    # The list-free fast path either gives the same answer or declines; it never names another tool.
    assert n.split_simple(public, lists) in ((server, tool), None)


def test_a_shortened_name_is_never_split_without_the_list() -> None:
    public = n.public_name("fm", "files.read_text")
    assert public.startswith("fm__files_read_text_") and n.maybe_shortened(public)
    assert n.split_simple(public, ["fm"]) is None


# Server names as a servers file may spell them; only those the validator accepts can be configured.
SERVER_NAMES = ["team", "team__ops", "team_", "my.bank", "my_bank", "my-bank", "a", "a_b", "a-", "a_-_b",
                "x" * 52, "x" * 51 + "y", "x" * 53, "x" * 63]
TOOL_NAMES = ["deploy", "ops__deploy", "pay", "_x", "__x", "___", "x" * 80, "a.b", "naïve", "looks_shortened_13f73928"]


def _accepted(server: str) -> bool:
    return not parse_servers({"servers": {server: {"url": "http://127.0.0.1:9/mcp"}}})[1]


def test_public_names_of_different_accepted_servers_differ_whatever_the_tools_are_called() -> None:
    accepted = [s for s in SERVER_NAMES if _accepted(s)]
    owners: dict[str, str] = {}
    for server in accepted:
        for tool in TOOL_NAMES:
            public = n.public_name(server, tool)
            assert public.partition(n.SEPARATOR)[0] == server  # the server, read back from the name alone
            assert owners.setdefault(public, server) == server, f"{public!r}: {server} and {owners[public]}"
    # A hostile backend names its tool after the rest of a neighbour's public name.
    for hostile in accepted:
        for victim in accepted:
            for tool in TOOL_NAMES:
                target = n.public_name(victim, tool)
                if hostile != victim and target.startswith(hostile + n.SEPARATOR):
                    assert n.public_name(hostile, target[len(hostile) + 2:]) != target, (hostile, victim, tool)
