"""Kubernetes manifests (deploy/k8s) checked against the real settings, CLI, routes and file formats.

Both topologies are checked: the base (PDP sidecar) and overlays/standalone-pdp (patched here the
way kustomize would). No cluster or kubectl is needed.
"""

from __future__ import annotations

import inspect
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.registry import parse_servers
from pdp.policy import load_engine
from shared import db
from tests.deploy.deploy_support import (
    K8S,
    ROOT,
    build_app,
    container_env,
    dockerfile_env,
    effective_settings,
    get_paths,
    is_secret_setting,
    kustomize,
    mcpgw_containers,
    mount_for,
    parse_command,
    port_number,
    service_of,
    setting_fields,
    workloads,
    yaml_docs,
)

TOPOLOGIES = {"base": K8S / "base", "standalone-pdp": K8S / "overlays" / "standalone-pdp"}


@pytest.fixture(scope="module", params=sorted(TOPOLOGIES))
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return kustomize(TOPOLOGIES[request.param])


def fake_secret(secret: str, key: str) -> str:
    return "postgresql://mcpgw:pw@mcpgw-postgres:5432/mcpgw" if key == "database-url" else f"dummy-{secret}-{key}"


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def resolved(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any], str, Any]]:
    """(pod, container, service, settings) for every mcpgw container, settings as it would run."""
    out = []
    for pod, container in mcpgw_containers(objects):
        args = parse_command(container["args"])
        service = service_of(args)
        env = {**dockerfile_env("runtime"), **container_env(container, fake_secret)}
        out.append((pod, container, service, effective_settings(service, args, env)))
    return out


def test_every_manifest_file_is_listed_and_well_formed() -> None:
    for directory in TOPOLOGIES.values():
        listed = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
        files = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
        assert files == {r for r in listed if not r.startswith("..")}, directory
    for path in [*K8S.rglob("*.yaml")]:
        for doc in yaml_docs(path):
            assert doc.get("apiVersion") and doc.get("kind"), path
            if doc["kind"] != "Kustomization":
                assert doc["metadata"]["name"], path


