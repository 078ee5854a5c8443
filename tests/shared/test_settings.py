"""Settings loading: messages name field and env var, secrets never shown, precedence, .env.example."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared import envexample
from shared.common_settings import DEFAULT_REDACT_KEYS, CommonSettings
from shared.settings import (
    Secret,
    SettingsError,
    describe,
    load_settings,
    public_view,
    read_dotenv,
    setting,
)


def _positive(v: int) -> str | None:
    return None if v > 0 else "must be greater than 0"


@dataclass(frozen=True)
class Demo:
    port: int = setting(8000, help="port")
    ratio: float = setting(0.5)
    debug: bool = setting(False)
    mode: str = setting("fast", choices=("fast", "safe"))
    tags: list[str] = setting(["a"])
    limit: int | None = setting(None, check=_positive)
    api_key: Secret | None = setting(None, secret=True)
    pin: int = setting(1234, secret=True)
    home: Path = setting(Path("."), env="DEMO_HOME_DIR", aliases=("OLD_HOME",))


def load(environ=None, **kw):
    kw.setdefault("dotenv", None)
    return load_settings(Demo, "DEMO_", environ=environ or {}, **kw)


def test_defaults_and_conversions():
    s = load({"DEMO_PORT": "9000", "DEMO_RATIO": "1.5", "DEMO_DEBUG": "yes", "DEMO_TAGS": "x, y,,z",
              "DEMO_LIMIT": "", "DEMO_API_KEY": "k-123"})
    assert (s.port, s.ratio, s.debug, s.tags, s.limit) == (9000, 1.5, True, ["x", "y", "z"], None)
    assert s.api_key.get() == "k-123" and s.home == Path(".")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"DEMO_PORT": "eighty"}, "port (DEMO_PORT): invalid value; expected an integer, got 'eighty'"),
        ({"DEMO_RATIO": "half"}, "ratio (DEMO_RATIO): invalid value; expected a number, got 'half'"),
        ({"DEMO_DEBUG": "maybe"}, "debug (DEMO_DEBUG): invalid value; expected a boolean (true/false), got 'maybe'"),
        ({"DEMO_MODE": "turbo"}, "mode (DEMO_MODE): must be one of fast, safe"),
        ({"DEMO_LIMIT": "0"}, "limit (DEMO_LIMIT): must be greater than 0"),
    ],
)
def test_bad_value_names_field_and_env_var(environ, expected):
    with pytest.raises(SettingsError) as info:
        load(environ)
    assert info.value.errors == [expected]
    assert expected in str(info.value)


def test_every_bad_field_is_listed_at_once():
    with pytest.raises(SettingsError) as info:
        load({"DEMO_PORT": "x", "DEMO_RATIO": "y", "DEMO_MODE": "z", "DEMO_LIMIT": "-1"})
    assert [e.split(" ")[0] for e in info.value.errors] == ["port", "ratio", "mode", "limit"]


def test_secrets_are_never_printed():
    with pytest.raises(SettingsError) as info:
        load({"DEMO_PIN": "hunter2-not-a-number", "DEMO_PORT": "x"})
    assert "hunter2" not in str(info.value) and "pin (DEMO_PIN): invalid value" in info.value.errors
    s = load({"DEMO_API_KEY": "sk-very-secret"})
    for text in (repr(s), str(s), str(public_view(s)), repr(s.api_key)):
        assert "sk-very-secret" not in text
    assert public_view(s)["api_key"] == "***"
    common = load_settings(CommonSettings, "MCPGW_", environ={"DATABASE_URL": "postgresql://u:pw@h/db"}, dotenv=None)
    assert "pw@" not in repr(common) and common.database_url.get() == "postgresql://u:pw@h/db"
    assert ("DATABASE_URL", "", describe(CommonSettings, "MCPGW_")[0][2]) == describe(CommonSettings, "MCPGW_")[0]


def test_precedence_yaml_dotenv_env_overrides(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("port: 1\nratio: 0.1\ndebug: true\nmode: safe\n")
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nexport DEMO_RATIO=0.2\nDEMO_DEBUG='false'\nDEMO_MODE=fast  # inline\n")
    s = load({"DEMO_DEBUG": "on"}, yaml_file=yaml_file, dotenv=dotenv, overrides={"port": 5, "ratio": None})
    # port: override; ratio: .env beats YAML (None override ignored); debug: env beats .env; mode: .env.
    assert (s.port, s.ratio, s.debug, s.mode) == (5, 0.2, True, "fast")


def test_primary_env_name_beats_alias():
    assert load({"OLD_HOME": "/old"}).home == Path("/old")
    assert load({"OLD_HOME": "/old", "DEMO_HOME_DIR": "/new"}).home == Path("/new")


def test_yaml_problems(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("port: 1\nprot: 2\ncolour: red\n")
    with pytest.raises(SettingsError) as info:
        load(yaml_file=bad)
    assert info.value.errors == ["prot (config file): unknown setting", "colour (config file): unknown setting"]
    bad.write_text("- a list\n")
    with pytest.raises(SettingsError, match="expected a mapping"):
        load(yaml_file=bad)
    bad.write_text("port: [unclosed\n")
    with pytest.raises(SettingsError, match="config file"):
        load(yaml_file=bad)
    with pytest.raises(SettingsError, match="config file"):
        load(yaml_file=tmp_path / "missing.yaml")


def test_required_field():
    @dataclass(frozen=True)
    class Needs:
        url: str = setting(help="required")

    with pytest.raises(SettingsError) as info:
        load_settings(Needs, "N_", environ={}, dotenv=None)
    assert info.value.errors == ["url (N_URL): required"]


def test_read_dotenv(tmp_path):
    path = tmp_path / ".env"
    path.write_text('A=1\n\n# x\nB="two # not a comment"\nexport C=3 # comment\nD=a#b\nnot a line\n')
    assert read_dotenv(path) == {"A": "1", "B": "two # not a comment", "C": "3", "D": "a#b"}
    assert read_dotenv(tmp_path / "none") == {}


def test_common_settings_defaults_and_aliases():
    s = load_settings(CommonSettings, "MCPGW_", environ={"AUDIT_LOG_FILE": "/tmp/a.jsonl",
                                                         "AUDIT_TO_STDOUT": "true"}, dotenv=None)
    assert s.audit_file == Path("/tmp/a.jsonl") and s.audit_stdout is True
    assert s.audit_redact_keys == DEFAULT_REDACT_KEYS and s.audit_redact_keys is not DEFAULT_REDACT_KEYS
    assert dataclasses.replace(s, audit_spool_dir=None).audit_spool_dir is None


def test_env_example_is_up_to_date():
    """Fails when a setting changes without `python -m shared.envexample --write`."""
    assert envexample.TARGET.read_text() == envexample.render(), (
        ".env.example is out of date: run `.venv/bin/python -m shared.envexample --write`"
    )


def test_env_example_lists_every_setting():
    text = envexample.render()
    for env, default, _ in describe(CommonSettings, "MCPGW_"):
        assert f"# {env}={default}\n" in text
    assert "also read from: AUDIT_LOG_FILE" in text


def _needs_ratio_below_port(s: Demo) -> Demo:
    problems = []
    if s.ratio >= s.port:
        problems.append("ratio (DEMO_RATIO): must be below port")
    if s.mode == "safe" and not s.api_key:
        problems.append("api_key (DEMO_API_KEY): required in safe mode")
    if problems:
        raise SettingsError(problems)
    return dataclasses.replace(s, tags=[*s.tags, "checked"])


def test_finalize_runs_and_may_change_the_result():
    assert load(finalize=_needs_ratio_below_port).tags == ["a", "checked"]
    with pytest.raises(SettingsError) as info:
        load({"DEMO_MODE": "safe"}, finalize=_needs_ratio_below_port)
    assert info.value.errors == ["api_key (DEMO_API_KEY): required in safe mode"]


def test_cross_field_problems_are_listed_with_bad_fields():
    """One start lists everything: a bad field does not hide a cross-field problem elsewhere."""
    with pytest.raises(SettingsError) as info:
        load({"DEMO_MODE": "safe", "DEMO_DEBUG": "maybe"}, finalize=_needs_ratio_below_port)
    assert info.value.errors == [
        "debug (DEMO_DEBUG): invalid value; expected a boolean (true/false), got 'maybe'",
        "api_key (DEMO_API_KEY): required in safe mode",
    ]


def test_cross_field_verdicts_on_a_bad_field_are_not_guessed():
    # With port unreadable, "ratio must be below port" would judge port's default (8000), not the
    # user's value: only the field error is reported.
    with pytest.raises(SettingsError) as info:
        load({"DEMO_PORT": "x", "DEMO_RATIO": "9000"}, finalize=_needs_ratio_below_port)
    assert info.value.errors == ["port (DEMO_PORT): invalid value; expected an integer, got 'x'"]
