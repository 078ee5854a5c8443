"""PDP benchmark: fast path vs stock pycasbin enforce, cache, search, HTTP p50, shadow sampling
overhead, native Casbin model decisions (one run, ratios).

Run: .venv/bin/python bench/bench_pdp.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pdp.policy import Request, load_engine  # noqa: E402
from pdp.policy.casbin_engine import build_enforcer, casbin_decide  # noqa: E402


def make_policy(rng: random.Random, statements: int = 1000, roles: int = 100, users: int = 1000) -> str:
    names = [f"role{i}" for i in range(roles)]
    per_role = statements // roles - 1
    doc: dict = {"roles": {}, "user_roles": {}, "rules": [], "default_policy": "deny"}
    for i, name in enumerate(names):
        perms = [{"resource": f"mcp:srv{rng.randrange(50)}:{rng.choice(['*', f'tool{rng.randrange(20)}'])}",
                  "actions": [rng.choice(["invoke_tool", "list_tools"])]} for _ in range(per_role)]
        doc["roles"][name] = {"permissions": perms, **({"inherits": [names[i - 1]]} if i % 10 else {})}
    for u in range(users):
        doc["user_roles"][f"user{u}"] = rng.sample(names, 2)
    for r in range(roles):
        doc["rules"].append({"name": f"rule{r}", "action": rng.choice(["allow", "deny"]), "priority": rng.randrange(10),
                             "condition": {"mcp_server": f"srv{rng.randrange(50)}", "tool_name_pattern": f".*{r}.*"}})
    return yaml.safe_dump(doc)


def requests(rng: random.Random, n: int) -> list[Request]:
    return [Request(f"user{rng.randrange(1000)}", "invoke_tool", f"srv{rng.randrange(50)}", "tool",
                    f"tool{rng.randrange(30)}") for _ in range(n)]


def per_call(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / len(items)


async def http_p50(text: str, n: int, shadow_sample: float = 0.0) -> tuple[float, float]:
    import tempfile

    import aiohttp
    from aiohttp import web

    from pdp.app import create_app
    from pdp.settings import PdpSettings

    tmp = Path(tempfile.mkdtemp())
    (tmp / "p.yaml").write_text(text)
    settings = PdpSettings(policy_file=tmp / "p.yaml", policy_source="file", audit_postgres=False, data_dir=tmp,
                           shadow_sample=shadow_sample)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/access/v1/evaluation"
    body = {"subject": {"type": "user", "id": "user1"}, "action": {"name": "invoke_tool"},
            "resource": {"type": "mcp_tool", "id": "srv1:tool1"}}
    times = []
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            start = time.perf_counter()
            async with session.post(url, json=body) as resp:
                await resp.read()
            times.append(time.perf_counter() - start)
        search = {"subject": {"type": "user", "id": "user3"}, "action": {"name": "invoke_tool"},
                  "resource": {"type": "mcp_tool"},
                  "context": {"candidates": [f"srv{i % 50}:tool{i}" for i in range(1000)]}}
        search_url = url.replace("/evaluation", "/search/resource")
        searches = []
        for _ in range(max(20, n // 20)):
            start = time.perf_counter()
            async with session.post(search_url, json=search) as resp:
                await resp.read()
            searches.append(time.perf_counter() - start)
    await runner.cleanup()
    return statistics.median(times[n // 10:]), statistics.median(searches)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_casbin, n_fast = (50, 5000) if args.quick else (300, 50_000)
    rng = random.Random(7)
    text = make_policy(rng)
    engine = load_engine(text, "bench", cache_size=10**7)
    enforcer = build_enforcer(engine.compiled)
    print(f"policy: {len(engine.compiled.statements)} statements, 100 roles, 1000 users")
    sample = requests(rng, n_casbin)
    same = all(engine.decide(r).statement == casbin_decide(enforcer, engine.compiled, r) for r in sample)
    t_casbin = per_call(lambda r: casbin_decide(enforcer, engine.compiled, r), sample)
    uncached = requests(rng, n_fast)
    t_fast = per_call(lambda r: engine._search(r, engine.effective_roles(r.subject, r.roles, r.groups),
                                               f"mcp:{r.server}:{r.name}"), uncached)
    for r in uncached[:1000]:
        engine.decide(r)
    hot = uncached[:1000] * (n_fast // 1000)
    t_cached = per_call(engine.decide, hot)
    tools = [(f"srv{i % 50}", f"tool{i}") for i in range(1000)]
    base = Request("user3", "invoke_tool", "", "server")
    searches, per_decide = [], []
    for i in range(5 if args.quick else 20):  # a fresh engine each time: its decision cache is cold
        cold = load_engine(text, f"search{i}")
        start = time.perf_counter()
        found = cold.search_tools(base, tools)
        searches.append(time.perf_counter() - start)
        one_by_one = load_engine(text, f"decide{i}")  # the pre-search way: decide() per candidate
        start = time.perf_counter()
        same_search = [t for t in tools if one_by_one.decide(
            Request("user3", "invoke_tool", t[0], "tool", t[1])).allowed] == found
        per_decide.append(time.perf_counter() - start)
        assert same_search, "search and decide disagree"
    start = time.perf_counter()
    cold.search_tools(base, tools)
    t_warm = time.perf_counter() - start
    t_search, t_loop = statistics.median(searches), statistics.median(per_decide)
    p50, search_p50 = asyncio.run(http_p50(text, 300 if args.quick else 2000))
    casbin_loop = (engine, hot, sample, text, args.quick)
    print(f"identical answers (fast vs casbin, {n_casbin} requests): {same}")
    print(f"stock casbin enforce_ex:        {t_casbin * 1e6:10.1f} us/decision")
    print(f"fast path, uncached:            {t_fast * 1e6:10.1f} us/decision  ({t_casbin / t_fast:.0f}x faster)")
    print(f"fast path, cached:              {t_cached * 1e6:10.2f} us/decision")
    print(f"resource search, 1000 tools:    {t_search * 1e3:10.2f} ms (cold cache, median of {len(searches)};"
          f" {len(found)} allowed)")
    print(f"  same via decide() per tool:   {t_loop * 1e3:10.2f} ms ({t_loop / t_search:.1f}x the search)")
    print(f"  search again, warm cache:     {t_warm * 1e3:10.2f} ms")
    print(f"HTTP single evaluation p50:     {p50 * 1e3:10.3f} ms (loopback, keep-alive)")
    print(f"HTTP search, 1000 candidates:   {search_p50 * 1e3:10.2f} ms p50 (decision cache warm after the first)")
    report_casbin_in_the_loop(*casbin_loop)


def shadow_overhead(engine, hot: list[Request]) -> dict[float, float]:
    """µs per decision added on the hot path by `Shadow.offer` (no worker: the queue only grows)."""
    from prometheus_client import CollectorRegistry

    from pdp.metrics import PdpMetrics
    from pdp.shadow import Shadow

    async def run() -> dict[float, float]:
        base = per_call(lambda r: engine.decide(r).statement, hot)  # the same call shape, without offer
        out = {}
        for rate in (0.01, 1.0):
            shadow = Shadow(rate, PdpMetrics(CollectorRegistry()), queue_size=len(hot) + 1)

            def both(r: Request, shadow: Shadow = shadow) -> None:
                shadow.offer(engine, r, engine.decide(r).statement)
            out[rate] = per_call(both, hot) - base
        return out

    return asyncio.run(run())


def shadow_worker_rate(engine, sample: list[Request]) -> float:
    """Samples per second one shadow worker re-decides (stock enforce_ex on the same policy)."""
    from prometheus_client import CollectorRegistry

    from pdp.metrics import PdpMetrics
    from pdp.shadow import Shadow

    shadow = Shadow(1.0, PdpMetrics(CollectorRegistry()))
    shadow._enforcer_for(engine)  # built once per version; not part of the per-sample cost
    batch = [(engine, r, engine.decide(r).statement) for r in sample]
    start = time.perf_counter()
    assert shadow._check(batch) == []
    return len(batch) / (time.perf_counter() - start)


def native_costs(n: int) -> tuple[float, float, float, float]:
    """(Todo example uncached µs, cached µs, 1,000-line RBAC model uncached µs, cached µs)."""
    import json

    from pdp.policy.native import parse_native
    from pdp.policy.native_engine import NativeEngine

    ex = Path(__file__).resolve().parent.parent / "examples" / "authzen-todo"
    todo = NativeEngine(parse_native((ex / "model.conf").read_text(), (ex / "policy.csv").read_text()), "t")
    vectors = [v["request"] for v in json.loads((ex / "decisions-1.0-implementers-draft.json").read_text())["evaluation"]]
    bodies = [{**v, "context": {"i": i}} for i, v in enumerate(vectors * (n // len(vectors) + 1))][:n]
    t_todo = per_call(todo.decide, bodies)
    t_todo_hit = per_call(todo.decide, bodies)
    model = ("[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n"
             "[role_definition]\ng = _, _\n[policy_effect]\ne = some(where (p.eft == allow))\n"
             "[matchers]\nm = g(r.sub.id, p.sub) && r.obj.id == p.obj && r.act == p.act\n")
    rng = random.Random(3)
    lines = [f"p, role{i % 100}, srv{rng.randrange(50)}:tool{rng.randrange(20)}, invoke" for i in range(1000)]
    lines += [f"g, user{u}, role{rng.randrange(100)}" for u in range(1000)]
    rbac = NativeEngine(parse_native(model, "\n".join(lines)), "r")
    reqs = [{"subject": {"type": "user", "id": f"user{rng.randrange(1000)}"}, "action": {"name": "invoke"},
             "resource": {"type": "tool", "id": f"srv{rng.randrange(50)}:tool{rng.randrange(30)}"}, "context": {}}
            for _ in range(max(20, n // 20))]
    t_rbac = per_call(rbac.decide, reqs)
    t_rbac_hit = per_call(rbac.decide, reqs)
    return t_todo, t_todo_hit, t_rbac, t_rbac_hit


def report_casbin_in_the_loop(engine, hot: list[Request], sample: list[Request], text: str, quick: bool) -> None:
    """Shadow sampling overhead and native model costs (issue 13)."""
    overhead = shadow_overhead(engine, hot)
    rate = shadow_worker_rate(engine, sample)
    n_http = 300 if quick else 2000
    p50 = {s: asyncio.run(http_p50(text, n_http, shadow_sample=s))[0] for s in (0.0, 0.01, 1.0)}
    t_todo, t_todo_hit, t_rbac, t_rbac_hit = native_costs(400 if quick else 4000)
    print(f"shadow offer on the hot path:   {overhead[0.01] * 1e6:10.2f} us/decision at 1%, "
          f"{overhead[1.0] * 1e6:.2f} us at 100% (cached decide as the base)")
    print(f"shadow worker (enforce_ex):     {rate:10.0f} samples/s re-decided off the hot path")
    print(f"HTTP evaluation p50, shadow:    {p50[0.0] * 1e3:.3f} ms off, {p50[0.01] * 1e3:.3f} ms at 1%, "
          f"{p50[1.0] * 1e3:.3f} ms at 100%")
    print(f"native Todo model, uncached:    {t_todo * 1e6:10.1f} us/decision (stock enforce_ex, 20 lines)")
    print(f"native Todo model, cached:      {t_todo_hit * 1e6:10.2f} us/decision")
    print(f"native RBAC, 1000 p + 1000 g:   {t_rbac * 1e6:10.1f} us/decision uncached, {t_rbac_hit * 1e6:.2f} us cached")


if __name__ == "__main__":
    main()
