"""Readers for the deployment files (Dockerfile, compose, Kubernetes) used by tests/deploy/test_*.

Docker and kubectl are not available where the tests run, so these helpers do the small parts of
their work the tests need: Dockerfile instructions, compose `${VAR}` interpolation, kustomize
resource lists and JSON6902 patches. Each resolves the files against the real settings classes,
CLI parser and app routers, so a renamed setting, flag or route breaks a test.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from gateway import cli as gateway_cli
from gateway.settings import GatewaySettings, load_gateway_settings
from mcpgw.cli import build_parser
from pdp import cli as pdp_cli
from pdp.settings import PREFIX as PDP_PREFIX
from pdp.settings import PdpSettings, check_settings
from shared.settings import env_name, load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SERVICES = ("gateway", "pdp")
# Stand-ins for Secret values: never real, but valid for the settings they feed.
DUMMY_SECRETS = {"database-url": "postgresql://mcpgw:pw@db:5432/mcpgw"}


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in a file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


# ---- settings ----------------------------------------------------------------------------------

def setting_fields(service: str) -> dict[str, dataclasses.Field[Any]]:
    """Every env name (incl. aliases) a service reads → its settings field."""
    cls, prefix = (GatewaySettings, "MCPGW_GATEWAY_") if service == "gateway" else (PdpSettings, PDP_PREFIX)
    names: dict[str, dataclasses.Field[Any]] = {}
    for field in dataclasses.fields(cls):
        for name in (env_name(field, prefix), *field.metadata.get("aliases", ())):
            names[name] = field
    return names


def is_secret_setting(service: str, name: str) -> bool:
    """Whether env var `name` sets a secret field of the service."""
    field = setting_fields(service).get(name)
    return bool(field and field.metadata.get("secret"))


def parse_command(argv: list[str]) -> argparse.Namespace:
    """Parse an `mcpgw ...` argument list with the real CLI; fail on any usage error."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on an unknown command or flag
        raise AssertionError(f"mcpgw {' '.join(argv)}: not a valid command line") from exc


def service_of(args: argparse.Namespace) -> str:
    """Which service a parsed command runs (`gateway`/`pdp`); fail for anything else."""
    if args.func is gateway_cli.serve:
        return "gateway"
    if args.func is pdp_cli.serve_cmd:
        return "pdp"
    raise AssertionError(f"{args.command}: not a serve command")


