"""`mcpgw policy show|diff|activate|rollback|impact|block` and `explain --live`: against a running PDP.

They call the admin API (bearer admin token) and, for `explain --live`, the AuthZEN decision API,
so scripts get what the console offers.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from pdp.cli_remote import _call, _print_error, _remote_args, _token
from pdp.policy import PolicyInvalid, parse_policy
from pdp.publish import text_diff
from pdp.ui.analysis import semantic_diff
from shared.clierror import error


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the live subcommands to `mcpgw policy`."""
    p = sub.add_parser("show", help="Print the active (or a stored) policy of a running PDP")
    p.add_argument("--version", help="A stored version (3 or v3) instead of the active one")
    _remote_args(p)
    p.set_defaults(func=show_cmd)
    p = sub.add_parser("diff", help="Text and semantic diff: FILE or --version against the active policy")
    p.add_argument("file", type=Path, nargs="?")
    p.add_argument("--version", help="Compare a stored version (3 or v3) instead of a file")
    _remote_args(p)
    p.set_defaults(func=diff_cmd)
    p = sub.add_parser("activate", help="Make a stored version active on every replica")
    p.add_argument("version")
    _remote_args(p)
    p.set_defaults(func=activate_cmd)
    p = sub.add_parser("rollback", help="Ask for (or, as a second approver, confirm) a rollback to the version "
                                        "active before the current one, or to --to N")
    p.add_argument("--to", help="The version to restore (3 or v3)")
    p.add_argument("--reason", default="", help="Why (kept with the rollback draft and in the audit trail)")
    _remote_args(p)
    p.set_defaults(func=rollback_cmd)
    p = sub.add_parser("impact", help="Replay the last N audited decisions against FILE; print what flips")
    p.add_argument("file", type=Path)
    p.add_argument("-n", type=int, default=10_000)
    _remote_args(p)
    p.set_defaults(func=impact_cmd)
    p = sub.add_parser("block", help="Emergency block: publish a top-priority deny for a user, server or tool")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--user")
    target.add_argument("--server")
    target.add_argument("--tool", help="SERVER:TOOL or a tool name on every server")
    p.add_argument("--reason", required=True)
    _remote_args(p)
    p.set_defaults(func=block_cmd)


def _get(args: argparse.Namespace, path: str) -> tuple[int, Any]:
    token = _token(args)
    if token is None:
        return -1, None
    return _call(args, token, "GET", path, None)


def _fetch_text(args: argparse.Namespace, version: str | None) -> str | None:
    path = f"/admin/v1/policy/versions/{version}" if version else "/admin/v1/policy"
    status, answer = _get(args, path)
    if status != 200:
        if status != -1:
            _print_error(status, answer)
        return None
    return str(answer["yaml"])


def show_cmd(args: argparse.Namespace) -> int:
    """Print the policy YAML (or the PDP's JSON with --json)."""
    if _token(args) is None:
        return 2
    text = _fetch_text(args, args.version)
    if text is None:
        return 1
    print(json.dumps({"yaml": text}) if args.json else text, end="" if not args.json else "\n")
    return 0


def diff_cmd(args: argparse.Namespace) -> int:
    """Exit 0 when nothing changes in meaning, 1 when something does, 2 on errors."""
    if (args.file is None) == (args.version is None):
        error("give either FILE or --version")
        return 2
    active = _fetch_text(args, None)
    if active is None:
        return 2
    if args.file is not None:
        try:
            other, label = args.file.read_text(), str(args.file)
        except OSError as exc:
            error(f"{args.file}: {exc.strerror}")
            return 2
    else:
        fetched = _fetch_text(args, args.version)
        if fetched is None:
            return 2
        other, label = fetched, f"v{str(args.version).removeprefix('v')}"
    try:
        changes = semantic_diff(parse_policy(active), parse_policy(other))
    except PolicyInvalid as exc:
        error(f"{label}: not valid: {exc}")
        return 2
    if args.json:
        print(json.dumps({"changes": [{"kind": k, "detail": d} for k, d in changes],
                          "text_diff": text_diff(active, other, "active", label)}, indent=2))
    else:
        for kind, detail in changes:
            print(f"{kind}: {detail}")
        print(text_diff(active, other, "active", label), end="")
    return 1 if changes else 0


