"""Console access levels (view, edit, approve) from token roles: pure, below auth and render."""

from __future__ import annotations

from typing import Any

from pdp.ui.sessions import Session


def level_roles(settings: Any, level: str) -> set[str]:
    """The token roles that grant an access level (view, edit, approve)."""
    if level == "view":
        return {settings.console_viewer_role, settings.console_editor_role, settings.console_approver_role}
    return {settings.console_editor_role} if level == "edit" else {settings.console_approver_role}


def may(settings: Any, who: Session, level: str) -> bool:
    """Whether the session's roles grant `level`."""
    return bool(set(who.roles) & level_roles(settings, level))
