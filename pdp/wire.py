"""AuthZEN request bodies → policy `Request`s: the PDP's adapter over shared/authzen (the contract).

Every shape rule lives in shared/authzen; this module only turns its `Evaluation` into the policy
model's `Request`. Every problem is a BadInput naming the field.
"""

from __future__ import annotations

from typing import Any

from pdp.policy.model import Request
from shared.authzen import (
    KIND_FOR_TYPE,
    BadInput,
    Evaluation,
    UnrepresentableName,
    parse_action,
    parse_subject,
)
from shared.authzen import parse_evaluation as parse_wire_evaluation

__all__ = ["BadInput", "UnrepresentableName", "parse_action", "parse_evaluation", "parse_subject", "to_request"]


def to_request(ev: Evaluation) -> Request:
    """The policy question an evaluation asks."""
    res = ev.resource
    return Request(ev.subject, ev.action, res.server, KIND_FOR_TYPE[res.type], res.name, ev.roles, ev.groups,
                   ev.arguments)


def parse_evaluation(body: Any, defaults: dict[str, Any] | None = None, where: str = "") -> tuple[Request, dict[str, Any]]:
    """One evaluation (fields missing from `body` come from batch `defaults`) → (Request, context)."""
    ev = parse_wire_evaluation(body, defaults, where)
    return to_request(ev), ev.context
