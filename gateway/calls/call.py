"""What a call is, for every entry point: the Call, the PDP's Verdict on it, and the Stage protocol
governance features implement to join the pipeline (pipeline.py). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from aiohttp import web

from gateway.registry import ServerConfig
from gateway.upstream.sessions import Caller
from shared.auth import Principal
from shared.authzen import Decision

Action = Literal["invoke_tool", "read_resource", "get_prompt"]
Entry = Literal["rest", "rest_broadcast", "tools", "mcp", "mcp_broadcast", "passthrough"]


@dataclass(frozen=True)
class Call:
    """One call as every entry point describes it: who, what, on which server(s), with what."""

    entry: Entry
    principal: Principal
    caller: Caller | None  # whom the backend is asked for (None: the pool's shared session)
    action: Action
    name: str  # the backend's own tool name, resource URI or prompt name
    targets: tuple[str, ...]  # server names as named; they may not exist (the PDP is asked first)
    arguments: object = None  # as sent; admitted against the tool's schema as is
    broadcast: bool = False
    # What admission found: {server: the tool's catalog entry}, so a forward needing the tool's
    # definition (passthrough's Mcp-Param-* headers) does not look it up again.
    admitted: dict[str, Mapping[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def decided_arguments(self) -> dict[str, Any] | None:
        """The arguments the PDP decides on (and that are forwarded): an object, or none."""
        if isinstance(self.arguments, dict):
            return self.arguments
        return {} if self.action == "invoke_tool" else None


@dataclass(frozen=True)
class Verdict:
    """The PDP's decisions for every target of one call, in target order."""

    targets: tuple[str, ...]
    decisions: tuple[Decision, ...]

    @property
    def permitted(self) -> list[str]:
        """Targets the PDP allowed, in order."""
        return [t for t, d in zip(self.targets, self.decisions, strict=True) if d.allowed]

    @property
    def denied(self) -> dict[str, str]:
        """{target: "denied: reason"} for every target the PDP refused."""
        return {t: f"denied: {d.reason or 'not permitted by policy'}"
                for t, d in zip(self.targets, self.decisions, strict=True) if not d.allowed}

    @property
    def allowed(self) -> bool:
        """At least one target may be called."""
        return any(d.allowed for d in self.decisions)

    @property
    def decision(self) -> Decision:
        """The decision to report: the first allow, else the first denial."""
        return next((d for d in self.decisions if d.allowed), self.decisions[0])


class Stage(Protocol):
    """A check every permitted call passes on each target before it is forwarded; raises Refused.
    Its `name` is recorded in the audit event of a call it refused (`extra.refused_by`)."""

    name: str

    async def before_forward(self, request: web.Request, call: Call, server: ServerConfig) -> None: ...