def test_selectors_services_pdbs_and_hpa_point_at_real_pods(objects: list[dict[str, Any]]) -> None:
    pods = {w["metadata"]["name"]: w for w in workloads(objects)}
    for w in pods.values():
        assert matches(w["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
    for svc in (o for o in objects if o["kind"] == "Service"):
        targets = [w for w in pods.values() if matches(svc["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
        assert len(targets) == 1, svc["metadata"]["name"]
        containers = targets[0]["spec"]["template"]["spec"]["containers"]
        for port in svc["spec"]["ports"]:
            assert any(port_number(c, port["targetPort"]) for c in containers if
                       any(p.get("name") == port["targetPort"] for p in c["ports"]))
    for pdb in (o for o in objects if o["kind"] == "PodDisruptionBudget"):
        assert any(matches(pdb["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
                   for w in pods.values())
    hpa = find(objects, "HorizontalPodAutoscaler", "mcpgw-gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] in pods and hpa["spec"]["minReplicas"] >= 2


def test_volumes_and_mounts_agree(objects: list[dict[str, Any]]) -> None:
    for w in workloads(objects):
        spec = w["spec"]["template"]["spec"]
        declared = {v["name"] for v in spec.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in w["spec"].get("volumeClaimTemplates", [])}
        used = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        assert used <= declared | claims, w["metadata"]["name"]
        assert declared <= used, f"{w['metadata']['name']}: unused volumes {declared - used}"
        for v in spec.get("volumes", []):
            if "configMap" in v:
                find(objects, "ConfigMap", v["configMap"]["name"])


def test_containers_run_real_commands_with_real_settings(objects: list[dict[str, Any]]) -> None:
    seen = set()
    for _pod, container, service, settings in resolved(objects):
        seen.add(service)
        known = setting_fields(service)
        for item in container.get("env", []):
            assert item["name"] in known, f"{container['name']}: {item['name']} is not a {service} setting"
        assert settings.host == "0.0.0.0"
        assert [p["containerPort"] for p in container["ports"]] == [settings.port]
    assert seen == {"gateway", "pdp"}


def test_probes_and_scrape_targets_are_real_routes(objects: list[dict[str, Any]]) -> None:
    for _pod, container, service, settings in resolved(objects):
        paths = get_paths(build_app(service, settings))
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] in paths, f"{container['name']} {probe}: no route {get['path']}"
            assert port_number(container, get["port"]) == settings.port
        assert "/metrics" in paths
    for w in workloads(objects):
        notes = w["spec"]["template"]["metadata"].get("annotations", {})
        if notes.get("prometheus.io/scrape") == "true":
            ports = [p["containerPort"] for c in w["spec"]["template"]["spec"]["containers"] for p in c["ports"]]
            assert int(notes["prometheus.io/port"]) in ports and notes["prometheus.io/path"] == "/metrics"


def test_config_files_come_from_configmaps_mounted_without_subpath(objects: list[dict[str, Any]]) -> None:
    for pod, container, service, settings in resolved(objects):
        path = settings.servers_file if service == "gateway" else settings.policy_path
        mount, volume = mount_for(pod, container, path)
        assert "subPath" not in mount, "subPath mounts never receive ConfigMap updates (the apps watch the file)"
        config_map = find(objects, "ConfigMap", volume["configMap"]["name"])
        key = str(PurePosixPath(path).relative_to(mount["mountPath"]))
        assert key in config_map["data"]


def test_configmap_contents_are_valid_policy_and_servers(objects: list[dict[str, Any]]) -> None:
    load_engine(find(objects, "ConfigMap", "mcpgw-policy")["data"]["policy.yaml"], "test")
    servers, errors = parse_servers(yaml.safe_load(find(objects, "ConfigMap", "mcpgw-servers")["data"]["mcp_servers.yaml"]))
    assert not errors and servers


def test_backend_credential_refs_resolve_inside_the_gateway_pod(objects: list[dict[str, Any]]) -> None:
    servers, _ = parse_servers(yaml.safe_load(find(objects, "ConfigMap", "mcpgw-servers")["data"]["mcp_servers.yaml"]))
    [(pod, gateway)] = [(p, c) for p, c, s, _ in resolved(objects) if s == "gateway"]
    env = {e["name"]: e for e in gateway.get("env", [])}
    for server in servers.values():
        ref = server.auth.secret_ref
        if ref is None:
            continue
        scheme, _, target = ref.partition("://")
        if scheme == "file":
            _mount, volume = mount_for(pod, gateway, Path(target))
            assert "secret" in volume, f"{server.name}: {ref} is not on a Secret volume"
        else:
            assert "secretKeyRef" in env[target].get("valueFrom", {}), f"{server.name}: {target} must come from a Secret"


def test_no_secret_values_in_manifests(objects: list[dict[str, Any]]) -> None:
    assert not [o for o in objects if o["kind"] == "Secret"], "Secrets are created out of band (docs/deploy.md)"
    for w in workloads(objects):
        for c in w["spec"]["template"]["spec"]["containers"]:
            for item in c.get("env", []):
                name = item["name"]
                sensitive = any(is_secret_setting(s, name) for s in ("gateway", "pdp")) or any(
                    word in name for word in ("PASSWORD", "TOKEN", "SECRET", "DATABASE_URL"))
                if sensitive:
                    assert "secretKeyRef" in item.get("valueFrom", {}), f"{c['name']}: {name} inlined"


def test_every_secret_key_is_documented(objects: list[dict[str, Any]]) -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    for w in workloads(objects):
        for c in w["spec"]["template"]["spec"]["containers"]:
            for item in c.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert f"--from-literal={ref['key']}=" in doc and ref["name"] in doc, ref


def test_replicated_gateway_shares_the_session_secret(objects: list[dict[str, Any]]) -> None:
    for _pod, _container, service, settings in resolved(objects):
        if service == "gateway":
            assert settings.mcp_session_secret, "replicas > 1 need MCPGW_GATEWAY_MCP_SESSION_SECRET"
            assert not settings.auth_off and settings.issuer and settings.audience


def test_pods_are_hardened(objects: list[dict[str, Any]]) -> None:
    for w in workloads(objects):
        spec = w["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec.get("automountServiceAccountToken") is False
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"] and c["resources"]["limits"]
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])
    for pod, container, _service, settings in resolved(objects):
        assert pod["securityContext"]["runAsUser"] == 10001
        _mount, volume = mount_for(pod, container, settings.data_dir / "audit-spool")
        assert "emptyDir" in volume, "the audit spool needs a writable volume (read-only root fs)"


def test_pdp_access_matches_the_topology(objects: list[dict[str, Any]]) -> None:
    by_service: dict[str, list[tuple[dict[str, Any], dict[str, Any], Any]]] = {}
    for pod, container, service, settings in resolved(objects):
        by_service.setdefault(service, []).append((pod, container, settings))
    [(gw_pod, gw_container, gateway)] = by_service["gateway"]
    [(_pdp_pod, pdp_container, pdp)] = by_service["pdp"]
    url = urlsplit(gateway.pdp_url)
    sidecar = any(c is pdp_container for c in gw_pod["containers"])
    if sidecar:
        assert pdp.access_mode == "sidecar" and url.hostname == "127.0.0.1" and url.port == pdp.port
        assert gateway.pdp_token is None
    else:
        assert pdp.access_mode == "standalone" and pdp.api_token
        svc = find(objects, "Service", url.hostname or "")
        [port] = [p for p in svc["spec"]["ports"] if p["port"] == url.port]
        assert port_number(pdp_container, port["targetPort"]) == pdp.port
        token_refs = {e["valueFrom"]["secretKeyRef"]["key"] for e in [*gw_container["env"], *pdp_container["env"]]
                      if e["name"] in ("MCPGW_GATEWAY_PDP_TOKEN", "MCPGW_PDP_API_TOKEN")}
        assert len(token_refs) == 1, "gateway and PDP must read the same token"


def test_postgres_service_matches_the_database_url() -> None:
    objects = kustomize(TOPOLOGIES["base"])
    url = urlsplit(fake_secret("mcpgw-secrets", "database-url"))
    svc = find(objects, "Service", url.hostname or "")
    assert url.port in [p["port"] for p in svc["spec"]["ports"]]
    pg = find(objects, "StatefulSet", "mcpgw-postgres")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in pg["env"]}
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"]) == (url.username, url.path.lstrip("/"))
    assert "secretKeyRef" in next(e for e in pg["env"] if e["name"] == "POSTGRES_PASSWORD")["valueFrom"]


def test_postgres_connection_budget_covers_the_largest_scale(objects: list[dict[str, Any]]) -> None:
    pool = inspect.signature(db.create_pool).parameters["max_size"].default
    per_container = {"gateway": pool, "pdp": pool + 1}  # the PDP also holds one LISTEN connection
    scale = {h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
             for h in objects if h["kind"] == "HorizontalPodAutoscaler"}
    needed = 0
    for w in workloads(objects):
        pods = scale.get(w["metadata"]["name"], w["spec"].get("replicas", 1))
        for c in w["spec"]["template"]["spec"]["containers"]:
            if c["image"].split(":")[0] == "mcpgw":
                needed += pods * per_container[service_of(parse_command(c["args"]))]
    args = find(objects, "StatefulSet", "mcpgw-postgres")["spec"]["template"]["spec"]["containers"][0]["args"]
    max_connections = int(next(a.split("=")[1] for a in args if a.startswith("max_connections=")))
    assert needed + 10 <= max_connections, f"{needed} connections at full scale, Postgres allows {max_connections}"
