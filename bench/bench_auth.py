"""Auth and PEP benchmark: per-request cost of token validation and PDP checks, cold vs cached.

Starts the loopback OIDC issuer fixture and a minimal loopback AuthZEN server, then measures in
one run: full JWT validation per algorithm (signature + claims + mapping, cache off) against a
validated-token cache hit, and a PDP round trip against a decision-cache hit.

    .venv/bin/python bench/bench_auth.py            # 5,000 iterations each
    .venv/bin/python bench/bench_auth.py --quick    # 500 iterations each
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.pep import PolicyClient  # noqa: E402
from shared.auth import AuthConfig, Authenticator, ClaimMapping, Principal  # noqa: E402
from shared.authzen import tool_resource  # noqa: E402
from tests.fixtures.oidc import running_issuer  # noqa: E402


async def timed(n: int, make_call) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for i in range(n):
        start = time.perf_counter()
        await make_call(i)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def summary(label: str, samples: list[float]) -> float:
    p50 = statistics.median(samples)
    p99 = sorted(samples)[int(len(samples) * 0.99) - 1]
    print(
        f"  {label:<34} p50 {p50:8.1f} us   p99 {p99:8.1f} us   {1e6 / statistics.fmean(samples):9.0f}/s"
    )
    return p50


async def bench_auth(n: int, session: aiohttp.ClientSession) -> None:
    print("JWT validation (one token per request)")
    async with running_issuer() as issuer:
        for alg in ("RS256", "ES256", "PS256", "EdDSA"):
            issuer.rotate(alg)
            base = dict(
                audience=issuer.audience,
                issuer=issuer.issuer,
                mapping=ClaimMapping(client_id=issuer.client_id),
            )
            cold_auth = Authenticator(AuthConfig(**base, cache_size=0), session)
            warm_auth = Authenticator(AuthConfig(**base), session)
            header = "Bearer " + issuer.mint("alice", roles=["analyst"], groups=["/eng"])
            await cold_auth.authenticate(header)
            await warm_auth.authenticate(header)
            cold = summary(
                f"{alg} full validation",
                await timed(n, lambda _, a=cold_auth, h=header: a.authenticate(h)),
            )
            hit = summary(
                f"{alg} cache hit",
                await timed(n, lambda _, a=warm_auth, h=header: a.authenticate(h)),
            )
            print(f"  -> cache hit is {cold / hit:.0f}x cheaper than validating {alg}")


async def bench_pep(n: int, session: aiohttp.ClientSession) -> None:
    async def evaluation(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(
            {"decision": True, "context": {"policy_version": "v1", "decision_id": "d"}}
        )

    app = web.Application()
    app.router.add_post("/access/v1/evaluation", evaluation)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        print("PDP check (loopback AuthZEN server answering immediately)")
        who = Principal("alice", roles=("analyst",), groups=("/eng",))
        res = tool_resource("files", "read")
        nocache = PolicyClient(session, url, cache_ttl=0)
        cached = PolicyClient(session, url, cache_ttl=60)
        await cached.check(who, "invoke_tool", res, arguments={"path": "/a"})
        miss = summary(
            "round trip (cache off)",
            await timed(
                n, lambda i: nocache.check(who, "invoke_tool", res, arguments={"path": "/a"})
            ),
        )
        hit = summary(
            "decision cache hit",
            await timed(
                n, lambda i: cached.check(who, "invoke_tool", res, arguments={"path": "/a"})
            ),
        )
        print(f"  -> cache hit is {miss / hit:.0f}x cheaper than a PDP round trip")
    finally:
        await runner.cleanup()


async def main(n: int) -> None:
    async with aiohttp.ClientSession() as session:
        await bench_auth(n, session)
        await bench_pep(n, session)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 iterations instead of 5,000")
    args = parser.parse_args()
    asyncio.run(main(500 if args.quick else 5000))
