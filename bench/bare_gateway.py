"""The floor under the gateway: aiohttp's server plus the gateway's upstream client, nothing else.

    python bench/bare_gateway.py --port P --servers FILE [--loop auto|asyncio|uvloop]

`POST /mcp/invoke?mcp_server=NAME` with `{"tool_name", "parameters"}` calls the tool through
`UpstreamPool` and answers its result, like the gateway's REST invoke but with no middleware, no
token, no policy, no admission and no audit. `bench_gateway.py --bare` measures it in the same
interleaved rounds: its CPU per call is what any gateway built on this stack pays before its own
checks.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway.credentials import CredentialStore
from gateway.registry import Registry
from gateway.upstream import UpstreamPool, create_session
from gateway.upstream.errors import UpstreamError
from shared.jsonutil import json_response, loads
from shared.runtime import new_event_loop, tune_gc

POOL = web.AppKey("pool", UpstreamPool)


async def invoke(request: web.Request) -> web.Response:
    """Call the tool and answer its result."""
    body = loads(await request.read())
    pool, server = request.app[POOL], request.query["mcp_server"]
    try:
        result = await pool.call_tool(server, body["tool_name"], body["parameters"])
    except UpstreamError:
        # A pooled connection the backend closed while idle (uvicorn: after 5 s; aiohttp keeps them
        # 15 s): the gateway answers 502 here (tools/call is not resent); the bench just retries.
        result = await pool.call_tool(server, body["tool_name"], body["parameters"])
    return json_response({"result": result})


async def health(_request: web.Request) -> web.Response:
    """Liveness for the bench's start-up poll."""
    return web.Response(text="ok")


def create_app(servers: Path) -> web.Application:
    """The bare proxy app."""
    app = web.Application()

    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        async with create_session() as session:
            registry = Registry(servers, credentials=CredentialStore(session))
            registry.load()
            app[POOL] = UpstreamPool(session, registry.credentials, registry)  # type: ignore[arg-type]
            yield
            await app[POOL].close()

    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/mcp/invoke", invoke)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    """Serve until terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--servers", type=Path, required=True)
    parser.add_argument("--loop", default="auto", choices=("auto", "asyncio", "uvloop"))
    args = parser.parse_args()
    app = create_app(args.servers)
    tune_gc(app)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=new_event_loop(args.loop))


if __name__ == "__main__":
    main()
