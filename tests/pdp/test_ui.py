"""Pure console logic: ID token claim checks, PKCE, errors by line, semantic diff, replay, least
privilege, YAML edits."""

from __future__ import annotations

import base64
import hashlib

import pytest

from pdp.policy import load_engine, parse_policy
from pdp.ui.analysis import check, lines_with_errors, run_tests, semantic_diff
from pdp.ui.auth import safe_next
from pdp.ui.leastpriv import unused
from pdp.ui.oidc import (
    OidcError,
    authorize_url,
    check_id_token_claims,
    pkce_challenge,
    roles_from_claims,
)
from pdp.ui.replay import replay, request_from_row
from pdp.ui.yamledit import add_block, block_condition, remove_grants, remove_rule

BASE = """\
roles:
  viewer:
    permissions:
      - resource: "mcp:*:*"
        actions: [list_tools]
  dev:
    inherits: [viewer]
    permissions:
      - resource: "mcp:dev:*"
        actions: [invoke_tool, list_tools]
user_roles:
  alice: [dev]
  bob: [viewer]
group_roles:
  /eng: [dev]
rules:
  - name: no-drop
    condition: {tool_name_pattern: ".*drop.*"}
    action: deny
    priority: 100
default_policy: deny
"""
GOOD = {"iss": "https://idp", "aud": "console", "exp": 2000, "iat": 1000, "nonce": "n1", "sub": "u1"}


def test_pkce_challenge_is_rfc7636_s256():
    # RFC 7636 appendix B.
    assert pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    verifier = "x" * 64
    assert pkce_challenge(verifier) == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def test_authorize_url_carries_state_nonce_and_challenge_never_the_verifier():
    url = authorize_url("https://idp/auth", client_id="c", redirect_uri="https://pdp/console/callback",
                        scopes=["openid", "profile"], state="S", nonce="N", verifier="V" * 50)
    assert "state=S" in url and "nonce=N" in url and "code_challenge_method=S256" in url
    assert "V" * 50 not in url and "scope=openid+profile" in url


@pytest.mark.parametrize("change, message", [
    ({"iss": "https://other"}, "issuer"),
    ({"aud": "someone-else"}, "audience"),
    ({"aud": ["console", "other"]}, "azp"),
    ({"exp": 900}, "expired"),
    ({"exp": None}, "expired"),
    ({"iat": 5000}, "issue time"),
    ({"nonce": "replayed"}, "nonce"),
    ({"nonce": None}, "nonce"),
    ({"sub": ""}, "subject"),
])
def test_id_token_claim_checks_fail_closed(change, message):
    claims = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(OidcError, match=message):
        check_id_token_claims(claims, issuer="https://idp", client_id="console", nonce="n1", now=1500)


def test_id_token_claim_checks_accept_a_good_token():
    check_id_token_claims(GOOD, issuer="https://idp", client_id="console", nonce="n1", now=1500)
    check_id_token_claims({**GOOD, "aud": ["console", "x"], "azp": "console"}, issuer="https://idp",
                          client_id="console", nonce="n1", now=1500)


def test_roles_from_claims_reads_configured_paths_only_strings():
    claims = {"roles": ["a", 3, ""], "realm_access": {"roles": ["b", "a"]}, "resource_access": {"c": {"roles": ["d"]}}}
    assert roles_from_claims(claims, ["roles", "realm_access.roles", "resource_access.{client_id}.roles"], "c") == ("a", "b", "d")
    assert roles_from_claims({"roles": "admin"}, ["roles"], "c") == ()


@pytest.mark.parametrize("given, expected", [
    (None, "/console/"), ("/console/policy?x=1", "/console/policy?x=1"), ("//evil/console/", "/console/"),
    ("https://evil/console/", "/console/"), ("/admin/v1/policy", "/console/"), ("/console/\\evil", "/console/"),
])
def test_safe_next_only_allows_local_console_paths(given, expected):
    assert safe_next(given) == expected


def test_errors_are_placed_beside_their_lines():
    text = BASE.replace("    action: deny\n", "    action: deny\n    colour: red\n")
    checked = check(text)
    assert checked.engine is None
    lines, loose = lines_with_errors(text, checked.errors)
    bad = [line for line in lines if line.errors]
    assert [line.text for line in bad] == ["    colour: red"] and "colour" in bad[0].errors[0]
    assert loose == []


