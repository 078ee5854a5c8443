"""The one versioned wire contract between gateway and PDP (OpenID AuthZEN Authorization API 1.0).

Both services build and read decision messages only through this package, so the shapes live in
one place: `tables` (version, paths, actions, resource types, `Resource`), `evaluation` (one
decision), `batch` (evaluations + semantics) and `search` (resource search). Each message module
holds both sides: the PEP's builder and strict answer parser, the PDP's strict request parser and
answer builder. The PEP reads a malformed answer as `WireError` (deny); the PDP answers a malformed
request with `BadInput` (400). See docs/architecture.md, "The wire contract".
"""

from shared.authzen.batch import (
    Batch,
    Check,
    evaluations_answer,
    evaluations_request,
    parse_batch,
    parse_evaluations,
    stops,
    unrepresentable_answer,
)
from shared.authzen.evaluation import (
    Decision,
    Evaluation,
    check_name,
    decision_answer,
    evaluation_request,
    parse_action,
    parse_context,
    parse_decision,
    parse_evaluation,
    parse_resource,
    parse_subject,
    subject_to_wire,
)
from shared.authzen.search import (
    Search,
    candidate,
    parse_search,
    parse_search_request,
    search_answer,
    search_request,
)
from shared.authzen.tables import (
    ACTIONS,
    CONFIGURATION_PATH,
    EVALUATION_PATH,
    EVALUATIONS_PATH,
    KIND_FOR_TYPE,
    NAME_PROPERTY,
    POLICY_CHANNEL,
    RESERVED_PREFIXES,
    RESOURCE_TYPES,
    SEARCH_RESOURCE_PATH,
    SEMANTICS,
    SERVER_ACTIONS,
    TYPE_FOR_ACTION,
    WIRE_VERSION,
    BadInput,
    Resource,
    UnrepresentableName,
    WireError,
    resource_for,
    searchable,
    server_resource,
    tool_resource,
    version_label,
)

__all__ = [
    "ACTIONS", "CONFIGURATION_PATH", "EVALUATIONS_PATH", "EVALUATION_PATH", "KIND_FOR_TYPE", "NAME_PROPERTY", "POLICY_CHANNEL",
    "RESERVED_PREFIXES", "RESOURCE_TYPES", "SEARCH_RESOURCE_PATH", "SEMANTICS", "SERVER_ACTIONS", "TYPE_FOR_ACTION",
    "WIRE_VERSION", "BadInput", "Batch", "Check", "Decision", "Evaluation", "Resource", "Search",
    "UnrepresentableName", "WireError", "candidate", "check_name", "decision_answer", "evaluation_request",
    "evaluations_answer", "evaluations_request", "parse_action", "parse_batch", "parse_context", "parse_decision",
    "parse_evaluation", "parse_evaluations", "parse_resource", "parse_search", "parse_search_request",
    "parse_subject", "resource_for", "search_answer", "search_request", "searchable", "server_resource", "stops",
    "subject_to_wire", "tool_resource", "unrepresentable_answer", "version_label",
]
