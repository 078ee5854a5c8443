"""A loopback OTLP/HTTP sink for `bench_gateway.py --traced`, in its own process (so serving the
exports never slows the load generator): accepts and discards POST /v1/traces, counts them at
GET /count, prints its base URL on stdout.

    python bench/otlp_sink.py
"""

from __future__ import annotations

import asyncio

from aiohttp import web


async def main() -> None:
    seen = {"requests": 0}

    async def traces(request: web.Request) -> web.Response:
        await request.read()
        seen["requests"] += 1
        return web.Response()

    async def count(_request: web.Request) -> web.Response:
        return web.Response(text=str(seen["requests"]))

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/count", count)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
