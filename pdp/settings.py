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
    cache_size: int = setting(100_000, help="Entries per decision cache (per policy version)")
    max_batch: int = setting(10_000, help="Most evaluations or search candidates in one request")

    @property
    def policy_path(self) -> Path:
        """The policy file to import or watch."""
        return self.policy_file or DEFAULT_POLICY

    @property
    def admin_enabled(self) -> bool:
        """The admin API needs a token issuer to check admins against."""
        return bool(self.admin_audience and (self.admin_issuer or self.admin_jwks_url))


def check_settings(settings: PdpSettings) -> PdpSettings:
    """Cross-field checks; raise SettingsError listing every problem."""
    errors = []
    if settings.access_mode == "standalone" and not settings.api_token:
        errors.append("api_token (MCPGW_PDP_API_TOKEN): required when access_mode is standalone")
    if settings.policy_source == "file" and not settings.policy_path.is_file():
        errors.append(f"policy_file (MCPGW_PDP_POLICY_FILE): {settings.policy_path} is not a file")
    if settings.policy_follow_file and settings.policy_source == "file":
        errors.append("policy_follow_file (MCPGW_PDP_POLICY_FOLLOW_FILE): only for policy_source database "
                      "(file mode always serves the file)")
    if bool(settings.admin_audience) != bool(settings.admin_issuer or settings.admin_jwks_url):
        errors.append("admin_audience and admin_issuer (or admin_jwks_url) must be set together")
    if errors:
        raise SettingsError(errors)
    return settings
