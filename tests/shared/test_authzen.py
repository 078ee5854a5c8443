"""shared/authzen, the one gateway↔PDP wire contract: every builder's output parses back to what
was built (on the other side), and the PDP's parsers refuse what the PEP would never build."""

from __future__ import annotations

from typing import Any

import pytest

from shared import authzen
from shared.authzen import BadInput, Evaluation, Resource, UnrepresentableName, WireError

SUBJECT = authzen.subject_to_wire("ann@example.com", roles=["dev"], groups=["/eng"], scopes=["mcp"])
# (action, resource) pairs the gateway builds: every action, names with the awkward characters
# each resource type allows (a URI keeps its own ':' and '/').
CHECKS = [
    ("list_servers", authzen.server_resource("s1")),
    ("list_tools", authzen.server_resource("s-2.x")),
    ("server_info", authzen.server_resource("s1")),
    ("invoke_tool", authzen.tool_resource("s1", "files_read")),
    ("invoke_tool", authzen.tool_resource("s1", "a/b.c-d")),
    ("read_resource", authzen.resource_for("read_resource", "fs", "file:///tmp/a:b?x=1")),
    ("get_prompt", authzen.resource_for("get_prompt", "s1", "greet")),
    ("call_method", authzen.resource_for("call_method", "s1", "completion/complete")),
]
ARGS: list[dict[str, Any] | None] = [None, {}, {"path": "/etc", "n": [1, 2], "deep": {"k": None}}]


@pytest.mark.parametrize("action,resource", CHECKS)
@pytest.mark.parametrize("arguments", ARGS)
def test_evaluation_round_trip(action: str, resource: Resource, arguments: dict[str, Any] | None) -> None:
    facts = {"request_id": "r1"}
    body = authzen.evaluation_request(SUBJECT, action, resource, arguments, facts)
    parsed = authzen.parse_evaluation(body)
    context = {**facts, **({"arguments": arguments} if arguments is not None else {})}
    assert parsed == Evaluation("ann@example.com", action, resource, ("dev",), ("/eng",), context)
    assert parsed.arguments == arguments


def test_every_action_has_one_type_and_a_round_trip_case() -> None:
    assert set(authzen.TYPE_FOR_ACTION) == set(authzen.ACTIONS)
    assert {a for a, _ in CHECKS} == set(authzen.ACTIONS)
    assert set(authzen.KIND_FOR_TYPE) == set(authzen.RESOURCE_TYPES)
    assert set(authzen.NAME_PROPERTY) == set(authzen.RESOURCE_TYPES) - {"mcp_server"}
    for action, resource in CHECKS:
        assert resource.type == authzen.TYPE_FOR_ACTION[action]


@pytest.mark.parametrize("semantic", authzen.SEMANTICS)
def test_batch_round_trip(semantic: str) -> None:
    checks = [(a, r, {"x": i}) for i, (a, r) in enumerate(CHECKS)]
    body = authzen.evaluations_request(SUBJECT, checks, {"client_addr": "10.0.0.1"}, semantic)
    batch = authzen.parse_batch(body, limit=len(checks))
    assert batch.semantic == semantic
    assert batch.evaluations() == [
        Evaluation("ann@example.com", a, r, ("dev",), ("/eng",), {"client_addr": "10.0.0.1", "arguments": args})
        for a, r, args in checks
    ]


@pytest.mark.parametrize("action,resources", [
    ("invoke_tool", [authzen.tool_resource("s1", "a"), authzen.tool_resource("s2", "b/c")]),
    ("list_tools", [authzen.server_resource("s1"), authzen.server_resource("s2")]),
    ("invoke_tool", []),
])
def test_search_round_trip(action: str, resources: list[Resource]) -> None:
    search = authzen.parse_search_request(authzen.search_request(SUBJECT, action, resources), limit=10)
    assert (search.subject, search.action, search.roles, search.groups) == ("ann@example.com", action, ("dev",), ("/eng",))
    assert search.type == authzen.TYPE_FOR_ACTION[action] and search.candidates == resources


@pytest.mark.parametrize("allowed,reason", [(True, "rule r"), (False, "default deny")])
def test_answers_round_trip(allowed: bool, reason: str) -> None:
    statement = {"kind": "rule", "name": "r", "effect": "allow" if allowed else "deny", "priority": 5}
    single = authzen.decision_answer(allowed, "d" * 32, "v7", reason, statement)
    assert authzen.parse_decision(single) == authzen.Decision(allowed, "d" * 32, "v7", reason, statement)
    batch = authzen.evaluations_answer([single, authzen.unrepresentable_answer(UnrepresentableName("bad"))])
    assert [d.allowed for d in authzen.parse_evaluations(batch, 2)] == [allowed, False]
    tools = [authzen.tool_resource("s1", "a"), authzen.tool_resource("s1", "b")]
    assert authzen.parse_search(authzen.search_answer("mcp_tool", tools, "v7"), "mcp_tool") == ({"s1:a", "s1:b"}, "v7")


