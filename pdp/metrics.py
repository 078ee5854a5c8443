"""PDP Prometheus metrics on the app's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DECISION_BUCKETS = (0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)


class PdpMetrics:
    """Decisions by result, decision latency, cache hits, policy version, reloads."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter("pdp_decisions_total", "Decisions", ["result"], registry=registry)
        self.latency = Histogram("pdp_decision_seconds", "Time to decide one evaluation (engine only)",
                                 buckets=DECISION_BUCKETS, registry=registry)
        self.cache = Counter("pdp_decision_cache_total", "Decision cache lookups", ["result"], registry=registry)
        self.policy = Gauge("pdp_policy_info", "Active policy version (value 1)", ["version", "sha256"],
                            registry=registry)
        self.reloads = Counter("pdp_policy_reloads_total", "Policy loads", ["outcome"], registry=registry)
        self.statements = Gauge("pdp_policy_statements", "Statements in the active policy", registry=registry)
        self.shadow = Counter("pdp_shadow_checks_total", "Sampled decisions re-decided by stock Casbin",
                              ["result"], registry=registry)  # agree | disagree | error | dropped
