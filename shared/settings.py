"""Settings: typed dataclasses loaded once from env vars, an optional YAML file and `.env`.

A settings class is a frozen dataclass whose fields are declared with `setting(...)`. Values come,
in rising precedence, from the field default, the YAML file, the `.env` file, the process
environment (`PREFIX + NAME`, plus any aliases), and explicit overrides (command-line flags).
Every bad field is collected and reported together; secret values never appear in messages.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class Secret:
    """A string that never prints."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The real value; call only where it is used."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class SettingsError(Exception):
    """Raised with every problem found; `errors` is a list of "FIELD (ENV): reason"."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(errors))
        self.errors = errors


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str = "",
    env: str | None = None,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
    choices: tuple[str, ...] | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """Declare a settings field: default, help text, env name override, aliases, validation."""
    meta = {
        "help": help,
        "env": env,
        "aliases": aliases,
        "secret": secret,
        "choices": choices,
        "check": check,
    }
    if isinstance(default, list):
        return dataclasses.field(default_factory=functools.partial(list, default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def env_name(field: dataclasses.Field[Any], prefix: str) -> str:
    """The environment variable that sets `field`."""
    return field.metadata.get("env") or prefix + field.name.upper()


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a simple KEY=VALUE `.env` file (comments, blank lines, optional quotes)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:  # unquoted inline comment, as docker compose and dotenv read it
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """Return (inner type, optional?) for `X | None` annotations."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    return annotation, False


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def convert(value: Any, annotation: Any) -> Any:
    """Convert a raw (string or YAML) value to the annotated type; raise ValueError on failure."""
    kind, optional = _base_type(annotation)
    if value is None or (optional and isinstance(value, str) and value == ""):
        if optional:
            return None
        raise ValueError("a value is required")
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"expected a boolean (true/false), got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    if kind is float:
        try:
            return float(str(value).strip())
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    if kind is Path:
        return Path(str(value))
    if kind is Secret:
        return value if isinstance(value, Secret) else Secret(str(value))
    if typing.get_origin(kind) is list:
        if isinstance(value, list):
            return [str(v) for v in value]
        return [part.strip() for part in str(value).split(",") if part.strip()]
    if kind is str:
        if isinstance(value, dict | list):
            raise ValueError("expected a string")
        return str(value)
    raise TypeError(f"unsupported settings type {annotation!r}")


def load_settings(
    cls: type[T],
    prefix: str,
    *,
    environ: Mapping[str, str] | None = None,
    yaml_file: Path | None = None,
    dotenv: Path | None = Path(".env"),
    overrides: Mapping[str, Any] | None = None,
    finalize: Callable[[T], T] | None = None,
) -> T:
    """Build `cls` from all sources; raise SettingsError listing every bad field.

    `finalize` runs cross-field checks (raising SettingsError) and may return a changed copy. It
    also runs when single fields are bad, so one start reports the cross-field problems too
    instead of revealing them one restart at a time.
    """
    environ = os.environ if environ is None else environ
    layered: dict[str, Any] = {}
    errors: list[str] = []
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    if yaml_file is not None:
        try:
            loaded = yaml.safe_load(Path(yaml_file).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError([f"config file {yaml_file}: {exc}"]) from exc
        if not isinstance(loaded, dict):
            raise SettingsError([f"config file {yaml_file}: expected a mapping at top level"])
        for key, value in loaded.items():
            if key not in fields:
                errors.append(f"{key} (config file): unknown setting")
            else:
                layered[key] = value

    env_sources: list[Mapping[str, str]] = []
    if dotenv is not None:
        env_sources.append(read_dotenv(dotenv))
    env_sources.append(environ)
    for source in env_sources:
        for field in fields.values():
            for name in (*field.metadata.get("aliases", ()), env_name(field, prefix)):
                if name in source:
                    layered[field.name] = source[name]

    for key, value in (overrides or {}).items():
        if value is not None:
            layered[key] = value

    values: dict[str, Any] = {}
    for name, field in fields.items():
        where = env_name(field, prefix)
        if name not in layered:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                errors.append(f"{name} ({where}): required")
            continue
        try:
            value = convert(layered[name], hints[name])
        except ValueError as exc:
            shown = "" if field.metadata.get("secret") else f" {exc}"
            errors.append(f"{name} ({where}): invalid value;{shown}".rstrip(";"))
            continue
        choices = field.metadata.get("choices")
        if choices and value not in choices:
            errors.append(f"{name} ({where}): must be one of {', '.join(choices)}")
            continue
        check = field.metadata.get("check")
        # An optional field left empty has nothing to check (checks assume a value).
        problem = check(value) if check and value is not None else None
        if problem:
            errors.append(f"{name} ({where}): {problem}")
            continue
        values[name] = value
    if errors:
        raise SettingsError(errors + _cross_field_errors(cls, values, errors, finalize))
    settings = cls(**values)
    return finalize(settings) if finalize is not None else settings


def _cross_field_errors(
    cls: type[T], values: dict[str, Any], errors: list[str], finalize: Callable[[T], T] | None
) -> list[str]:
    """`finalize`'s complaints when they do not depend on a field already reported as bad.

    The check runs on a copy where bad fields hold their defaults; a verdict that read one of
    them would judge the default, not the user's value, so then nothing more is reported.
    """
    if finalize is None:
        return []
    bad = {e.split(" ", 1)[0] for e in errors}
    read: set[str] = set()

    class Recording(cls):  # type: ignore[valid-type,misc]
        def __getattribute__(self, name: str) -> Any:
            read.add(name)
            return super().__getattribute__(name)

    try:
        finalize(Recording(**values))
    except SettingsError as exc:
        return [] if read & bad else list(exc.errors)
    except Exception:  # e.g. a required field is missing: the field errors say enough
        return []
    return []


def describe(cls: type[Any], prefix: str) -> list[tuple[str, str, str]]:
    """(env name, default shown, help) for every field: feeds `.env.example` and `--help`."""
    rows = []
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None
        if isinstance(default, list):
            shown = ",".join(default)
        elif default is None:
            shown = ""
        elif isinstance(default, bool):
            shown = str(default).lower()
        else:
            shown = str(default)
        if field.metadata.get("secret"):
            shown = ""
        rows.append((env_name(field, prefix), shown, field.metadata.get("help", "")))
    return rows


def public_view(settings: Any) -> dict[str, Any]:
    """A JSON-safe dict of the settings with secrets masked, for `/config` and logs."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if field.metadata.get("secret") or isinstance(value, Secret):
            out[field.name] = "***" if value else None
        elif isinstance(value, Path):
            out[field.name] = str(value)
        else:
            out[field.name] = value
    return out
