"""The active policy of one PDP process, swapped as a whole on reload.

Handlers read `state.current` once per request; a reload builds a complete new `Active` (parsed,
compiled, indexed) before one reference assignment publishes it, so no request ever sees a
half-loaded policy and a batch is answered by a single version.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass

from pdp.metrics import PdpMetrics
from pdp.policy import Engine, load_engine
from pdp.policy.native import parse_native
from pdp.policy.native_engine import NativeEngine

log = logging.getLogger(__name__)


def sha256_text(text: str) -> str:
    """Hex sha256 of policy text (what versions record)."""
    return hashlib.sha256(text.encode()).hexdigest()


def pair_sha256(model: str, policy: str) -> str:
    """Hex sha256 identifying a native Casbin pair."""
    return sha256_text(model + "\n\0\n" + policy)


@dataclass(frozen=True)
class Active:
    """One loaded policy version."""

    engine: Engine
    yaml: str  # the policy text: a YAML document, or Casbin policy lines when `model` is set
    sha256: str
    loaded_at: float
    model: str | None = None  # native Casbin versions: the model text
    native: NativeEngine | None = None  # native Casbin versions: what decides (`engine` denies all)

    @property
    def version(self) -> str:
        """The version string answers carry."""
        return self.engine.version


class PolicyState:
    """Holds the active policy; `load` validates and compiles off the event loop, then swaps."""

    def __init__(self, metrics: PdpMetrics, cache_size: int) -> None:
        self.metrics = metrics
        self.cache_size = cache_size
        self.current: Active | None = None
        self._lock = asyncio.Lock()

    async def load(self, text: str, version: str, model: str | None = None) -> Active:
        """Compile `text` (with `model`: a native Casbin pair) as `version` and make it active.

        Raises PolicyInvalid; nothing changes then.
        """
        async with self._lock:  # reloads in arrival order: an older one never overwrites a newer one
            current = self.current
            if current is not None and (current.version, current.yaml, current.model) == (version, text, model):
                return current
            try:
                active = await asyncio.to_thread(self._build, text, version, model)
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                raise
            engine = active.engine
            previous, self.current = self.current, active
            if previous is not None:
                self.metrics.policy.remove(previous.version, previous.sha256)
            self.metrics.policy.labels(active.version, active.sha256).set(1)
            statements = len(active.native.native.lines) if active.native else len(engine.compiled.statements)
            self.metrics.statements.set(statements)
            self.metrics.reloads.labels("ok").inc()
            log.info("policy loaded", extra={"policy_version": version, "statements": statements,
                                             "kind": "casbin" if model is not None else "yaml"})
            return active

    def _build(self, text: str, version: str, model: str | None) -> Active:
        """Worker thread: validate and compile (YAML) or load into pycasbin (native pair)."""
        if model is None:
            return Active(load_engine(text, version, self.cache_size), text, sha256_text(text), time.time())
        native = NativeEngine(parse_native(model, text), version, self.cache_size)
        # The YAML engine of a native version denies everything: a code path that does not know
        # native versions fails closed instead of answering from an unrelated policy.
        deny_all = load_engine("default_policy: deny\n", version)
        return Active(deny_all, text, pair_sha256(model, text), time.time(), model, native)
