"""`mcpgw policy ...`: offline tools on a policy file, and push/history against a running PDP."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import yaml

from pdp.cases import CASE_KEYS, case_request, evaluation_body
from pdp.cli_casbin import condition_text, explain, validate_native
from pdp.cli_remote import _call, _print_error, _remote_args, _token
from pdp.policy import Engine, PolicyInvalid, load_engine
from pdp.policy.compile import MODEL_TEXT
from pdp.policy.schema_lint import Tool, lint, tools_from_json
from pdp.policy.yamlload import LList, LMap, load_with_lines
from pdp.wire import BadInput
from shared.clierror import error, problems
from shared.textsafe import printable


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `policy validate|compile|test|explain|push|history`."""
    sub = subparsers.add_parser("policy", help="Policy tools").add_subparsers(dest="policy_command", metavar="CMD")
    p = sub.add_parser("validate", help="Check a policy file; list every error with its line")
    p.add_argument("file", type=Path, help="Policy YAML, or with --casbin-model the Casbin policy lines")
    p.add_argument("--casbin-model", type=Path, help="Validate FILE as the policy lines of this native Casbin model")
    p.add_argument("--tools", type=Path, action="append", default=[],
                   help="A tools/list JSON (or the gateway's GET /tools): warn where an argument condition "
                        "cannot match a tool's inputSchema (repeatable)")
    p.add_argument("--gateway", help="Read the tool schemas from a running gateway's GET /tools (base URL)")
    p.add_argument("--token", default=None, help="Bearer token for --gateway (default: $MCPGW_TOKEN)")
    p.set_defaults(func=validate_cmd)
    p = sub.add_parser("compile", help="Print the Casbin model and policy lines")
    p.add_argument("file", type=Path)
    p.set_defaults(func=compile_cmd)
    p = sub.add_parser("test", help="Run expected-decision cases; exit 1 on any failure")
    p.add_argument("file", type=Path)
    p.add_argument("--cases", type=Path, required=True)
    p.set_defaults(func=test_cmd)
    p = sub.add_parser("explain", help="Decide one request; show Casbin's deciding line and its YAML source")
    p.add_argument("file", type=Path, nargs="?", help="Policy file (omit with --live)")
    p.add_argument("--live", action="store_true", help="Ask the running PDP (--pdp-url) instead of a file")
    p.add_argument("--api-token", help="Decision API token (standalone PDPs; default: $MCPGW_PDP_API_TOKEN)")
    p.add_argument("--subject", required=True)
    p.add_argument("--roles", default="", help="Comma-separated token roles")
    p.add_argument("--groups", default="", help="Comma-separated groups")
    p.add_argument("--resource", required=True, help="SERVER, SERVER:TOOL, SERVER:URI or SERVER:PROMPT")
    p.add_argument("--action", required=True)
    p.add_argument("--arguments", help="Tool arguments as JSON")
    _remote_args(p)
    p.set_defaults(func=explain_cmd)
    p = sub.add_parser("push", help="Store (and activate) a policy on a running PDP")
    p.add_argument("file", type=Path, help="Policy YAML, or with --casbin-model the Casbin policy lines")
    p.add_argument("--casbin-model", type=Path, help="Push FILE as the policy lines of this native Casbin model")
    p.add_argument("--comment", default="")
    p.add_argument("--no-activate", action="store_true", help="Store the version without activating it")
    _remote_args(p)
    p.set_defaults(func=push_cmd)
    p = sub.add_parser("history", help="List policy versions of a running PDP")
    _remote_args(p)
    p.set_defaults(func=history_cmd)
    from pdp import cli_policy_live

    cli_policy_live.register(sub)


def _load(path: Path) -> Engine | None:
    try:
        return load_engine(path.read_text(), f"file:{path.name}")
    except OSError as exc:
        error(f"{path}: {exc.strerror}")
    except PolicyInvalid as exc:
        problems(f"{path} is not a valid policy",
                 [f"{path}:{err.line or 0}: {err.path or '<document>'}: {err.message}" for err in exc.errors])
    return None


def _unreadable(path: Path) -> bool:
    """True (after saying so) when the file cannot be read: a usage error, exit 2, not a verdict."""
    try:
        path.read_bytes()
    except OSError as exc:
        error(f"{path}: {exc.strerror or exc}")
        return True
    return False


