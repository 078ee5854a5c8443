"""Policy language: YAML model, validation, compilation to Casbin, and the fast decision index."""

from pdp.policy.compile import Compiled, Statement, compile_policy
from pdp.policy.index import Engine, Outcome
from pdp.policy.model import Policy, Request
from pdp.policy.validate import PolicyError, PolicyInvalid, parse_policy

__all__ = [
    "Compiled", "Engine", "Outcome", "Policy", "PolicyError", "PolicyInvalid", "Request", "Statement",
    "compile_policy", "load_engine", "parse_policy",
]


def load_engine(text: str, version: str, cache_size: int = 100_000) -> Engine:
    """Validate, compile and index policy text in one step (raises PolicyInvalid)."""
    return Engine(compile_policy(parse_policy(text)), version, cache_size)
