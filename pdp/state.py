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

log = logging.getLogger(__name__)


def sha256_text(text: str) -> str:
    """Hex sha256 of policy text (what versions record)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Active:
    """One loaded policy version."""

    engine: Engine
    yaml: str
    sha256: str
    loaded_at: float

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

    async def load(self, text: str, version: str) -> Active:
        """Compile `text` as `version` and make it active (raises PolicyInvalid; nothing changes)."""
        async with self._lock:  # reloads in arrival order: an older one never overwrites a newer one
            if self.current is not None and self.current.version == version and self.current.yaml == text:
                return self.current
            try:
                engine = await asyncio.to_thread(load_engine, text, version, self.cache_size)
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                raise
            active = Active(engine, text, sha256_text(text), time.time())
            previous, self.current = self.current, active
            if previous is not None:
                self.metrics.policy.remove(previous.version, previous.sha256)
            self.metrics.policy.labels(active.version, active.sha256).set(1)
            self.metrics.statements.set(len(engine.compiled.statements))
            self.metrics.reloads.labels("ok").inc()
            log.info("policy loaded", extra={"policy_version": version, "statements": len(engine.compiled.statements)})
            return active
