"""AuthZEN Authorization API 1.0 handlers: evaluation, evaluations, resource search, metadata."""

from __future__ import annotations

from aiohttp import web

from pdp import native_api
from pdp.decide import evaluate
from pdp.keys import SETTINGS, STATE
from pdp.policy import Request
from pdp.state import Active
from pdp.wire import parse_evaluation, to_request
from shared import authzen
from shared.audit import AuditEvent
from shared.authzen import BadInput, UnrepresentableName
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
        batch = authzen.parse_batch(body, request.app[SETTINGS].max_batch)
        if active.native is not None:
            return json_response(await native_api.evaluations(request, active, batch.items, batch.defaults,
                                                              batch.semantic))
        parsed = batch.evaluations()
    except BadInput as exc:
        return error_response(400, "bad_request", str(exc))
    results = []
    for item in parsed:
        if isinstance(item, UnrepresentableName):  # that item's deny, not the whole batch's 400
            result = authzen.unrepresentable_answer(item)
        else:
            result = evaluate(request.app, active, to_request(item), item.context, request.remote)
        results.append(result)
        if authzen.stops(batch.semantic, result["decision"]):
            break
    return json_response(authzen.evaluations_answer(results))


async def search_resource(request: web.Request) -> web.Response:
    """POST /access/v1/search/resource: which of the named candidates the subject may use."""
    body = await read_json(request)
    active = _active(request)
    try:
        if active.native is not None:
            return json_response(await native_api.search(request, active, "resource", body))
        search = authzen.parse_search_request(body, request.app[SETTINGS].max_batch)
    except BadInput as exc:
        return error_response(400, "bad_request", str(exc))
    base = Request(search.subject, search.action, "", "server", None, search.roles, search.groups)
    # A candidate that cannot name a resource is simply not allowed: one hostile backend's tool
    # name must not fail the search (and so the catalog) for every other tool.
    valid = [c for c in search.candidates if c is not None]
    allowed = active.engine.search(base, authzen.KIND_FOR_TYPE[search.type], [(r.server, r.name) for r in valid])
    permitted = [r for r, ok in zip(valid, allowed, strict=True) if ok]
    asked = len(search.candidates)
    _audit_search(request, active, base, asked, len(permitted), asked - len(valid))
    return json_response(authzen.search_answer(search.type, permitted, active.version))


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
