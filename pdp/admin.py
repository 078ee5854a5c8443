"""Policy admin API (JSON): read, validate, create versions, activate (roll back: pdp/admin_ops.py).

Every call needs a bearer JWT carrying one of `admin_roles`. A change is validated completely
before anything is stored; a failed change leaves the active version untouched.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from pdp import store
from pdp.keys import ADMIN_AUTH, ADMIN_PRINCIPAL, SETTINGS, STATE
from pdp.policy import PolicyInvalid, compile_policy, parse_policy
from pdp.policy.native import parse_native
from pdp.policy.validate import TOP_KEYS
from pdp.publish import apply_active
from shared.auth import AuthError, Principal, authorization_header
from shared.jsonutil import dumps_str, error_response, json_response, read_json
from shared.keys import DB_POOL

PREFIX = "/admin/v1/policy"


async def _admin(request: web.Request) -> Principal:
    settings = request.app[SETTINGS]
    if ADMIN_AUTH not in request.app:
        raise _error(404, "admin_disabled", "the admin API is disabled (set MCPGW_PDP_ADMIN_ISSUER and _AUDIENCE)")
    try:
        principal = await request.app[ADMIN_AUTH].authenticate(authorization_header(request.headers))
    except AuthError as exc:
        # 400 for a malformed request (two Authorization headers); 401 for everything else.
        raise _error(400 if exc.status == 400 else 401, "unauthorized", str(exc)) from None
    if not principal.has_any_role(settings.admin_roles):
        raise _error(403, "forbidden", f"requires one of the roles: {', '.join(settings.admin_roles)}")
    request[ADMIN_PRINCIPAL] = principal
    return principal


_STATUS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 404: web.HTTPNotFound,
    409: web.HTTPConflict, 422: web.HTTPUnprocessableEntity,
}


def _error(status: int, code: str, message: str, **extra: Any) -> web.HTTPException:
    # `text=`: aiohttp 3.14 deprecates `body=` on HTTP exceptions.
    return _STATUS[status](text=dumps_str({"error": {"code": code, "message": message, **extra}}),
                           content_type="application/json")


def _pool(request: web.Request) -> asyncpg.Pool:
    if request.app[SETTINGS].policy_source != "database" or DB_POOL not in request.app:
        raise _error(409, "file_mode", "policy is managed by a file in this PDP; edit the file instead")
    return request.app[DB_POOL]


async def _candidate(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("yaml", body.get("casbin")), str | dict) or (
            ("yaml" in body) == ("casbin" in body)):
        raise _error(400, "bad_request", "body must be an object with a string 'yaml' "
                                         "or, for a native Casbin version, 'casbin': {'model', 'policy'}")
    unknown = set(body) - {"yaml", "casbin", "comment", "activate"}
    if unknown:
        raise _error(400, "bad_request", f"unknown field(s): {', '.join(sorted(unknown))}")
    if "casbin" in body:
        body["yaml"], body["model"] = _native_pair(body.pop("casbin"))
    if not isinstance(body["yaml"], str):
        raise _error(400, "bad_request", "'yaml' must be a string")
    if not isinstance(body.get("comment", ""), str) or not isinstance(body.get("activate", True), bool):
        raise _error(400, "bad_request", "'comment' must be a string and 'activate' a boolean")
    body["statements"] = _statements(body["yaml"], body.get("model"))
    return body


def _native_pair(value: Any) -> tuple[str, str]:
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in ("model", "policy")):
        raise _error(400, "bad_request", "'casbin' must be an object with string 'model' and 'policy'")
    if unknown := set(value) - {"model", "policy"}:
        raise _error(400, "bad_request", f"unknown field(s) in 'casbin': {', '.join(sorted(unknown))}")
    return value["policy"], value["model"]


def _statements(text: str, model: str | None = None) -> int:
    """Validate and compile policy text (or a native pair); 422 with every error when it is invalid."""
    try:
        if model is not None:
            return len(parse_native(model, text).lines)
        return len(compile_policy(parse_policy(text)).statements)
    except PolicyInvalid as exc:
        raise _error(422, "invalid_policy", f"policy has {len(exc.errors)} error(s)",
                     errors=[e.to_dict() for e in exc.errors]) from None


async def _check_stored(pool: asyncpg.Pool, version: int) -> None:
    """Refuse to activate a stored version this PDP cannot load (e.g. stored before validation got
    stricter): activating it would commit a version no replica serves."""
    row = await store.get_version(pool, version)
    if row is not None:
        _statements(row["yaml"], row["model"])


async def get_policy(request: web.Request) -> web.Response:
    """GET /admin/v1/policy?format=yaml|json."""
    await _admin(request)
    active = request.app[STATE].current
    if active is None:
        return error_response(503, "no_policy", "no policy loaded")
    if active.model is not None:  # a native Casbin version
        return json_response({"policy_version": active.version, "sha256": active.sha256, "kind": "casbin",
                              "casbin": {"model": active.model, "policy": active.yaml}})
    if request.query.get("format", "json") == "yaml":
        return web.Response(text=active.yaml, content_type="application/yaml",
                            headers={"X-Policy-Version": active.version})
    import yaml

    return json_response({"policy_version": active.version, "sha256": active.sha256, "yaml": active.yaml,
                          "policy": {k: v for k, v in (yaml.safe_load(active.yaml) or {}).items() if k in TOP_KEYS}})


async def validate(request: web.Request) -> web.Response:
    """POST /admin/v1/policy/validate {yaml}: 200 when valid, 422 with every error."""
    await _admin(request)
    body = await _candidate(request)
    return json_response({"valid": True, "statements": body["statements"]})


async def create_version(request: web.Request) -> web.Response:
    """POST /admin/v1/policy/versions {yaml, comment, activate=true}."""
    who = await _admin(request)
    pool = _pool(request)
    body = await _candidate(request)
    version, previous = await store.create_version(pool, body["yaml"], who.subject, body.get("comment", ""),
                                                   activate=body.get("activate", True), model=body.get("model"))
    if body.get("activate", True):
        await _apply_active(request, who, "create", previous, version)
    return json_response({"version": version, "policy_version": store.version_label(version),
                          "active": body.get("activate", True)}, status=201)


async def list_versions(request: web.Request) -> web.Response:
    """GET /admin/v1/policy/versions."""
    await _admin(request)
    rows = await store.list_versions(_pool(request))
    return json_response({"versions": [store.row_to_json(r) for r in rows]})


async def get_version(request: web.Request) -> web.Response:
    """GET /admin/v1/policy/versions/{version}."""
    await _admin(request)
    row = await store.get_version(_pool(request), _version_arg(request))
    if row is None:
        return error_response(404, "not_found", "no such policy version")
    return json_response(store.row_to_json(row, with_yaml=True))


async def activate(request: web.Request) -> web.Response:
    """POST /admin/v1/policy/versions/{version}/activate."""
    who = await _admin(request)
    version = _version_arg(request)
    pool = _pool(request)
    await _check_stored(pool, version)
    try:
        previous = await store.activate(pool, version)
    except KeyError:
        return error_response(404, "not_found", f"no policy version {version}")
    await _apply_active(request, who, "activate", previous, version)
    return json_response({"policy_version": store.version_label(version), "previous": previous})


def _version_arg(request: web.Request) -> int:
    raw = request.match_info["version"].removeprefix("v")
    if not raw.isdigit():
        raise _error(400, "bad_request", "version must be a number like 3 or v3")
    return int(raw)


async def _apply_active(request: web.Request, who: Principal, op: str, previous: int | None, version: int) -> None:
    """Load the new active version here at once (other replicas hear NOTIFY) and audit the change."""
    await apply_active(request.app, subject=who.subject, roles=list(who.roles), op=op, previous=previous,
                       version=version, remote=request.remote)


def setup_routes(app: web.Application) -> None:
    """Register the admin routes."""
    app.router.add_get(PREFIX, get_policy)
    app.router.add_post(PREFIX + "/validate", validate)
    app.router.add_get(PREFIX + "/versions", list_versions)
    app.router.add_post(PREFIX + "/versions", create_version)
    app.router.add_get(PREFIX + "/versions/{version}", get_version)
    app.router.add_post(PREFIX + "/versions/{version}/activate", activate)