def _post(args: argparse.Namespace, path: str, body: Any, ok: int | tuple[int, ...] = 200) -> int:
    token = _token(args)
    if token is None:
        return 2
    status, answer = _call(args, token, "POST", path, body)
    if status not in (ok if isinstance(ok, tuple) else (ok,)):
        _print_error(status, answer)
        return 1
    print(json.dumps(answer, indent=2, default=str) if args.json else _summary(answer))
    return 0


def _summary(answer: dict[str, Any]) -> str:
    if "replayed" in answer:
        flips = answer.get("flips", {})
        lines = [f"replayed {answer['replayed']} decisions ({answer['skipped']} skipped): "
                 f"{flips.get('allow→deny', 0)} allow→deny, {flips.get('deny→allow', 0)} deny→allow"]
        if answer.get("approximate"):
            lines.append("approximate: the policy has argument conditions and audit rows carry no arguments")
        lines += [f"  {u['subject']}: {u['flip']} x{u['count']}" for u in answer.get("by_user", [])[:20]]
        return "\n".join(lines)
    if answer.get("status") == "pending_review":
        return f"rollback to {answer['restores']} is waiting for review (draft {answer['draft']}): {answer['message']}"
    return f"active: {answer.get('policy_version')} (was v{answer.get('previous')})"


def activate_cmd(args: argparse.Namespace) -> int:
    """POST .../versions/{v}/activate."""
    return _post(args, f"/admin/v1/policy/versions/{args.version}/activate", None)


def rollback_cmd(args: argparse.Namespace) -> int:
    """POST .../rollback: 202 when it waits for a second approver, 200 when this call published it."""
    body: dict[str, Any] = {"reason": args.reason}
    if args.to is not None:
        raw = str(args.to).removeprefix("v")
        if not raw.isdigit():
            error("--to must be a version number like 3 or v3")
            return 2
        body["version"] = int(raw)
    return _post(args, "/admin/v1/policy/rollback", body, ok=(200, 202))


def impact_cmd(args: argparse.Namespace) -> int:
    """POST .../impact with the file's text."""
    try:
        text = args.file.read_text()
    except OSError as exc:
        error(f"{args.file}: {exc.strerror}")
        return 2
    return _post(args, "/admin/v1/policy/impact", {"yaml": text, "n": args.n})


def block_cmd(args: argparse.Namespace) -> int:
    """POST .../block."""
    kind = "user" if args.user else "server" if args.server else "tool"
    value = args.user or args.server or args.tool
    return _post(args, "/admin/v1/policy/block", {"kind": kind, "value": value, "reason": args.reason}, ok=201)


def explain_live(args: argparse.Namespace, body: dict[str, Any]) -> int:
    """Ask the running PDP's decision API; print decision, reason, statement; exit 0 allow, 1 deny."""
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    api_token = args.api_token or os.environ.get("MCPGW_PDP_API_TOKEN")
    if api_token:
        headers["Authorization"] = f"Bearer {api_token}"
    req = urllib.request.Request(args.pdp_url.rstrip("/") + "/access/v1/evaluation", method="POST",
                                 data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        error(f"HTTP {exc.code}: {exc.read().decode(errors='replace')}")
        return 2
    except OSError as exc:
        error(f"cannot reach {args.pdp_url}: {exc}")
        return 2
    ctx = answer.get("context", {})
    print(json.dumps({"decision": "allow" if answer.get("decision") else "deny", "reason": ctx.get("reason"),
                      "statement": ctx.get("statement"), "policy_version": ctx.get("policy_version"),
                      "decision_id": ctx.get("decision_id")}, indent=2))
    return 0 if answer.get("decision") else 1