def validate_cmd(args: argparse.Namespace) -> int:
    """Exit 0 when valid, 1 with every error otherwise (2 when the file cannot be read)."""
    if _unreadable(args.file) or (args.casbin_model is not None and _unreadable(args.casbin_model)):
        return 2
    if args.casbin_model is not None:
        return validate_native(args.casbin_model, args.file)
    engine = _load(args.file)
    if engine is None:
        return 1
    tools = schema_tools(args)
    if tools is None:
        return 2
    print(f"{args.file}: valid ({len(engine.compiled.statements)} statements)")
    if tools:
        warnings = lint(engine.compiled.policy, tools)
        lines = rule_argument_lines(args.file.read_text())
        for w in warnings:
            # Tool names and schemas come from backends: escaped like every human output.
            print(printable(f"{args.file}:{lines.get((w.rule, w.pointer), 0)}: warning: "
                            f"rules[{w.rule}].condition.arguments.{w.pointer}: {w.message}"))
        print(f"{len(warnings)} warning(s) against {len(tools)} tool schema(s)")
    return 0


def schema_tools(args: argparse.Namespace) -> list[Tool] | None:
    """The tools named by --tools files and --gateway; None (after saying why) when one cannot be read."""
    tools: list[Tool] = []
    sources: list[tuple[str, Any]] = []
    for path in args.tools:
        try:
            sources.append((str(path), json.loads(path.read_text())))
        except (OSError, ValueError) as exc:
            error(f"{path}: cannot read tools: {exc}")
            return None
    if args.gateway:
        found = _gateway_tools(args.gateway, args.token or os.environ.get("MCPGW_TOKEN"))
        if found is None:
            return None
        sources.append((args.gateway, found))
    for name, doc in sources:
        try:
            tools += tools_from_json(doc)
        except ValueError as exc:
            error(f"{name}: {exc}")
            return None
    return tools


def _gateway_tools(url: str, token: str | None) -> Any:
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url.rstrip("/") + "/tools", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        error(f"{url}/tools: HTTP {exc.code} (pass a token with --token or MCPGW_TOKEN)")
    except (OSError, ValueError) as exc:
        error(f"{url}/tools: {exc}")
    return None


def rule_argument_lines(text: str) -> dict[tuple[int, str], int]:
    """{(rule index, pointer): line} of every argument condition in a valid policy's YAML."""
    doc, _ = load_with_lines(text)
    rules = doc.get("rules") if isinstance(doc, LMap) else None
    out: dict[tuple[int, str], int] = {}
    for i, rule in enumerate(rules if isinstance(rules, LList) else []):
        cond = rule.get("condition") if isinstance(rule, LMap) else None
        args = cond.get("arguments") if isinstance(cond, LMap) else None
        if isinstance(args, LMap):
            for pointer, line in args.key_lines.items():
                out[(i, pointer)] = line
    return out


def compile_cmd(args: argparse.Namespace) -> int:
    """Print model.conf, then the p and g lines, with rule conditions as comments."""
    if _unreadable(args.file):
        return 2
    engine = _load(args.file)
    if engine is None:
        return 1
    print(MODEL_TEXT)
    for s in engine.compiled.statements:
        print("p, " + ", ".join(s.casbin_line()))
        if s.condition is not None:
            print(f"#   {s.cond_id} = rule {s.rule!r}: {condition_text(s.condition)}")
    for member, role in engine.compiled.role_links:
        print(f"g, {member}, {role}")
    return 0


