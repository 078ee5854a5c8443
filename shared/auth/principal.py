"""The authenticated caller as the gateway and the PDP admin API see it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DEV_SUBJECT = "dev"


@dataclass(frozen=True, eq=False)
class Principal:
    """Who is calling: subject, roles, groups and scopes from the token, plus all its claims."""

    subject: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    claims: dict[str, Any] = field(default_factory=dict)
    expires_at: float = math.inf  # unix time; inf only for the dev principal

    def has_scopes(self, required: tuple[str, ...] | list[str]) -> bool:
        """True when every scope in `required` was granted."""
        return set(required).issubset(self.scopes)

    def has_any_role(self, roles: tuple[str, ...] | list[str]) -> bool:
        """True when the token carries at least one of `roles` (admin checks in both services)."""
        return not set(roles).isdisjoint(self.roles)


def dev_principal(roles: tuple[str, ...] | list[str] = ()) -> Principal:
    """The fixed caller of explicit `--no-auth` dev mode: subject `dev`, only the roles given."""
    return Principal(subject=DEV_SUBJECT, roles=tuple(roles), claims={"sub": DEV_SUBJECT})
