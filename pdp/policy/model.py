"""The policy's data model (what validation produces and compilation consumes) and requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The action names (ACTIONS, SERVER_ACTIONS) are the wire contract's: shared/authzen.py.

ALLOW, DENY = "allow", "deny"
# Rule priorities live in this range; role permissions sit at 0.
MIN_PRIORITY, MAX_PRIORITY = -1_000_000, 1_000_000
ARG_OPS = ("equals", "in", "pattern", "absent")
# String normalisations an argument condition may ask for (applied in this order, see naming.py).
NORMALIZERS = ("strip_format", "nfkc", "casefold", "trim")


@dataclass(frozen=True)
class ArgCondition:
    """One `arguments` entry: the value at a JSON pointer must satisfy one operator."""

    pointer: str
    op: str  # equals | in | pattern | absent
    value: Any  # for equals/in: already normalised like the request value will be
    normalize: tuple[str, ...] = ()  # applied to string values before comparing
    # A deny rule's: equals/in/pattern also hold for every spelling a backend reads as the operand
    # (values.py); an allow rule's compare exactly, so no spelling the rule did not name is allowed.
    by_value: bool = False


@dataclass(frozen=True)
class Condition:
    """Every present key must hold; an absent key (None / empty) does not constrain."""

    users: tuple[str, ...] | None = None
    roles: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    actions: tuple[str, ...] | None = None
    mcp_server: str | None = None
    tool_name: str | None = None
    tool_name_pattern: str | None = None
    arguments: tuple[ArgCondition, ...] = ()


@dataclass(frozen=True)
class Permission:
    """An allow statement of a role: actions on resources matching a pattern."""

    resource: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class Role:
    """A named role: its own permissions plus those of the roles it inherits."""

    name: str
    inherits: tuple[str, ...] = ()
    permissions: tuple[Permission, ...] = ()


@dataclass(frozen=True)
class Rule:
    """An explicit allow/deny statement with a priority."""

    name: str
    condition: Condition
    effect: str
    priority: int


@dataclass(frozen=True)
class Policy:
    """A validated policy document."""

    roles: dict[str, Role]
    user_roles: dict[str, tuple[str, ...]]
    group_roles: dict[str, tuple[str, ...]]
    rules: tuple[Rule, ...]
    default_policy: str = DENY


@dataclass(frozen=True)
class Request:
    """One question: may `subject` (with token roles and groups) do `action` on a resource.

    `kind` is server | tool | resource | prompt; `name` is the tool name, resource URI or prompt
    name (None for server-level checks).
    """

    subject: str
    action: str
    server: str
    kind: str = "server"
    name: str | None = None
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    arguments: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    @property
    def tool(self) -> str | None:
        """The tool name, for tool requests only (rules' tool conditions look at this)."""
        return self.name if self.kind == "tool" else None
