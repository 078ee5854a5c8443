"""Decisions for one native Casbin version: stock `enforce_ex`, a per-version cache, enumeration.

Native models are not indexed: every cache miss runs pycasbin's `enforce_ex` (synchronous, it scans
the policy), so the HTTP layer calls `decide`/`batch`/`search` in a worker thread. The cache key is
the whole canonical request body, so a context-dependent (ABAC) matcher is cached correctly too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from pdp.policy.native import NativePolicy, PolicyLine, build_native_enforcer
from pdp.policy.native_map import enforce_args

SEARCHABLE = {"subject": ("subject", "subject.id"), "resource": ("resource", "resource.id"),
              "action": ("action", "action.name")}


@dataclass(frozen=True)
class NativeOutcome:
    """A native decision: the deciding policy line (as `enforce_ex` names it), or an error."""

    allowed: bool
    rule: tuple[str, ...] = ()
    line: PolicyLine | None = None
    error: str | None = None
    cached: bool = False

    def reason(self) -> str:
        """A short sentence safe to show a caller."""
        if self.error is not None:
            return "deny: the request could not be evaluated by this policy"
        if self.rule:
            return f"{'allow' if self.allowed else 'deny'} by policy line {', '.join(self.rule)}"
        return f"{'allow' if self.allowed else 'deny'} by the policy effect (no line matched)"

    def describe(self) -> dict[str, Any]:
        """The `statement` object of an AuthZEN answer."""
        out: dict[str, Any] = {"kind": "casbin", "effect": "allow" if self.allowed else "deny",
                               "rule": list(self.rule)}
        if self.line is not None:
            out["policy_line"] = self.line.line
            out["ptype"] = self.line.ptype
        if self.error is not None:
            out["error"] = self.error
        return out


class NativeEngine:
    """One native version's enforcer and cache; call from a worker thread (enforce is blocking)."""

    def __init__(self, native: NativePolicy, version: str, cache_size: int = 100_000) -> None:
        self.native = native
        self.version = version
        self.cache_size = cache_size
        self.enforcer = build_native_enforcer(native)
        self._lock = threading.Lock()  # pycasbin makes no thread-safety promise
        self._cache: dict[bytes, NativeOutcome] = {}
        self._lines: dict[tuple[str, ...], PolicyLine] = {}
        for pl in native.lines:
            if pl.ptype.startswith("p"):
                self._lines.setdefault(pl.fields, pl)

    @staticmethod
    def key(body: dict[str, Any]) -> bytes:
        """The cache key of a merged evaluation body."""
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)

    def cached(self, key: bytes) -> NativeOutcome | None:
        """A cache hit (safe on the event loop)."""
        hit = self._cache.get(key)
        return NativeOutcome(hit.allowed, hit.rule, hit.line, hit.error, cached=True) if hit is not None else None

    def decide(self, body: dict[str, Any], key: bytes | None = None) -> NativeOutcome:
        """Enforce one evaluation (KeyError when the mapping needs a value the body lacks)."""
        key = key if key is not None else self.key(body)
        hit = self.cached(key)
        if hit is not None:
            return hit
        args = enforce_args(self.native.mapping, body)
        try:
            with self._lock:
                allowed, explain = self.enforcer.enforce_ex(*args)
            rule = tuple(explain)
            outcome = NativeOutcome(bool(allowed), rule, self._lines.get(rule))
        except Exception as exc:  # noqa: BLE001 - fail closed: a matcher error is a deny
            outcome = NativeOutcome(False, error=f"{type(exc).__name__}: {exc}")
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[key] = outcome
        return outcome

    def batch(self, bodies: Iterable[dict[str, Any]], semantic: str) -> list[NativeOutcome]:
        """Decide in order, stopping as `semantic` says (AuthZEN evaluations)."""
        out = []
        for i, body in enumerate(bodies):
            try:
                outcome = self.decide(body)
            except KeyError as exc:
                raise KeyError(f"evaluations[{i}]: {exc.args[0]}") from None
            out.append(outcome)
            if (semantic == "deny_on_first_deny" and not outcome.allowed) or (
                semantic == "permit_on_first_permit" and outcome.allowed
            ):
                break
        return out

    def candidates(self, kind: str) -> list[str]:
        """Values of `kind` (subject/resource/action) named in the policy, for search by enumeration.

        Two places name them: policy columns whose name equals the request token mapped to `kind`
        (`p.sub` for `r.sub`), and the left side of every role relation the matcher calls with that
        token first (`g2(r.obj.id, ...)` lists resources on the left of `g2` lines). Names on the
        right of those relations (roles, groups, departments) are not candidates themselves.
        """
        mapping = self.native.mapping
        tokens = {t for t, s in zip(mapping.tokens, mapping.sources, strict=True) if s in SEARCHABLE[kind]}
        model = self.enforcer.get_model().model
        found: dict[str, None] = {}
        for ptype, assertion in model.get("p", {}).items():
            columns = [i for i, name in enumerate(assertion.tokens) if name[len(ptype) + 1:] in tokens]
            for pl in self.native.lines:
                if pl.ptype == ptype:
                    for i in columns:
                        found.setdefault(pl.fields[i], None)
        relations = set().union(*(self.native.relations.get(t, set()) for t in tokens))
        rights = set()
        for pl in self.native.lines:
            if pl.ptype in relations:
                found.setdefault(pl.fields[0], None)
                rights.add(pl.fields[1])
        return [c for c in found if c not in rights]

    def search(self, kind: str, base: dict[str, Any], rtype: str | None, candidates: list[str]) -> list[str]:
        """The candidates `base` allows when put in the `kind` slot."""
        allowed = []
        for cand in candidates:
            body = dict(base)
            body[kind] = {"name": cand} if kind == "action" else {**(base.get(kind) or {}), "type": rtype, "id": cand}
            try:
                if self.decide(body).allowed:
                    allowed.append(cand)
            except KeyError:
                continue
        return allowed