def test_semantic_diff_names_each_kind_of_change():
    new = (BASE.replace("actions: [invoke_tool, list_tools]", "actions: [invoke_tool, get_prompt]")
           .replace("  bob: [viewer]\n", "").replace("priority: 100", "priority: 50")
           .replace("roles:\n  viewer:", "roles:\n  auditor:\n    permissions: []\n  viewer:", 1))
    changes = semantic_diff(parse_policy(BASE), parse_policy(new))
    kinds = {k for k, _ in changes}
    assert kinds == {"role added", "permission widened", "permission narrowed", "binding removed",
                     "rule priority changed"}
    assert ("permission narrowed", "role 'dev' may no longer list_tools on mcp:dev:*") in changes
    assert semantic_diff(parse_policy(BASE), parse_policy(BASE)) == []


def test_stored_policy_tests_run_and_report():
    engine = check(BASE).engine
    assert engine is not None
    results = run_tests(engine, "- {name: a, subject: alice, resource: 'dev:x', action: invoke_tool, expect: allow}\n"
                                "- {name: b, subject: bob, resource: 'dev:x', action: invoke_tool, expect: allow}\n"
                                "- {name: c, subjekt: bob, expect: deny}\n")
    assert [(n, ok) for n, ok, _ in results] == [("a", True), ("b", False), ("c", False)]
    assert "unknown key" in results[2][2]
    assert run_tests(engine, "") == []


def _row(subject, tool, decision, roles=(), groups=()):
    return {"subject": subject, "roles": list(roles), "action": "invoke_tool", "mcp_server": "dev", "tool": tool,
            "resource": f"mcp:dev:{tool}", "decision": decision, "extra": {"groups": list(groups)}}


def test_replay_counts_flips_by_user_and_tool():
    draft = load_engine(BASE.replace("  alice: [dev]\n", ""), "draft")
    rows = [_row("alice", "run", "allow"), _row("alice", "run", "allow"), _row("carol", "run", "allow", groups=["/eng"]),
            _row("bob", "run", "deny"), {"subject": "x", "action": None}]
    out = replay(draft, rows)
    assert out.replayed == 4 and out.skipped == 1
    assert out.flips == {"allow→deny": 2}
    assert out.by_user[("alice", "allow→deny")] == 2 and out.by_tool[("dev:run", "allow→deny")] == 2
    assert not out.approximate and len(out.examples) == 2


def test_replay_decides_each_distinct_request_once_and_counts_every_row():
    draft = load_engine(BASE.replace("  alice: [dev]\n", ""), "draft")
    # Newest first, as REPLAY_SQL returns them; groups as the JSON text asyncpg hands over.
    rows = [{**_row(who, tool, was), "extra": None, "groups": '["/x"]', "ts": i, "decision_id": f"d{i}"}
            for i, (who, tool, was) in enumerate([("alice", "run", "allow"), ("carol", "run", "deny"),
                                                  ("alice", "ls", "allow")] * 30)]
    rows.append({**_row("alice", "run", "allow", groups=["/eng"]), "ts": 90, "decision_id": "d90"})
    out = replay(draft, rows, max_examples=5)
    assert draft.hits + draft.misses == 4  # three distinct requests, and the one whose group binds dev
    assert out.replayed == 91 and out.flips == {"allow→deny": 60}
    assert out.by_user[("alice", "allow→deny")] == 60 and ("carol", "allow→deny") not in out.by_user
    assert out.by_tool[("dev:run", "allow→deny")] == 30 and out.by_tool[("dev:ls", "allow→deny")] == 30
    assert [e["decision_id"] for e in out.examples] == ["d0", "d2", "d3", "d5", "d6"]


def test_request_from_row_reads_groups_from_json_text_and_resources():
    req = request_from_row({**_row("a", "t", "allow"), "extra": '{"groups": ["/g"]}'})
    assert req is not None and req.groups == ("/g",) and req.kind == "tool"
    req = request_from_row({"subject": "a", "action": "read_resource", "mcp_server": "s",
                            "resource": "mcp:s:resource/file%3A%2F%2Fx", "decision": "allow"})
    assert req is not None and req.kind == "resource" and req.name == "file://x"


