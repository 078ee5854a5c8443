"""Casbin-facing CLI pieces: `policy explain` through stock `enforce_ex`, native pair validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pdp.policy import Engine, PolicyInvalid, Request
from pdp.policy.naming import resource_string
from shared.clierror import problems


def explain(engine: Engine, text: str, req: Request) -> dict[str, Any]:
    """The decision with Casbin's own deciding line (`enforce_ex`) next to the YAML it came from."""
    from pdp.policy.casbin_engine import build_enforcer, casbin_decide
    from pdp.policy.lines import statement_sources

    stmt = casbin_decide(build_enforcer(engine.compiled), engine.compiled, req)
    fast = engine.decide(req).statement
    source = statement_sources(text, engine.compiled).get(stmt.index)
    return {"decision": stmt.effect, "reason": stmt.reason(), "statement": stmt.describe(),
            "casbin": {"enforce_ex": ", ".join(stmt.casbin_line()), "cond": _cond(stmt)},
            "yaml": source.to_dict() if source else None, "fast_path_agrees": fast.index == stmt.index,
            "effective_roles": sorted(engine.effective_roles(req.subject, req.roles, req.groups)),
            "resource": resource_string(req), "policy_version": engine.version}


def _cond(stmt: Any) -> str | None:
    return condition_text(stmt.condition) if stmt.condition is not None else None


def condition_text(cond: Any) -> str:
    """A rule condition as compact JSON (for `compile` and `explain`)."""
    import json
    from dataclasses import asdict

    return json.dumps({k: v for k, v in asdict(cond).items() if v not in (None, ())}, default=str)


def validate_native(model_path: Path, policy_path: Path) -> int:
    """A native pair: errors as FILE:LINE: PATH: MESSAGE, in the model or the policy file."""
    from pdp.policy.native import parse_native

    try:
        native = parse_native(model_path.read_text(), policy_path.read_text())
    except PolicyInvalid as exc:
        problems(f"{model_path} + {policy_path} is not a valid Casbin pair",
                 [f"{policy_path if err.path == 'policy' else model_path}:{err.line or 0}: {err.path}: {err.message}"
                  for err in exc.errors])
        return 1
    mapping = ", ".join(f"r.{t} = {s}" for t, s in native.mapping.describe().items())
    print(f"{model_path} + {policy_path}: valid ({len(native.lines)} policy lines; {mapping})")
    return 0