def test_cmd(args: argparse.Namespace) -> int:
    """Each case: subject, roles, groups, resource, action, arguments, expect: allow|deny."""
    engine = _load(args.file)
    if engine is None:
        return 2
    try:
        cases = yaml.safe_load(args.cases.read_text())
    except (OSError, yaml.YAMLError) as exc:
        error(f"{args.cases}: {exc}")
        return 2
    cases = cases.get("cases") if isinstance(cases, dict) else cases
    if not isinstance(cases, list):
        error(f"{args.cases}: expected a list of cases (or a mapping with 'cases')")
        return 2
    if not cases:
        # Like a test runner that finds no tests: an empty file must not read as "all passed".
        error(f"{args.cases}: no cases")
        return 2
    failed = 0
    for i, case in enumerate(cases):
        name = case.get("name", f"case {i}") if isinstance(case, dict) else f"case {i}"
        try:
            if not isinstance(case, dict) or case.get("expect") not in ("allow", "deny"):
                raise BadInput("each case needs 'expect: allow|deny'")
            if unknown := sorted(set(map(str, case)) - CASE_KEYS):
                # A misspelt key (`argumnets`, `role`) would silently test a different request.
                raise BadInput(f"unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(sorted(CASE_KEYS))})")
            outcome = engine.decide(case_request(case, f"cases[{i}]"))
        except BadInput as exc:
            print(printable(f"ERROR {name}: {exc}"))
            failed += 1
            continue
        got = "allow" if outcome.allowed else "deny"
        if got != case["expect"]:
            failed += 1
            print(printable(f"FAIL  {name}: expected {case['expect']}, got {got} ({outcome.statement.reason()})"))
        else:
            print(printable(f"PASS  {name}"))
    print(f"{len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


def explain_cmd(args: argparse.Namespace) -> int:
    """Print the decision and deciding statement as JSON; exit 0 allow, 1 deny."""
    if (args.file is None) != bool(args.live):
        error("give a policy FILE, or --live to ask the running PDP")
        return 2
    case: dict[str, Any] = {"subject": args.subject, "resource": args.resource, "action": args.action,
                            "roles": [r for r in args.roles.split(",") if r],
                            "groups": [g for g in args.groups.split(",") if g]}
    try:
        if args.arguments:
            case["arguments"] = json.loads(args.arguments)
        req = case_request(case, "request")
    except (BadInput, ValueError) as exc:
        error(f"bad request: {exc}")
        return 2
    if args.live:
        from pdp.cli_policy_live import explain_live

        return explain_live(args, evaluation_body(case))
    engine = _load(args.file)
    if engine is None:
        return 2
    print(json.dumps(explain(engine, args.file.read_text(), req), indent=2))
    return 0 if engine.decide(req).allowed else 1


def push_cmd(args: argparse.Namespace) -> int:
    """POST the file as a new version; the PDP validates it (its 422 errors print as FILE:LINE)."""
    token = _token(args)
    model = args.casbin_model
    try:
        text = args.file.read_text()
        model_text = model.read_text() if model is not None else None
    except OSError as exc:
        error(f"{exc.filename}: {exc.strerror}")
        return 2
    if token is None:
        return 2
    body: dict[str, Any] = {"comment": args.comment, "activate": not args.no_activate}
    body.update({"yaml": text} if model_text is None else {"casbin": {"model": model_text, "policy": text}})
    status, answer = _call(args, token, "POST", "/admin/v1/policy/versions", body)
    if args.json:
        print(json.dumps(answer, indent=2, default=str))
    if status == 201:
        if not args.json:
            state = "active" if answer.get("active") else "stored, not active"
            print(printable(f"{args.file}: pushed as {answer.get('policy_version')} ({state})"))
        return 0
    problem = answer.get("error", {}) if isinstance(answer, dict) else {}
    if status == 422 and isinstance(problem.get("errors"), list):
        # The same FILE:LINE: PATH: MESSAGE lines as `policy validate`.
        lines = []
        for err in problem["errors"]:
            where = model if model is not None and err.get("path") != "policy" else args.file
            lines.append(f"{where}:{err.get('line') or 0}: {err.get('path') or '<document>'}: {err.get('message')}")
        problems(f"the PDP refused {args.file} (HTTP 422)", lines)
    else:
        _print_error(status, answer)
    return 1


def history_cmd(args: argparse.Namespace) -> int:
    """Print the version list, newest first."""
    token = _token(args)
    if token is None:
        return 2
    status, answer = _call(args, token, "GET", "/admin/v1/policy/versions", None)
    if status != 200:
        _print_error(status, answer)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, default=str))
        return 0
    for v in answer.get("versions", []):
        print(printable(f"{v['policy_version']:>6} {v['status']:<8} {v['created_at']} {v['author']}: {v['comment']}"))
    return 0
