"""Settings both services share: database, logging and audit sinks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from shared.settings import Secret, setting

DEFAULT_REDACT_KEYS = [
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "credential",
    "private_key",
    "privatekey",
    "client_secret",
    "cookie",
    "passphrase",
    # Shorter than 5 characters: these match whole key segments only (pin, user_pin, userPin;
    # not spinner, pinned, mapping). See shared/redact.py.
    "pwd",
    "pin",
]


def _positive(value: int | float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _http_url(value: str) -> str | None:
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - parsed lazily: a bad port or IPv6 literal raises here
    except ValueError:
        return "must be an http(s) URL (it does not parse)"
    if url.username is not None or url.password is not None:  # it would be logged; headers are secret
        return "must not carry credentials (user:password@); put them in MCPGW_OTEL_HEADERS"
    ok = url.scheme in ("http", "https") and url.hostname and not (url.query or url.fragment)
    return None if ok else "must be an http(s) URL without query (the collector's base URL; /v1/traces is added)"


def _otlp_headers_problem(value: str) -> str | None:
    from shared.tracing.otlp import parse_headers

    try:
        parse_headers(value)
    except ValueError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class CommonSettings:
    """Fields every mcpgw service reads (env names are unprefixed where users already know them)."""

    database_url: Secret | None = setting(
        None,
        env="DATABASE_URL",
        secret=True,
        help="PostgreSQL DSN; unset = start an embedded PostgreSQL under data_dir",
    )
    data_dir: Path = setting(Path(".data"), env="MCPGW_DATA_DIR", help="Embedded Postgres data, audit spool")
    log_level: str = setting(
        "INFO", env="MCPGW_LOG_LEVEL", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="Log level"
    )
    log_format: str = setting("json", env="MCPGW_LOG_FORMAT", choices=("json", "text"), help="Log format")
    otel_endpoint: str | None = setting(
        None, env="MCPGW_OTEL_ENDPOINT", aliases=("OTEL_EXPORTER_OTLP_ENDPOINT",), check=_http_url,
        help="OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318): traces exported there; unset = no tracing",
    )
    otel_headers: Secret | None = setting(
        None, env="MCPGW_OTEL_HEADERS", aliases=("OTEL_EXPORTER_OTLP_HEADERS",), secret=True,
        check=lambda v: _otlp_headers_problem(v.get()),
        help="Headers sent to the collector: key=value pairs, comma-separated, values URL-encoded (e.g. an API key)",
    )
    otel_sample_ratio: float = setting(
        1.0, env="MCPGW_OTEL_SAMPLE_RATIO", check=lambda v: None if 0.0 <= v <= 1.0 else "must be between 0 and 1",
        help="Fraction of new traces sampled (a caller's sampled traceparent is always followed)",
    )
    log_access: str = setting(
        "INFO", env="MCPGW_LOG_ACCESS", choices=("off", "DEBUG", "INFO", "WARNING"),
        help="Level of the access log (one line per request, logger mcpgw.access); off = none",
    )
    event_loop: str = setting(
        "auto", env="MCPGW_EVENT_LOOP", choices=("auto", "asyncio", "uvloop"),
        help="Event loop: uvloop (the `uvloop` extra) or asyncio; auto = uvloop when installed "
             "(docs/benchmarks.md: measured CPU per call)",
    )
    audit_postgres: bool = setting(True, env="MCPGW_AUDIT_POSTGRES", help="Write audit events to Postgres")
    audit_file: Path | None = setting(
        None, env="MCPGW_AUDIT_FILE", aliases=("AUDIT_LOG_FILE",), help="Append audit events as JSONL here"
    )
    audit_stdout: bool = setting(
        False, env="MCPGW_AUDIT_STDOUT", aliases=("AUDIT_TO_STDOUT",), help="Print audit events to stdout"
    )
    audit_queue_size: int = setting(
        100_000, env="MCPGW_AUDIT_QUEUE_SIZE", check=_positive, help="Bounded audit queue length"
    )
    audit_batch_size: int = setting(
        2_000, env="MCPGW_AUDIT_BATCH_SIZE", check=_positive, help="Max events per COPY batch"
    )
    audit_flush_interval: float = setting(
        0.2, env="MCPGW_AUDIT_FLUSH_INTERVAL", check=_positive, help="Seconds between audit flushes"
    )
    audit_spool_dir: Path | None = setting(
        None,
        env="MCPGW_AUDIT_SPOOL_DIR",
        help="Where audit events wait while Postgres is down; unset = data_dir/audit-spool",
    )
    audit_redact_keys: list[str] = setting(
        DEFAULT_REDACT_KEYS, env="MCPGW_AUDIT_REDACT_KEYS", help="Parameter keys masked in audit (any depth; names under 5 characters match whole key segments)"
    )
