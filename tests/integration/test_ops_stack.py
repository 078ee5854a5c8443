"""The operations files checked offline against what the services really are (no Docker needed).

- docker-compose.ops.yml (and the base file) validate against the Compose specification schema;
  every file they mount exists; the gateway's issuer/audience match the Keycloak realm.
- The realm: the users and client the docs promise, every policy role exists, and testuser's
  token roles are allowed `echo` and denied `delete_records` by the shipped policy (real engine).
- Every metric the dashboard and the alert rules query is one the gateway or the PDP exposes: the
  real apps are started (real Postgres) and their /metrics read; both expose only `mcpgw_*`
  families, process metrics and build info included, and no `_created` series.
- promtool accepts the Prometheus config and rules and the alerts' unit tests pass (required when
  MCPGW_REQUIRE_PROMTOOL=1, as in `make test`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from pdp.policy import Request, load_engine
from tests.integration.gateway_harness import gateway_stack

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OPS = yaml.safe_load((ROOT / "docker-compose.ops.yml").read_text())
REALM = json.loads((ROOT / "deploy" / "keycloak" / "realm-mcp-gateway.json").read_text())
POLICY_TEXT = (ROOT / "policies" / "policy.yaml").read_text()
POLICY = yaml.safe_load(POLICY_TEXT)
ALERTS = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "mcpgw.json").read_text())
# PromQL words that are not metric names.
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "max", "or", "and", "le", "up"}


def compose_schema() -> dict:
    import check_jsonschema

    path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("spec", [BASE, OPS], ids=["docker-compose.yml", "docker-compose.ops.yml"])
def test_compose_files_follow_the_compose_specification(spec):
    jsonschema.validate(spec, compose_schema())


def test_ops_overlay_only_extends_known_services_and_mounts_existing_files():
    new = set(OPS["services"]) - set(BASE["services"])
    assert new == {"keycloak", "prometheus", "grafana"}
    for name, svc in OPS["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
    mounted = {v.split(":")[1]: v.split(":")[0] for v in OPS["services"]["prometheus"]["volumes"]}
    for rule_file in PROMETHEUS["rule_files"]:
        rel = PurePosixPath(rule_file).relative_to("/etc/prometheus")
        assert (ROOT / mounted["/etc/prometheus"] / rel).is_file()


def test_gateway_trusts_the_realm_and_the_realm_gives_its_audience():
    env = OPS["services"]["gateway"]["environment"]
    hostname = OPS["services"]["keycloak"]["environment"]["KC_HOSTNAME"]
    assert env["MCPGW_GATEWAY_ISSUER"] == f"{hostname}/realms/{REALM['realm']}"
    jwks = urlsplit(env["MCPGW_GATEWAY_JWKS_URL"])
    assert jwks.hostname == "keycloak" and jwks.path == f"/realms/{REALM['realm']}/protocol/openid-connect/certs"
    [client] = [c for c in REALM["clients"] if c["clientId"] == "mcp-gateway-client"]
    assert client["directAccessGrantsEnabled"] and client["publicClient"]
    audiences = {m["config"]["included.custom.audience"] for m in client["protocolMappers"]
                 if m["protocolMapper"] == "oidc-audience-mapper"}
    assert audiences == {env["MCPGW_GATEWAY_AUDIENCE"]}
    volume = OPS["services"]["keycloak"]["volumes"][0].split(":")
    assert volume[1] == "/opt/keycloak/data/import" and "--import-realm" in OPS["services"]["keycloak"]["command"]


def test_realm_users_and_roles_match_the_policy():
    assert REALM["realm"] == "mcp-gateway"
    realm_roles = {r["name"] for r in REALM["roles"]["realm"]}
    assert set(POLICY["roles"]) <= realm_roles, set(POLICY["roles"]) - realm_roles
    users = {u["username"]: u for u in REALM["users"]}
    passwords = {name: u["credentials"][0]["value"] for name, u in users.items()}
    assert passwords == {"testuser": "testpass", "admin": "admin123"}
    for user in users.values():
        assert set(user["realmRoles"]) <= realm_roles, user["username"]
    engine = load_engine(POLICY_TEXT, "test")

    def may(user: str, tool: str) -> bool:
        roles = tuple(users[user]["realmRoles"])
        return engine.decide(Request(user, "invoke_tool", "demo", "tool", tool, roles)).allowed

    # What `make test-auth` checks against the running stack, decided here by the real engine.
    assert may("testuser", "echo") and not may("testuser", "delete_records")
    assert may("admin", "delete_records")


def query_texts() -> list[tuple[str, str]]:
    """(where, PromQL) for every dashboard target and alert rule."""
    out = [(f"dashboard panel {p['title']!r}", t["expr"]) for p in DASHBOARD["panels"] for t in p["targets"]]
    out += [(f"alert {r['alert']}", r["expr"]) for g in ALERTS["groups"] for r in g["rules"]]
    return out


def metric_names(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that name metrics (labels and functions left out)."""
    expr = re.sub(r'"[^"]*"', "", expr)                 # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)               # label matchers
    expr = re.sub(r"\b(?:by|without)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\[[^\]]*\]", "", expr)              # ranges
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return {w for w in words if w not in PROMQL_WORDS and not w.startswith("$")}


