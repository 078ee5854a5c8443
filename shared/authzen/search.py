"""Resource search (POST /access/v1/search/resource), both sides.

The PEP names its candidates (`SERVER` or `SERVER:TOOL`); only candidates it asked about can come
back allowed. A candidate that cannot name a resource is never allowed and never fails the search.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.authzen.evaluation import check_name, parse_action, parse_subject
from shared.authzen.tables import (
    TYPE_FOR_ACTION,
    BadInput,
    Resource,
    UnrepresentableName,
    WireError,
    searchable,
)

# -- the PEP's side ---------------------------------------------------------------------------


def search_request(subject: dict[str, Any], action: str, candidates: Sequence[Resource]) -> dict[str, Any]:
    """Body of a resource search for `action` over `candidates` (all of the action's type)."""
    rtype = TYPE_FOR_ACTION[action]
    if not searchable(rtype, action) or any(r.type != rtype for r in candidates):
        raise ValueError(f"no resource search for {action!r} over these candidates")
    return {"subject": subject, "action": {"name": action}, "resource": {"type": rtype},
            "context": {"candidates": [r.id for r in candidates]}}


def parse_search(body: Any, resource_type: str) -> tuple[set[str], str | None]:
    """Read a resource-search answer strictly: the permitted ids and the policy version."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise WireError("PDP search answer has no 'results' list")
    ids: set[str] = set()
    for item in body["results"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise WireError("PDP search result is not a {type, id} object")
        if item.get("type") != resource_type:
            raise WireError("PDP search result has the wrong resource type")
        ids.add(item["id"])
    ctx = body.get("context")
    ctx = {} if ctx is None else ctx
    if not isinstance(ctx, dict):
        raise WireError("PDP search answer 'context' is not an object")
    version = ctx.get("policy_version")
    return ids, version if isinstance(version, str) else None


# -- the PDP's side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """A resource search as the PDP reads it; an unnameable candidate is None."""

    subject: str
    action: str
    type: str
    candidates: list[Resource | None]
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


def candidate(rtype: str, cand: str) -> Resource | None:
    """The resource one search candidate names; None when it cannot name one (never allowed)."""
    server, sep, name = cand.partition(":")
    if rtype == "mcp_server":
        return None if sep else Resource(rtype, server)
    if not sep or not server or not name:
        return None
    try:
        check_name(rtype, server, name, "candidate")
    except UnrepresentableName:
        return None
    return Resource(rtype, server, name)


def parse_search_request(body: Any, limit: int) -> Search:
    """Read a resource search strictly: a searchable (type, action), at most `limit` string candidates."""
    if not isinstance(body, dict):
        raise BadInput("body must be an object")
    sid, roles, groups = parse_subject(body.get("subject"))
    action = parse_action(body.get("action"))
    resource = body.get("resource")
    rtype = resource.get("type") if isinstance(resource, dict) else None
    if not isinstance(rtype, str) or not searchable(rtype, action):
        raise BadInput("search supports resource.type 'mcp_tool' with invoke_tool, or 'mcp_server' with a server action")
    context = body.get("context")
    candidates = context.get("candidates") if isinstance(context, dict) else None
    if not isinstance(candidates, list) or not all(isinstance(c, str) and c for c in candidates):
        raise BadInput("context.candidates must be a list of non-empty strings")
    if len(candidates) > limit:
        raise BadInput(f"context.candidates has {len(candidates)} items; at most {limit} per request")
    return Search(sid, action, rtype, [candidate(rtype, c) for c in candidates], roles, groups)


def search_answer(rtype: str, allowed: Iterable[Resource], version: str) -> dict[str, Any]:
    """The AuthZEN resource-search response body."""
    return {"results": [{"type": rtype, "id": r.id} for r in allowed], "context": {"policy_version": version}}
