"""The call's audit record: the request's AuditInfo, filled by the pipeline the same way for every
entry point (what was called, the PDP's verdict, which targets were called and which failed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.gwaudit import AuditInfo
from gateway.keys import AUDIT_INFO
from shared.authzen import Decision

if TYPE_CHECKING:
    from gateway.calls.call import Call, Verdict


def audit(request: web.Request) -> AuditInfo:
    """The request's AuditInfo, or a throwaway one when audit is off."""
    info = request.get(AUDIT_INFO)
    if info is None:
        info = AuditInfo()
        request[AUDIT_INFO] = info
    return info


def started(info: AuditInfo, call: Call) -> None:
    """What is called, with what, and through which entry point (a broadcast names no single server)."""
    info.action, info.tool, info.parameters = call.action, call.name, call.decided_arguments
    info.mcp_server = None if call.broadcast else call.targets[0]
    info.note(entry=call.entry)


def refused(info: AuditInfo, call: Call, server: str, stage: str, message: str) -> None:
    """A stage refused the call on `server`: which stage (per target in a broadcast), and why."""
    if not call.broadcast:
        info.note(refused_by=stage)
        info.error = message
        return
    by_target = info.extra.get("refused_by") if info.extra else None
    info.note(refused_by={**(by_target if isinstance(by_target, dict) else {}), server: stage})


def checked(info: AuditInfo, decision: Decision) -> None:
    """The PDP's answer to a request that is not a call."""
    info.decision = decision
    if not decision.allowed:
        info.denied = True


def decided(info: AuditInfo, call: Call, verdict: Verdict) -> None:
    """The PDP's verdict: its deciding decision; denied when no target may be called."""
    info.decision, info.denied = verdict.decision, not verdict.allowed
    if call.broadcast:
        info.note(targets=list(call.targets), denied=sorted(verdict.denied))


def finished(info: AuditInfo, targets: Sequence[str], refused: Mapping[str, object],
             results: Mapping[str, object], failures: Mapping[str, str]) -> None:
    """A broadcast's outcome: who was called, who failed (isError results included, as
    `tool_failed`); an error when no target succeeded."""
    info.note(called=[t for t in targets if t not in refused], failed=sorted(failures))
    tool_failed = info.extra.get("tool_failed") if info.extra else None
    failed_tools = set(tool_failed) if isinstance(tool_failed, list) else set()
    if (failures or failed_tools) and not set(results) - failed_tools:
        info.error, info.tool_failed = "no target succeeded", True
