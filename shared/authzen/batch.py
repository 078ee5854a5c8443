"""A batch of evaluations (POST /access/v1/evaluations), both sides.

AuthZEN: top-level `subject`, `action`, `resource` and `context` are defaults each item may
replace; an item's own `context` replaces the default one, so the PEP puts its facts in each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.authzen.evaluation import (
    Decision,
    Evaluation,
    evaluation_request,
    parse_decision,
    parse_evaluation,
)
from shared.authzen.tables import SEMANTICS, BadInput, Resource, UnrepresentableName, WireError

Check = tuple[str, Resource, Mapping[str, Any] | None]  # (action, resource, arguments)

# -- the PEP's side ---------------------------------------------------------------------------


def evaluations_request(
    subject: dict[str, Any], checks: Sequence[Check], facts: dict[str, Any] | None = None,
    semantic: str = "execute_all",
) -> dict[str, Any]:
    """Body of POST /access/v1/evaluations: one subject, one item per (action, resource, arguments)."""
    if semantic not in SEMANTICS:
        raise ValueError(f"unknown evaluations semantic {semantic!r}")
    items = []
    for action, resource, arguments in checks:
        single = evaluation_request({}, action, resource, None if arguments is None else dict(arguments), facts)
        items.append({k: single[k] for k in ("action", "resource", "context")})
    return {"subject": subject, "context": dict(facts or {}), "evaluations": items,
            "options": {"evaluations_semantic": semantic}}


def parse_evaluations(body: Any, expected: int) -> list[Decision]:
    """Read a batch answer strictly: exactly `expected` well-formed decisions."""
    if not isinstance(body, dict) or not isinstance(body.get("evaluations"), list):
        raise WireError("PDP batch answer has no 'evaluations' list")
    if len(body["evaluations"]) != expected:
        raise WireError("PDP batch answer has the wrong number of evaluations")
    return [parse_decision(item) for item in body["evaluations"]]


# -- the PDP's side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """A batch request checked for shape: raw items, the defaults they inherit, the semantic."""

    items: list[Any]
    defaults: dict[str, Any]
    semantic: str

    def evaluations(self) -> list[Evaluation | UnrepresentableName]:
        """Each item parsed strictly; an unrepresentable name is that item's own refusal."""
        out: list[Evaluation | UnrepresentableName] = []
        for i, item in enumerate(self.items):
            try:
                out.append(parse_evaluation(item, self.defaults, f"evaluations[{i}]"))
            except UnrepresentableName as exc:
                out.append(exc)
        return out


def parse_batch(body: Any, limit: int) -> Batch:
    """Read a batch request's envelope: at most `limit` items, a known semantic (BadInput otherwise)."""
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
    if semantic not in SEMANTICS:
        raise BadInput(f"options.evaluations_semantic must be one of {', '.join(SEMANTICS)}")
    return Batch(items, defaults, semantic)


def stops(semantic: str, allowed: bool) -> bool:
    """True when `semantic` ends the batch after a decision of `allowed`."""
    return (semantic == "deny_on_first_deny" and not allowed) or (semantic == "permit_on_first_permit" and allowed)


def unrepresentable_answer(exc: UnrepresentableName) -> dict[str, Any]:
    """The deny answered for one batch item whose resource cannot be named."""
    return {"decision": False, "context": {"reason": f"unrepresentable resource: {exc}",
                                           "error": {"code": "bad_resource_name", "message": str(exc)}}}


def evaluations_answer(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The AuthZEN batch response body."""
    return {"evaluations": list(results)}
