"""Policy enforcement point: the gateway's AuthZEN client to the PDP, with a decision cache.

Fail closed: a PDP that is unreachable, slower than its timeout, answers non-2xx or answers
anything that does not follow the wire contract raises `PdpUnavailable` (the gateway answers 503);
it is never read as an allow. Warnings name the failure kind and endpoint, never a token.

The PDP refuses a batch or search of more than its `max_batch` items (a 400, so a deny for all): the
client sends at most `max_batch` per request (MCPGW_GATEWAY_PDP_MAX_BATCH, set it to the PDP's), so
one backend's long list never fails everyone's catalog.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.pep_cache import DecisionCache, decision_key, subject_key
from shared import tracing
from shared.auth import Principal
from shared.authzen import (
    EVALUATION_PATH,
    EVALUATIONS_PATH,
    SEARCH_RESOURCE_PATH,
    TYPE_FOR_ACTION,
    Decision,
    Resource,
    WireError,
    evaluation_request,
    evaluations_request,
    parse_decision,
    parse_evaluations,
    parse_search,
    search_request,
    subject_to_wire,
    tool_resource,
)
from shared.jsonutil import dumps, loads
from shared.logging import REQUEST_ID_HEADER, request_id_var
from shared.metrics import LATENCY_BUCKETS
from shared.settings import Secret

log = logging.getLogger(__name__)

Item = tuple[str, Resource] | tuple[str, Resource, Mapping[str, Any] | None]


class PdpUnavailable(Exception):
    """The PDP gave no usable answer; the request must be denied (503), never forwarded."""


class PolicyClient:
    """Asks the PDP over the app's pooled ClientSession; caches decisions per policy version."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        token: Secret | str | None = None,
        timeout: float = 2.0,
        cache_ttl: float = 5.0,
        cache_size: int = 50_000,
        max_batch: int = 10_000,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        secret = token.get() if isinstance(token, Secret) else token
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if secret:
            self._headers["Authorization"] = f"Bearer {secret}"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_batch = max_batch
        self.cache: DecisionCache[Any] = DecisionCache(cache_ttl, cache_size)
        registry = registry if registry is not None else CollectorRegistry()
        self._latency = Histogram("mcpgw_gateway_pdp_request_duration_seconds", "PDP call latency", ["endpoint"],
                                  buckets=LATENCY_BUCKETS, registry=registry)
        self._failures = Counter("mcpgw_gateway_pdp_failures_total", "PDP calls that failed closed", ["kind"],
                                 registry=registry)
        lookups = Counter("mcpgw_gateway_pdp_cache_total", "Decision cache lookups", ["result"], registry=registry)
        self._hits, self._misses = lookups.labels("hit"), lookups.labels("miss")

    async def check(self, principal: Principal, action: str, resource: Resource,
                    arguments: Mapping[str, Any] | None = None, facts: Mapping[str, Any] | None = None) -> Decision:
        """One decision (cached); raises PdpUnavailable instead of ever guessing."""
        key = self._key(principal, action, resource, arguments, facts)
        cached = self._cached(key)
        if cached is not None:
            return cached
        subject = _subject(principal)
        body = evaluation_request(subject, action, resource, _plain(arguments), _plain(facts))
        epoch = self.cache.epoch
        decision = await self._call(EVALUATION_PATH, body, parse_decision)
        self._store(key, decision, decision.policy_version, epoch)
        return decision

    async def check_many(self, principal: Principal, items: Sequence[Item], *,
                         facts: Mapping[str, Any] | None = None) -> list[Decision]:
        """Decisions for several (action, resource[, arguments]) in order; misses go in batches of at most
        `max_batch`."""
        keys = []
        results: list[Decision | None] = []
        for item in items:
            action, resource, arguments = _unpack(item)
            key = self._key(principal, action, resource, arguments, facts)
            keys.append(key)
            results.append(self._cached(key))
        missing = [i for i, r in enumerate(results) if r is None]
        for chunk in _chunks(missing, self.max_batch):
            body = evaluations_request(_subject(principal), [_unpack(items[i]) for i in chunk], _plain(facts))
            epoch = self.cache.epoch
            fresh = await self._call(EVALUATIONS_PATH, body, functools.partial(parse_evaluations, expected=len(chunk)))
            for i, decision in zip(chunk, fresh, strict=True):
                results[i] = decision
                self._store(keys[i], decision, decision.policy_version, epoch)
        return [r for r in results if r is not None]

    async def filter_tools(self, principal: Principal, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (server, tool) pairs the caller may invoke: resource searches of at most `max_batch` candidates."""
        by_id = {f"{server}:{tool}": (server, tool) for server, tool in pairs}
        if not by_id:
            return set()
        subject = _subject(principal)
        key = (subject_key(principal), "search", "invoke_tool", tuple(sorted(by_id)))
        cached = self._cached(key)
        if cached is not None:
            return set(cached)
        epoch = self.cache.epoch
        found: set[tuple[str, str]] = set()
        versions: set[str | None] = set()
        for chunk in _chunks(list(by_id.values()), self.max_batch):
            body = search_request(subject, "invoke_tool", [tool_resource(server, tool) for server, tool in chunk])
            ids, version = await self._call(
                SEARCH_RESOURCE_PATH, body, lambda b: parse_search(b, TYPE_FOR_ACTION["invoke_tool"])
            )
            asked = {f"{server}:{tool}" for server, tool in chunk}
            # Only candidates this request asked about can come back allowed; anything else is ignored.
            found.update(by_id[i] for i in ids if i in asked)
            versions.add(version)
        allowed = frozenset(found)
        if len(versions) == 1:  # answers from two policy versions (a change between searches): served, not cached
            self._store(key, allowed, versions.pop(), epoch)
        return set(allowed)

    def policy_changed(self, version: str | None = None) -> None:
        """Flush the decision cache now (a policy-change notification; `version` if it named one)."""
        dropped = len(self.cache)
        self.cache.expect_version(version)
        log.info("policy change announced; decision cache flushed",
                 extra={"policy_version": version, "dropped": dropped})

    # -- internals ---------------------------------------------------------------------------

    def _key(self, principal: Principal, action: str, resource: Resource, arguments: Mapping[str, Any] | None,
             facts: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
        if not self.cache.enabled:
            return None
        try:
            return decision_key(subject_key(principal), action, resource.type, resource.id, arguments, facts)
        except TypeError:
            return None  # arguments that do not serialise canonically are simply not cached

    def _cached(self, key: tuple[Any, ...] | None) -> Any:
        if key is None:
            return None
        value = self.cache.get(key)
        (self._misses if value is None else self._hits).inc()
        return value

    def _store(self, key: tuple[Any, ...] | None, value: Any, version: str | None, epoch: int) -> None:
        if self.cache.observe_version(version, epoch):
            log.info("policy version changed; decision cache cleared", extra={"policy_version": version})
        if key is not None:
            self.cache.put(key, value, version)

    async def _call(self, path: str, body: dict[str, Any], parse: Any) -> Any:
        start = time.perf_counter()
        try:
            rid = request_id_var.get()  # the PDP mints its own id; it keeps this one as caller_request_id
            headers = {**self._headers, REQUEST_ID_HEADER: rid} if rid else self._headers
            with tracing.span(f"pdp {path}", client=True) as span:
                if span is not None:  # W3C traceparent: the PDP's span joins this trace
                    headers = dict(headers)
                    tracing.inject(headers)
                async with self._session.post(
                    self._base + path, data=dumps(body), headers=headers, timeout=self._timeout,
                    allow_redirects=False,  # a 3xx is a failure (deny), and the PDP token stays put
                ) as resp:
                    raw = await resp.read()
                    if not 200 <= resp.status < 300:
                        self._fail("status", path, f"PDP answered HTTP {resp.status}")
            return parse(loads(raw))
        except TimeoutError:
            self._fail("timeout", path, "PDP did not answer in time")
        except aiohttp.ClientError as exc:
            self._fail("unreachable", path, f"PDP unreachable ({type(exc).__name__})")
        except (WireError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, WireError) else "PDP answer is not JSON"
            self._fail("wire", path, reason)
        finally:
            self._latency.labels(path).observe(time.perf_counter() - start)

    def _fail(self, kind: str, path: str, message: str) -> NoReturn:
        self._failures.labels(kind).inc()
        log.warning("PDP call failed; denying", extra={"pdp_endpoint": path, "failure": kind, "reason": message})
        raise PdpUnavailable(message) from None


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """`items` in consecutive slices of at most `size`."""
    return (items[i:i + size] for i in range(0, len(items), size))


def _subject(principal: Principal) -> dict[str, Any]:
    return subject_to_wire(principal.subject, principal.roles, principal.groups, principal.scopes)


def _unpack(item: Item) -> tuple[str, Resource, Mapping[str, Any] | None]:
    if len(item) == 2:
        return item[0], item[1], None
    return item[0], item[1], item[2]  # type: ignore[misc]


def _plain(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)
