"""PDP Prometheus metrics on the app's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Tool names come from callers: past this many (server, tool) pairs, new ones count as "_other".
MAX_TOOL_SERIES = 1000
DECISION_BUCKETS = (0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)


class PdpMetrics:
    """Decisions by result, decision latency, cache hits, policy version, reloads."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter("mcpgw_pdp_decisions_total", "Decisions", ["result"], registry=registry)
        self.latency = Histogram("mcpgw_pdp_decision_seconds", "Time to decide one evaluation (engine only)",
                                 buckets=DECISION_BUCKETS, registry=registry)
        self.cache = Counter("mcpgw_pdp_decision_cache_total", "Decision cache lookups", ["result"], registry=registry)
        self.policy = Gauge("mcpgw_pdp_policy_info", "Active policy version (value 1)", ["version", "sha256"],
                            registry=registry)
        self.reloads = Counter("mcpgw_pdp_policy_reloads_total", "Policy loads", ["outcome"], registry=registry)
        self.statements = Gauge("mcpgw_pdp_policy_statements", "Statements in the active policy", registry=registry)
        self.shadow = Counter("mcpgw_pdp_shadow_checks_total", "Sampled decisions re-decided by stock Casbin",
                              ["result"], registry=registry)  # agree | disagree | error | dropped
        self.tool_decisions = Counter(
            "mcpgw_pdp_tool_decisions_total", "invoke_tool decisions by server and tool (bounded cardinality)",
            ["server", "tool", "result"], registry=registry)
        self._tools: set[tuple[str, str]] = set()

    def tool_decision(self, server: str, tool: str, allowed: bool) -> None:
        """Count one tool-call decision; at most MAX_TOOL_SERIES (server, tool) pairs get their own series."""
        key = (server, tool)
        if key not in self._tools:
            if len(self._tools) >= MAX_TOOL_SERIES:
                key = ("_other", "_other")
            else:
                self._tools.add(key)
        self.tool_decisions.labels(*key, "allow" if allowed else "deny").inc()
