"""PDP settings (prefix MCPGW_PDP_; DATABASE_URL and audit settings come from CommonSettings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.common_settings import CommonSettings
from shared.settings import Secret, SettingsError, setting

PREFIX = "MCPGW_PDP_"
DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policies" / "policy.yaml"


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port (0-65535)"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


def _fraction(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be between 0 and 1"


@dataclass(frozen=True)
class PdpSettings(CommonSettings):
    """Everything `mcpgw pdp serve` reads."""

    host: str = setting("127.0.0.1", help="Listen address")
    port: int = setting(8181, check=_port, help="Listen port")
    policy_file: Path | None = setting(
        None, aliases=("POLICY_FILE",),
        help="Policy YAML: imported on first start (database mode) or served and watched (file mode)",
    )
    policy_source: str = setting(
        "database", choices=("database", "file"),
        help="database: versions in Postgres, shared by replicas; file: watch policy_file only",
    )
    casbin_model_file: Path | None = setting(
        None, help="Native Casbin model.conf served and watched in file mode (with casbin_policy_file)")
    casbin_policy_file: Path | None = setting(
        None, help="Native Casbin policy lines (CSV) served and watched in file mode (with casbin_model_file)")
    policy_follow_file: bool = setting(
        False, help="database mode: store every saved change of policy_file as a new active, audited "
        "version (development; `make run` turns it on). Off: a differing file is reported at start",
    )
    watch_interval: float = setting(1.0, check=_positive, help="Seconds between policy file checks (file mode, follow_file)")
    watch_settle: float = setting(
        0.25, check=_not_negative,
        help="Seconds a changed policy file must stay unchanged before it is loaded (file mode)",
    )
    access_mode: str = setting(
        "sidecar", choices=("sidecar", "standalone"),
        help="sidecar: decision API for loopback callers only; standalone: bearer api_token required",
    )
    api_token: Secret | None = setting(None, secret=True, help="Bearer credential for the decision API (standalone)")
    admin_roles: list[str] = setting(["policy-admin", "admin"], help="Token roles allowed to change policy")
    admin_issuer: str | None = setting(None, help="OIDC issuer whose tokens the admin API accepts")
    admin_audience: str | None = setting(None, help="Audience required in admin API tokens")
    admin_jwks_url: str | None = setting(None, help="JWKS URL (default: issuer discovery)")
    audit_allow_sample: float = setting(1.0, check=_fraction, help="Fraction of allow decisions audited (denies: all)")
    shadow_sample: float = setting(
        0.01, check=_fraction,
        help="Fraction of live decisions re-decided by stock Casbin off the hot path (0 = off)")
    shadow_fail_readiness: bool = setting(
        False, help="Fail /readyz once the fast path and Casbin have disagreed on any decision")
    cache_size: int = setting(100_000, help="Entries per decision cache (per policy version)")
    max_batch: int = setting(10_000, help="Most evaluations or search candidates in one request")
    console_oidc_issuer: str | None = setting(None, help="OIDC issuer the policy console signs users in with (enables /console)")
    console_client_id: str | None = setting(None, help="The console's OIDC client id")
    console_client_secret: Secret | None = setting(
        None, secret=True, help="The console's OIDC client secret (unset: public client, PKCE only)")
    console_public_url: str | None = setting(
        None, help="External base URL of this PDP (redirect URI = it + /console/callback; https => Secure cookie)")
    console_scopes: list[str] = setting(["openid", "profile", "email"], help="Scopes the console requests")
    console_roles_claims: list[str] = setting(
        ["roles", "realm_access.roles", "resource_access.{client_id}.roles"],
        help="ID token claim paths holding the user's roles")
    console_viewer_role: str = setting("policy-viewer", help="Role that may read the console")
    console_editor_role: str = setting("policy-editor", help="Role that may edit drafts and submit them")
    console_approver_role: str = setting(
        "policy-approver", help="Role that may approve or reject drafts, ask for a rollback (another approver "
                                "approves it) and block")
    console_self_approve: bool = setting(
        False, help="Let an approver approve or reject a change they contributed to (saved, submitted or asked "
                    "to roll back), and an admin's API/CLI rollback publish on its first call (one-person "
                    "deployments only)")
    console_idle_timeout: float = setting(1800.0, check=_positive, help="Seconds of inactivity before a console session ends")

    @property
    def policy_path(self) -> Path:
        """The policy file to import or watch."""
        return self.policy_file or DEFAULT_POLICY

    @property
    def admin_enabled(self) -> bool:
        """The admin API needs a token issuer to check admins against."""
        return bool(self.admin_audience and (self.admin_issuer or self.admin_jwks_url))

    @property
    def console_enabled(self) -> bool:
        """The console needs an OIDC provider to sign users in with."""
        return bool(self.console_oidc_issuer and self.console_client_id)


def check_settings(settings: PdpSettings) -> PdpSettings:
    """Cross-field checks; raise SettingsError listing every problem."""
    errors = []
    if settings.access_mode == "standalone" and not settings.api_token:
        errors.append("api_token (MCPGW_PDP_API_TOKEN): required when access_mode is standalone")
    if settings.policy_source == "file" and not settings.casbin_model_file and not settings.policy_path.is_file():
        errors.append(f"policy_file (MCPGW_PDP_POLICY_FILE): {settings.policy_path} is not a file")
    if bool(settings.casbin_model_file) != bool(settings.casbin_policy_file):
        errors.append("casbin_model_file and casbin_policy_file (--casbin-model/--casbin-policy) must be set together")
    elif settings.casbin_model_file and settings.casbin_policy_file:
        if settings.policy_source != "file":
            errors.append("casbin_model_file: a native Casbin pair is served in file mode (policy_source=file); "
                          "store native versions through the admin API in database mode")
        for path in (settings.casbin_model_file, settings.casbin_policy_file):
            if not path.is_file():
                errors.append(f"casbin file {path} is not a file")
    if settings.policy_follow_file and settings.policy_source == "file":
        errors.append("policy_follow_file (MCPGW_PDP_POLICY_FOLLOW_FILE): only for policy_source database "
                      "(file mode always serves the file)")
    if bool(settings.admin_audience) != bool(settings.admin_issuer or settings.admin_jwks_url):
        errors.append("admin_audience and admin_issuer (or admin_jwks_url) must be set together")
    if bool(settings.console_oidc_issuer) != bool(settings.console_client_id):
        errors.append("console_oidc_issuer and console_client_id must be set together")
    if settings.console_enabled and settings.policy_source != "database":
        errors.append("the console (console_oidc_issuer) needs policy_source=database")
    if settings.console_enabled and not settings.console_public_url:
        errors.append("console_public_url (MCPGW_PDP_CONSOLE_PUBLIC_URL): required when the console is enabled")
    if errors:
        raise SettingsError(errors)
    return settings
