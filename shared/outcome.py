"""What status a request ended with, for the outer middlewares that report on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Outcome:
    """The status a request ended with, as the outer middlewares (metrics, access log, tracing)
    see it: the response's, an HTTPException's, or 500 for anything else."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status = 500

    async def run(self, handler: Handler, request: web.Request) -> web.StreamResponse:
        """Call the handler, recording the status it answers or raises."""
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.status = exc.status
            raise
        self.status = response.status
        return response
