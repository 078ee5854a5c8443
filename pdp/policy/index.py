"""The fast decision path: the same statements as Casbin, indexed, with per-version caches.

Statements are partitioned by owner (a role, or the rules bucket), action and server literal;
a request looks only at the buckets of its effective roles, its action (and `*`), and its server
(and the wildcard-server bucket), then picks the matching statement with the lowest index —
exactly the line Casbin's priority effect would pick. An Engine is immutable once built: reloads
build a new Engine and swap the reference, so caches never outlive their policy version.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from pdp.policy.compile import Compiled, Statement
from pdp.policy.conditions import condition_holds
from pdp.policy.model import Request
from pdp.policy.naming import glob_match, resource_string

_RULES = "\x00rules"  # bucket owner for rules (no role name can be this)
_ANY_SERVER = "\x00*"


@dataclass(frozen=True)
class Outcome:
    """A decision: allowed or not, and the statement that decided."""

    allowed: bool
    statement: Statement
    cached: bool = False


def _server_key(pattern: str) -> str:
    if pattern == "*":
        return _ANY_SERVER
    server = pattern.split(":")[1]
    return _ANY_SERVER if "*" in server else server


class Engine:
    """Decisions for one policy version; thread-compatible, never mutated except its caches."""

    def __init__(self, compiled: Compiled, version: str, cache_size: int = 100_000) -> None:
        self.compiled = compiled
        self.version = version
        self.cache_size = cache_size
        policy = compiled.policy
        self.closure = {name: self._close(name) for name in policy.roles}
        self.user_roles = {u: self._union(rs) for u, rs in policy.user_roles.items()}
        self.group_roles = {g: self._union(rs) for g, rs in policy.group_roles.items()}
        index: dict[str, dict[str, dict[str, list[Statement]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
        uses_user = uses_group = uses_args = False
        for s in compiled.statements:
            if s.kind == "role":
                index[s.role or ""][s.action][_server_key(s.resource)].append(s)
            elif s.kind == "rule" and s.condition is not None:
                c = s.condition
                uses_user |= c.users is not None
                uses_group |= c.groups is not None
                uses_args |= bool(c.arguments)
                server = c.mcp_server if c.mcp_server and "*" not in c.mcp_server else _ANY_SERVER
                for action in c.actions if c.actions and "*" not in c.actions else ("*",):
                    index[_RULES][action][server].append(s)
        # Plain dicts: a defaultdict lookup on a miss would grow the index per request.
        self.index = {o: {a: dict(srv) for a, srv in acts.items()} for o, acts in index.items()}
        self.default = compiled.statements[-1]
        self.uses_user, self.uses_group, self.uses_args = uses_user, uses_group, uses_args
        self._roles_cache: dict[tuple[str, tuple[str, ...], tuple[str, ...]], frozenset[str]] = {}
        self._cache: dict[tuple[object, ...], Statement] = {}
        self.hits = 0
        self.misses = 0

    def _close(self, name: str) -> frozenset[str]:
        roles, stack = set(), [name]
        while stack:
            r = stack.pop()
            if r in roles:
                continue
            roles.add(r)
            role = self.compiled.policy.roles.get(r)
            if role is not None:
                stack.extend(role.inherits)
        return frozenset(roles)

    def _union(self, names: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for n in names:
            out |= self.closure.get(n, frozenset((n,)))
        return frozenset(out)

    def effective_roles(self, subject: str, roles: tuple[str, ...], groups: tuple[str, ...]) -> frozenset[str]:
        """user_roles ∪ group_roles ∪ token roles, closed under inheritance (cached)."""
        key = (subject, roles, groups)
        found = self._roles_cache.get(key)
        if found is not None:
            return found
        out = set(self.user_roles.get(subject, ()))
        for g in groups:
            out |= self.group_roles.get(g, frozenset())
        out |= self._union(roles)
        result = frozenset(out)
        if len(self._roles_cache) >= self.cache_size:
            self._roles_cache.clear()
        self._roles_cache[key] = result
        return result

    def decide(self, req: Request) -> Outcome:
        """The deciding statement for a request (cached by role set, resource and action)."""
        eff = self.effective_roles(req.subject, req.roles, req.groups)
        resource = resource_string(req)
        cacheable = not (self.uses_args and req.arguments)
        if cacheable:
            key = (eff, req.subject if self.uses_user else None, req.groups if self.uses_group else None,
                   resource, req.action, req.kind)
            hit = self._cache.get(key)
            if hit is not None:
                self.hits += 1
                return Outcome(hit.effect == "allow", hit, cached=True)
        self.misses += 1
        best = self._search(req, eff, resource)
        if cacheable:
            self._remember(key, best)
        return Outcome(best.effect == "allow", best)

    def _remember(self, key: tuple[object, ...], best: Statement) -> None:
        """Cache a miss's answer; a full cache starts over (shared by `decide` and `search`)."""
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[key] = best

    def _search(self, req: Request, eff: frozenset[str], resource: str) -> Statement:
        best = self.default
        for owner in (_RULES, *eff):
            by_action = self.index.get(owner)
            if by_action is None:
                continue
            for action in (req.action, "*"):
                by_server = by_action.get(action)
                if by_server is None:
                    continue
                for server in (req.server, _ANY_SERVER):
                    for s in by_server.get(server, ()):
                        if s.index >= best.index:
                            break  # buckets are in index order
                        if self._matches(s, req, eff, resource):
                            best = s
                            break
        return best

    @staticmethod
    def _matches(s: Statement, req: Request, eff: frozenset[str], resource: str) -> bool:
        if s.kind == "role":
            return glob_match(resource, s.resource)
        assert s.condition is not None
        return condition_holds(s.condition, req, eff.__contains__)

    def search(self, base: Request, kind: str, pairs: Iterable[tuple[str, str | None]]) -> list[bool]:
        """Decide `base` (subject, action, arguments) for each (server, name) candidate, in order.

        The answers equal `decide` on each candidate (and share its cache); a miss walks one
        merged, index-ordered statement list per server instead of every bucket per candidate.
        """
        eff = self.effective_roles(base.subject, base.roles, base.groups)
        cacheable = not (self.uses_args and base.arguments)
        subject = base.subject if self.uses_user else None
        groups = base.groups if self.uses_group else None
        action, cache = base.action, self._cache
        merged: dict[str, list[Statement]] = {}
        out: list[bool] = []
        for server, name in pairs:
            req = Request(base.subject, action, server, kind, name, base.roles, base.groups, base.arguments)
            resource = resource_string(req)
            key = (eff, subject, groups, resource, action, kind)
            hit = cache.get(key) if cacheable else None
            if hit is not None:
                self.hits += 1
                out.append(hit.effect == "allow")
                continue
            self.misses += 1
            candidates = merged.get(server)
            if candidates is None:
                candidates = merged[server] = self._merged(eff, action, server)
            best = self.default
            for s in candidates:
                if self._matches(s, req, eff, resource):
                    best = s
                    break
            if cacheable:
                self._remember(key, best)
            out.append(best.effect == "allow")
        return out

    def _merged(self, eff: frozenset[str], action: str, server: str) -> list[Statement]:
        """Every statement that may apply to (roles, action, server), in decision order."""
        found: list[Statement] = []
        for owner in (_RULES, *eff):
            by_action = self.index.get(owner)
            if by_action is None:
                continue
            for act in (action, "*"):
                by_server = by_action.get(act)
                if by_server is not None:
                    found.extend(by_server.get(server, ()))
                    found.extend(by_server.get(_ANY_SERVER, ()))
        found.sort(key=_by_index)
        return found

    def search_tools(self, base: Request, tools: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (server, tool) pairs `base`'s subject may invoke."""
        tools = list(tools)
        tool_base = Request(base.subject, "invoke_tool", "", "tool", None, base.roles, base.groups, base.arguments)
        return [pair for pair, ok in zip(tools, self.search(tool_base, "tool", tools), strict=True) if ok]


def _by_index(s: Statement) -> int:
    return s.index
