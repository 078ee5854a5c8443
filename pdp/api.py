"""AuthZEN Authorization API 1.0 handlers: evaluation, evaluations, resource search, metadata."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pdp import native_api
from pdp.decide import evaluate
from pdp.keys import SETTINGS, STATE
from pdp.policy import Request
from pdp.policy.naming import PROMPT_PREFIX, RESOURCE_PREFIX
from pdp.state import Active
from pdp.wire import BadInput, parse_action, parse_evaluation, parse_subject
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
        parsed = [parse_evaluation(item, defaults, f"evaluations[{i}]") for i, item in enumerate(items)]
    except BadInput as exc:
        return error_response(400, "bad_request", str(exc))
    results = []
    for req, ctx in parsed:
        result = evaluate(request.app, active, req, ctx, request.remote)
        results.append(result)
        if (semantic == "deny_on_first_deny" and not result["decision"]) or (
            semantic == "permit_on_first_permit" and result["decision"]
        ):
            break
    return json_response({"evaluations": results})


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
    allowed = active.engine.search(req_base, kind, candidates)
    results = [{"type": rtype, "id": f"{server}:{name}" if name is not None else server}
               for (server, name), ok in zip(candidates, allowed, strict=True) if ok]
    _audit_search(request, active, req_base, len(candidates), len(results))
    return json_response({"results": results, "context": {"policy_version": active.version}})


def _search_input(body: Any, limit: int) -> tuple[Request, str, list[tuple[str, str | None]]]:
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
    pairs: list[tuple[str, str | None]] = []
    for i, cand in enumerate(candidates):
        server, sep, name = cand.partition(":")
        if rtype == "mcp_tool" and (not sep or not server or not name or ":" in name):
            raise BadInput(f"context.candidates[{i}] must be 'SERVER:TOOL'")
        if rtype == "mcp_server" and sep:
            raise BadInput(f"context.candidates[{i}] must be a server name without ':'")
        if rtype == "mcp_tool" and name.startswith((RESOURCE_PREFIX, PROMPT_PREFIX)):
            raise BadInput(f"context.candidates[{i}]: tool name must not start with 'resource/' or 'prompt/'")
        pairs.append((server, name if rtype == "mcp_tool" else None))
    return Request(sid, action, "", "server", None, roles, groups), str(rtype), pairs


def _audit_search(request: web.Request, active: Active, base: Request, asked: int, allowed: int) -> None:
    audit = request.app.get(AUDIT)
    if audit is None:
        return
    # One event per search (not per candidate): a tools/list over 1,000 tools is one decision.
    audit.emit(AuditEvent(
        event_type="policy_decision", service="pdp", subject=base.subject, roles=list(base.roles),
        action=f"search:{base.action}", decision="allow" if allowed else "deny",
        reason=f"{allowed} of {asked} candidates allowed", policy_version=active.version,
        client_addr=request.remote, status="success", extra={"candidates": asked, "allowed": allowed},
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