def exposed(text: str) -> set[str]:
    """Every series name the exposition can produce, from its # TYPE lines."""
    names = set()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        if kind == "counter":  # without _created the TYPE line names the sample itself (..._total)
            names.add(family if family.endswith("_total") else family + "_total")
            continue
        suffixes = {"histogram": ["_bucket", "_sum", "_count"], "summary": ["", "_sum", "_count"],
                    "info": ["_info"]}.get(kind, [""])
        names |= {family + s for s in suffixes}
    return names


@pytest.fixture
async def metrics_texts(tmp_path, pg_dsn):
    async with gateway_stack(tmp_path, pg_dsn, {"demo": {"url": "http://127.0.0.1:9/mcp"}}) as stack:
        async with stack.session.get(stack.url + "/metrics") as resp:
            gateway = await resp.text()
        async with stack.session.get(stack.pdp_url + "/metrics") as resp:
            pdp = await resp.text()
    return {"gateway": gateway, "pdp": pdp}


async def test_dashboard_and_alerts_query_metrics_the_services_expose(metrics_texts):
    available = exposed(metrics_texts["gateway"]) | exposed(metrics_texts["pdp"])
    missing = {(where, name) for where, expr in query_texts() for name in metric_names(expr)
               if name not in available}
    assert not missing, sorted(missing)
    assert {"mcpgw_pdp_tool_decisions_total", "mcpgw_audit_queue_depth",
            "mcpgw_gateway_backend_call_duration_seconds_bucket"} <= available


async def test_one_prefix_process_metrics_build_info_and_no_created_series(metrics_texts):
    for service, text in metrics_texts.items():
        families = re.findall(r"^# TYPE (\S+) ", text, re.M)
        assert families and all(f.startswith("mcpgw_") for f in families), [f for f in families if not f.startswith("mcpgw_")]
        assert "_created" not in text, service
        for name in ("mcpgw_process_resident_memory_bytes", "mcpgw_process_cpu_seconds_total",
                     "mcpgw_process_open_fds"):
            assert re.search(rf"^{name} \S+$", text, re.M), (service, name)
        assert re.search(rf'^mcpgw_build_info\{{.*service="{service}".*\}} 1\.0$', text, re.M), service


def test_metric_name_extraction():
    expr = 'sum by (server) (rate(a_total{outcome!="ok"}[5m])) / sum(rate(b_count[$__rate_interval])) or up{job="x"} == 0'
    assert metric_names(expr) == {"a_total", "b_count"}


def promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        if os.environ.get("MCPGW_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is required (MCPGW_REQUIRE_PROMTOOL=1): install the Debian package 'prometheus'")
        pytest.skip("promtool not installed (Debian package 'prometheus'; `make test` installs it)")
    return exe


def test_promtool_accepts_config_rules_and_the_alert_unit_tests(tmp_path):
    exe = promtool()
    prom = ROOT / "deploy" / "prometheus"
    config = tmp_path / "prometheus.yml"  # the config names the container path of the rules
    config.write_text((prom / "prometheus.yml").read_text().replace("/etc/prometheus/", f"{prom}/"))
    for args in (["check", "config", str(config)], ["check", "rules", str(prom / "alerts.yml")],
                 ["test", "rules", str(prom / "alerts_test.yml")]):
        done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, cwd=prom)
        assert done.returncode == 0, (args, done.stdout, done.stderr)


def test_every_alert_the_issue_asks_for_is_shipped():
    names = {r["alert"] for g in ALERTS["groups"] for r in g["rules"]}
    assert names == {"McpgwPdpUnreachable", "McpgwAuditEventsDropped", "McpgwAuditEventsSpooled",
                     "McpgwDecisionLatencyHigh", "McpgwBackendErrorRatio", "McpgwPolicyReloadFailed"}
    tested = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts_test.yml").read_text())
    assert tested["rule_files"] == ["alerts.yml"]