def test_least_privilege_lists_unused_permissions_and_bindings():
    engine = load_engine(BASE, "v1")
    used = [{"subject": "alice", "role": "dev", "resource": "mcp:dev:*", "action": "invoke_tool"}]
    perms, bindings = unused(engine, used)
    assert ("dev", "mcp:dev:*", "invoke_tool") not in perms and ("dev", "mcp:dev:*", "list_tools") in perms
    assert ("viewer", "mcp:*:*", "list_tools") in perms
    assert bindings == [("bob", "viewer")]
    text = remove_grants(BASE, perms, bindings)
    after = parse_policy(text)
    assert "bob" not in after.user_roles and "viewer" in after.roles and not after.roles["viewer"].permissions
    assert [p.actions for p in after.roles["dev"].permissions] == [("invoke_tool",)]


def test_block_rules_are_exact_highest_priority_denies_and_keep_comments():
    text = "# keep me\n" + BASE
    blocked = add_block(text, "tool", "prod:drop_db", "incident 42")
    assert blocked.startswith("# keep me")
    rule = parse_policy(blocked).rules[0]
    assert rule.effect == "deny" and rule.priority == 1_000_000 and rule.name == "emergency-block: tool prod:drop_db"
    assert load_engine(blocked, "b").decide(
        request_from_row({**_row("alice", "drop_db", "allow"), "mcp_server": "prod"})).allowed is False
    assert parse_policy(remove_rule(blocked, rule.name)).rules == parse_policy(BASE).rules
    for kind, value in (("server", "pro*"), ("tool", "a:b:c"), ("user", " "), ("team", "x")):
        with pytest.raises(ValueError):
            block_condition(kind, value)
    with pytest.raises(ValueError, match="reason"):
        add_block(BASE, "user", "eve", " ")


def test_console_settings_are_checked_together():
    from pdp.settings import PdpSettings, check_settings
    from shared.settings import SettingsError

    with pytest.raises(SettingsError) as err:
        check_settings(PdpSettings(console_oidc_issuer="https://idp", policy_source="file"))
    text = str(err.value)
    assert "console_client_id must be set together" in text
    with pytest.raises(SettingsError) as err:
        check_settings(PdpSettings(console_oidc_issuer="https://idp", console_client_id="c"))
    assert "console_public_url" in str(err.value)
    ok = check_settings(PdpSettings(console_oidc_issuer="https://idp", console_client_id="c",
                                    console_public_url="https://pdp.example"))
    assert ok.console_enabled and not PdpSettings().console_enabled


def test_role_levels_follow_configured_names():
    from pdp.settings import PdpSettings
    from pdp.ui.auth import may
    from pdp.ui.sessions import Session

    settings = PdpSettings(console_viewer_role="sec-read", console_editor_role="sec-write",
                           console_approver_role="sec-approve")
    reader, writer, approver = (Session("u", "u", (r,), "t") for r in ("sec-read", "sec-write", "sec-approve"))
    assert [may(settings, s, "view") for s in (reader, writer, approver)] == [True, True, True]
    assert [may(settings, s, "edit") for s in (reader, writer, approver)] == [False, True, False]
    assert [may(settings, s, "approve") for s in (reader, writer, approver)] == [False, False, True]
    assert not may(settings, Session("u", "u", ("policy-viewer",), "t"), "view")


@pytest.mark.parametrize("public_url, secure", [("https://pdp.example", True), ("http://127.0.0.1:8181", False)])
def test_session_cookie_is_secure_behind_https(public_url, secure):
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from pdp.keys import SETTINGS
    from pdp.settings import PdpSettings
    from pdp.ui.auth import _cookie_args

    app = web.Application()
    app[SETTINGS] = PdpSettings(console_public_url=public_url)
    args = _cookie_args(make_mocked_request("GET", "/console/", app=app))
    assert args == {"path": "/console", "httponly": True, "samesite": "Lax", "secure": secure}