@pytest.mark.parametrize("semantic,decisions,answered", [
    ("execute_all", [True, False, True], 3),
    ("deny_on_first_deny", [True, False, True], 2),
    ("permit_on_first_permit", [False, True, False], 2),
])
def test_semantics_stop_where_authzen_says(semantic: str, decisions: list[bool], answered: int) -> None:
    count = next((i + 1 for i, d in enumerate(decisions) if authzen.stops(semantic, d)), len(decisions))
    assert count == answered


GOOD = authzen.evaluation_request(SUBJECT, "invoke_tool", authzen.tool_resource("s", "t"))


@pytest.mark.parametrize("body,fragment", [
    ({**GOOD, "subject": {"type": "user"}}, "subject.id"),
    ({**GOOD, "action": {"name": "drop_table"}}, "action.name 'drop_table'"),
    ({**GOOD, "resource": {"type": "mcp_server", "id": "s"}}, "resource.type must be 'mcp_tool'"),
    ({**GOOD, "resource": {"type": "mcp_tool", "id": "s:t", "properties": {"tool": "u"}}}, "disagrees"),
    ({**GOOD, "resource": {"type": "mcp_tool", "id": "st"}}, "'SERVER:NAME'"),
    ({**GOOD, "resource": {"type": "mcp_tool", "properties": {"mcp_server": "s"}}}, "properties.tool"),
    ({**GOOD, "context": {"arguments": "x"}}, "context.arguments must be an object"),
    ({**GOOD, "context": []}, "context must be an object"),
    ([], "body must be an object"),
])
def test_pdp_refuses_evaluations_the_pep_never_builds(body: Any, fragment: str) -> None:
    with pytest.raises(BadInput) as err:
        authzen.parse_evaluation(body)
    assert fragment in str(err.value)


@pytest.mark.parametrize("resource", [
    {"type": "mcp_tool", "id": "s:resource/x"},
    {"type": "mcp_tool", "properties": {"mcp_server": "s:x", "tool": "t"}},
    {"type": "mcp_tool", "properties": {"mcp_server": "s", "tool": "a:b"}},
])
def test_unnameable_resources_are_their_own_refusal(resource: dict[str, Any]) -> None:
    with pytest.raises(UnrepresentableName):
        authzen.parse_evaluation({**GOOD, "resource": resource})
    batch = authzen.parse_batch({"subject": SUBJECT, "evaluations": [{**GOOD, "resource": resource}, GOOD]}, 10)
    first, second = batch.evaluations()
    assert isinstance(first, UnrepresentableName) and isinstance(second, Evaluation)


@pytest.mark.parametrize("body,fragment", [
    ({"evaluations": []}, "non-empty list"),
    ({"evaluations": [GOOD] * 3}, "at most 2"),
    ({"evaluations": [GOOD], "options": {"evaluations_semantic": "first"}}, "evaluations_semantic"),
    ({"evaluations": [GOOD], "options": "fast"}, "options must be an object"),
])
def test_pdp_refuses_batches_the_pep_never_builds(body: Any, fragment: str) -> None:
    with pytest.raises(BadInput) as err:
        authzen.parse_batch(body, limit=2)
    assert fragment in str(err.value)


SEARCH = authzen.search_request(SUBJECT, "invoke_tool", [authzen.tool_resource("s", "t")])


@pytest.mark.parametrize("body,fragment", [
    ({**SEARCH, "resource": {"type": "mcp_prompt"}}, "search supports"),
    ({**SEARCH, "action": {"name": "list_tools"}}, "search supports"),
    ({**SEARCH, "context": {"candidates": ["s:t", 3]}}, "candidates must be a list"),
    ({**SEARCH, "context": {}}, "candidates must be a list"),
    ({**SEARCH, "context": {"candidates": ["s:a", "s:b", "s:c"]}}, "at most 2"),
])
def test_pdp_refuses_searches_the_pep_never_builds(body: Any, fragment: str) -> None:
    with pytest.raises(BadInput) as err:
        authzen.parse_search_request(body, limit=2)
    assert fragment in str(err.value)


def test_unnameable_search_candidates_are_never_allowed() -> None:
    body = {**SEARCH, "context": {"candidates": ["s:t", "s", "s:a:b", "s:prompt/x", ":t", "s:"]}}
    assert authzen.parse_search_request(body, 10).candidates == [authzen.tool_resource("s", "t"), None, None, None,
                                                                   None, None]


def test_pep_builders_refuse_shapes_outside_the_contract() -> None:
    with pytest.raises(ValueError):
        authzen.search_request(SUBJECT, "get_prompt", [authzen.resource_for("get_prompt", "s", "p")])
    with pytest.raises(ValueError):
        authzen.search_request(SUBJECT, "invoke_tool", [authzen.server_resource("s")])
    with pytest.raises(ValueError):
        authzen.evaluations_request(SUBJECT, [], semantic="first")


@pytest.mark.parametrize("body", [
    {"decision": "true"}, {"decision": 1}, {}, [], {"decision": True, "context": "allow"},
])
def test_pep_refuses_answers_the_pdp_never_builds(body: Any) -> None:
    with pytest.raises(WireError):
        authzen.parse_decision(body)