def effective_settings(service: str, args: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    """The settings the service would run with: env + the command's flags, fully validated."""
    if service == "gateway":
        return load_gateway_settings(environ=environ, overrides=gateway_cli.overrides(args), dotenv=None)
    # Mirrors pdp.cli.serve_cmd's flag → field mapping.
    overrides = {"host": args.host, "port": args.port, "policy_file": args.policy,
                 "policy_source": args.policy_source, "access_mode": args.access_mode}
    return check_settings(load_settings(PdpSettings, PDP_PREFIX, environ=environ, overrides=overrides, dotenv=None))


def build_app(service: str, settings: Any) -> web.Application:
    """The real app for these settings (nothing is started)."""
    if service == "gateway":
        from gateway.app import create_app as gateway_app

        return gateway_app(settings)
    from pdp.app import create_app as pdp_app

    return pdp_app(settings)


def get_paths(app: web.Application) -> set[str]:
    """Plain paths that answer GET in an app (what a probe or scraper can call)."""
    return {r.resource.canonical for r in app.router.routes()
            if r.method in ("GET", "*") and r.resource is not None and "{" not in r.resource.canonical}


# ---- Dockerfile --------------------------------------------------------------------------------

def dockerfile_instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str, str]]:
    """(stage, INSTRUCTION, arguments) in order, continuation lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        if raw.strip().startswith("#") and not pending:
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        if raw.strip().startswith("#"):
            continue
        lines.append(pending + raw)
        pending = ""
    out: list[tuple[str, str, str]] = []
    stage = ""
    for line in lines:
        if not line.strip():
            continue
        word, _, rest = line.strip().partition(" ")
        word = word.upper()
        if word == "FROM":
            parts = rest.split()
            stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else parts[0]
        out.append((stage, word, rest.strip()))
    return out


def dockerfile_env(stage: str) -> dict[str, str]:
    """ENV values in effect in a stage (inherited from `FROM <earlier stage>`)."""
    env: dict[str, str] = {}
    parents = {s: rest.split()[0] for s, word, rest in dockerfile_instructions() if word == "FROM"}
    chain = [stage]
    while parents.get(chain[-1]) in parents:
        chain.append(parents[chain[-1]])
    for s, word, rest in dockerfile_instructions():
        if s in chain and word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def dockerfile_exec_form(stage: str, word: str) -> list[str]:
    """The last ENTRYPOINT/CMD of a stage, which must use the JSON (exec) form."""
    found = [rest for s, w, rest in dockerfile_instructions() if s == stage and w == word]
    assert found, f"no {word} in stage {stage}"
    return list(json.loads(found[-1]))


# ---- compose ------------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$\$")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose-style `${VAR}`, `${VAR:-default}`, `${VAR:?message}`; a missing required var raises."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op and op.endswith("?") and unset:
            raise KeyError(f"{name}: {arg}")
        if op and op.endswith("-") and unset:
            return arg
        return value or ""

    return _VAR.sub(one, text)


def compose_variables(text: str) -> dict[str, str | None]:
    """Variables the compose file reads → the operator used (None = plain)."""
    return {m.group("name"): m.group("op") for m in _VAR.finditer(text) if m.group("name")}


# ---- Kubernetes -------------------------------------------------------------------------------

def kustomize(directory: Path) -> list[dict[str, Any]]:
    """Objects of a kustomization: resources (recursively) with JSON6902 patches and namespace."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        objects.extend(kustomize(path) if path.is_dir() else yaml_docs(path))
    for patch in spec.get("patches", []):
        target = patch["target"]
        matches = [o for o in objects if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]]
        assert len(matches) == 1, f"patch target {target} matched {len(matches)} objects"
        json_patch(matches[0], yaml.safe_load(patch["patch"]))
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] != "Namespace":
                obj["metadata"]["namespace"] = spec["namespace"]
    return objects


def json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    """Apply RFC 6902 test/add/remove/replace in place (what the overlay uses)."""
    for op in ops:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = last if not isinstance(node, list) or last == "-" else int(last)
        if op["op"] == "test":
            assert node[key] == op["value"], f"patch test failed at {op['path']}"
        elif op["op"] == "remove":
            del node[key]
        elif op["op"] == "add" and isinstance(node, list):
            node.append(copy.deepcopy(op["value"])) if key == "-" else node.insert(key, copy.deepcopy(op["value"]))
        elif op["op"] in ("add", "replace"):
            node[key] = copy.deepcopy(op["value"])
        else:
            raise AssertionError(f"unsupported patch op {op['op']}")


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deployments and StatefulSets."""
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


def mcpgw_containers(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, container) for every container running the mcpgw image."""
    return [(w["spec"]["template"]["spec"], c) for w in workloads(objects)
            for c in w["spec"]["template"]["spec"]["containers"] if c["image"].split(":")[0] == "mcpgw"]


def container_env(container: dict[str, Any], secret_value: Callable[[str, str], str]) -> dict[str, str]:
    """The container's env with Secret refs replaced by `secret_value(secret, key)`."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secret_value(ref["name"], ref["key"])
    return env


def mount_for(pod: dict[str, Any], container: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volumeMount, volume) whose mountPath contains `path` (the deepest one)."""
    mounts = [m for m in container.get("volumeMounts", []) if path.is_relative_to(m["mountPath"])]
    assert mounts, f"{container['name']}: nothing mounted at {path}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    return mount, volume


def port_number(container: dict[str, Any], port: int | str) -> int:
    """A probe/Service port (number or name) as the container's port number."""
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert named, f"{container['name']}: no port named {port}"
    return int(named[0])
