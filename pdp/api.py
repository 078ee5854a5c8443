"""AuthZEN Authorization API 1.0 handlers: evaluation, evaluations, resource search, metadata."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pdp import native_api
from pdp.decide import evaluate
from pdp.keys import SETTINGS, STATE
from pdp.policy import Request
from pdp.policy.naming import RESERVED_PREFIXES
from pdp.state import Active
from pdp.wire import BadInput, UnrepresentableName, parse_action, parse_evaluation, parse_subject
from shared import authzen
from shared.audit import AuditEvent
from shared.jsonutil import error_response, json_response, read_json
from shared.keys import AUDIT


def _active(request: web.Request) -> Active:
    active = request.app[STATE].current
    if active is None:  # fail closed: no policy, no answers
        raise web.HTTPServiceUnavailable(text='{"error": {"code": "no_policy", "message": "no policy loaded"}}',  # noqa: E501
                                         content_type="application/json")
    return active


async def evaluation(request: web.Request) -> web.Response:
    """POST /access/v1/evaluation."""
    body = await read_json(request)
    active = _active(request)
    try:
        if active.native is not None:
            return json_response(await native_api.evaluation(request, active, body))
        req, ctx = parse_evaluation(body)
    except BadInput as exc:
        return error_response(400, "bad_request", str(exc))
    return json_response(evaluate(request.app, active, req, ctx, request.remote))


async def evaluations(request: web.Request) -> web.Response:
    """POST /access/v1/evaluations (batch, with evaluations_semantic)."""
    body = await read_json(request)
    active = _active(request)  # one version answers the whole batch
    try:
        items, defaults, semantic = _batch(body, request.app[SETTINGS].max_batch)
        if active.native is not None:
            return json_response(await native_api.evaluations(request, active, items, defaults, semantic))
        parsed = [_parse_item(item, defaults, f"evaluations[{i}]") for i, item in enumerate(items)]
    except BadInput as exc:
        return error_response(400, "bad_request", str(exc))
    results = []
    for item in parsed:
        result = item if isinstance(item, dict) else evaluate(request.app, active, *item, request.remote)
        results.append(result)
        if (semantic == "deny_on_first_deny" and not result["decision"]) or (
            semantic == "permit_on_first_permit" and result["decision"]
        ):
            break
    return json_response({"evaluations": results})


def _parse_item(item: Any, defaults: dict[str, Any], where: str) -> tuple[Request, dict[str, Any]] | dict[str, Any]:
    """One batch item parsed, or the deny answered for a resource name that cannot be represented."""
    try:
        return parse_evaluation(item, defaults, where)
    except UnrepresentableName as exc:
        return {"decision": False, "context": {"reason": f"unrepresentable resource: {exc}",
                                               "error": {"code": "bad_resource_name", "message": str(exc)}}}


def _batch(body: Any, limit: int) -> tuple[list[Any], dict[str, Any], str]:
    if not isinstance(body, dict):
        raise BadInput("body must be an object")
    items = body.get("evaluations")
    defaults = {k: body[k] for k in ("subject", "action", "resource", "context") if k in body}
    if items is None:  # AuthZEN: without `evaluations` the request is a single evaluation
        items = [{}]
    if not isinstance(items, list) or not items:
        raise BadInput("evaluations must be a non-empty list")
    if len(items) > limit:
        raise BadInput(f"evaluations has {len(items)} items; at most {limit} per request")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise BadInput("options must be an object")
    semantic = options.get("evaluations_semantic", "execute_all")
    if semantic not in authzen.SEMANTICS:
        raise BadInput(f"options.evaluations_semantic must be one of {', '.join(authzen.SEMANTICS)}")
    return items, defaults, semantic


async def search_resource(request: web.Request) -> web.Response:
    """POST /access/v1/search/resource: which of the named candidates the subject may use."""
    body = await read_json(request)
    active = _active(request)
    try:
        if active.native is not None:
            return json_response(await native_api.search(request, active, "resource", body))
        req_base, rtype, candidates = _search_input(body, request.app[SETTINGS].max_batch)
    except BadInput as exc:
        return error_response(400, "bad_request", str(exc))
    kind = "tool" if rtype == "mcp_tool" else "server"
    # A candidate that cannot name a resource is simply not allowed: one hostile backend's tool
    # name must not fail the search (and so the catalog) for every other tool.
    valid = [c for c in candidates if c is not None]
    allowed = active.engine.search(req_base, kind, valid)
    results = [{"type": rtype, "id": f"{server}:{name}" if name is not None else server}
               for (server, name), ok in zip(valid, allowed, strict=True) if ok]
    _audit_search(request, active, req_base, len(candidates), len(results), len(candidates) - len(valid))
    return json_response({"results": results, "context": {"policy_version": active.version}})


def _search_input(body: Any, limit: int) -> tuple[Request, str, list[tuple[str, str | None] | None]]:
    if not isinstance(body, dict):
        raise BadInput("body must be an object")
    sid, roles, groups = parse_subject(body.get("subject"))
    action = parse_action(body.get("action"))
    resource = body.get("resource")
    rtype = resource.get("type") if isinstance(resource, dict) else None
    if (rtype, action) != ("mcp_tool", "invoke_tool") and not (rtype == "mcp_server" and action in authzen.SERVER_ACTIONS):
        raise BadInput("search supports resource.type 'mcp_tool' with invoke_tool, or 'mcp_server' with a server action")
    context = body.get("context")
    candidates = context.get("candidates") if isinstance(context, dict) else None
    if not isinstance(candidates, list) or not all(isinstance(c, str) and c for c in candidates):
        raise BadInput("context.candidates must be a list of non-empty strings")
    if len(candidates) > limit:
        raise BadInput(f"context.candidates has {len(candidates)} items; at most {limit} per request")
    pairs = [_candidate(rtype, cand) for cand in candidates]
    return Request(sid, action, "", "server", None, roles, groups), str(rtype), pairs


def _candidate(rtype: Any, cand: str) -> tuple[str, str | None] | None:
    """(server, tool) of one search candidate; None when it cannot name a resource (never allowed)."""
    server, sep, name = cand.partition(":")
    if rtype == "mcp_server":
        return None if sep else (server, None)
    if not sep or not server or not name or ":" in name or name.startswith(RESERVED_PREFIXES):
        return None
    return server, name


def _audit_search(request: web.Request, active: Active, base: Request, asked: int, allowed: int,
                  invalid: int = 0) -> None:
    audit = request.app.get(AUDIT)
    if audit is None:
        return
    # One event per search (not per candidate): a tools/list over 1,000 tools is one decision.
    audit.emit(AuditEvent(
        event_type="policy_decision", service="pdp", subject=base.subject, roles=list(base.roles),
        action=f"search:{base.action}", decision="allow" if allowed else "deny",
        reason=f"{allowed} of {asked} candidates allowed", policy_version=active.version,
        client_addr=request.remote, status="success",
        extra={"candidates": asked, "allowed": allowed, **({"invalid": invalid} if invalid else {})},
    ))


async def search_subject(request: web.Request) -> web.Response:
    """POST /access/v1/search/subject (native Casbin versions)."""
    return await _native_search(request, "subject")


async def search_action(request: web.Request) -> web.Response:
    """POST /access/v1/search/action (native Casbin versions)."""
    return await _native_search(request, "action")


async def _native_search(request: web.Request, kind: str) -> web.Response:
    body = await read_json(request)
    active = _active(request)
    if active.native is None:
        return error_response(400, "bad_request", f"search/{kind} is answered for native Casbin policy versions; "
                                                  "YAML policies answer search/resource")
    try:
        return json_response(await native_api.search(request, active, kind, body))
    except BadInput as exc:
        return error_response(400, "bad_request", str(exc))


async def configuration(request: web.Request) -> web.Response:
    """GET /.well-known/authzen-configuration (PDP metadata)."""
    base = f"{request.scheme}://{request.host}"
    return json_response({
        "policy_decision_point": base,
        "access_evaluation_endpoint": base + authzen.EVALUATION_PATH,
        "access_evaluations_endpoint": base + authzen.EVALUATIONS_PATH,
        "search_resource_endpoint": base + authzen.SEARCH_RESOURCE_PATH,
        "search_subject_endpoint": base + native_api.SEARCH_PATHS["subject"],
        "search_action_endpoint": base + native_api.SEARCH_PATHS["action"],
        "capabilities": ["mcpgw:" + authzen.WIRE_VERSION],
    })


def setup_routes(app: web.Application) -> None:
    """Register the AuthZEN routes."""
    app.router.add_post(authzen.EVALUATION_PATH, evaluation)
    app.router.add_post(authzen.EVALUATIONS_PATH, evaluations)
    app.router.add_post(authzen.SEARCH_RESOURCE_PATH, search_resource)
    app.router.add_post(native_api.SEARCH_PATHS["subject"], search_subject)
    app.router.add_post(native_api.SEARCH_PATHS["action"], search_action)
    app.router.add_get(authzen.CONFIGURATION_PATH, configuration)
