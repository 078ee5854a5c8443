"""A small asyncio client for the gateway REST API: one ClientSession per command run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp

from mcpgw.client.errors import CallFailed, explain_http_error
from shared.settings import Secret

USER_AGENT = "mcpgw-cli"


def connect_hint(url: str) -> str:
    """What to tell an operator whose gateway is not answering."""
    return (
        f"cannot reach the gateway at {url}. Is it running? Start it with "
        "`mcpgw gateway serve --servers mcp_servers.yaml ...`, or point the CLI at it with "
        "--url or MCPGW_URL."
    )


class GatewayClient:
    """Calls the gateway with the bearer token; raises CliError subclasses on any failure."""

    def __init__(self, url: str, token: Secret | None, timeout: float) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GatewayClient:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token.get()}"
        self._session = aiohttp.ClientSession(headers=headers, timeout=self._timeout)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET a JSON document."""
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Any, params: Mapping[str, str] | None = None) -> Any:
        """POST a JSON body and return the JSON answer."""
        return await self.request("POST", path, params=params, body=body)

    async def request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: Any = None
    ) -> Any:
        """One call; HTTP errors become ApiError, transport errors CallFailed."""
        assert self._session is not None, "use `async with GatewayClient(...)`"
        full = self.url + path
        try:
            async with self._session.request(
                method, full, params=params, json=body if method != "GET" else None
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except aiohttp.ClientConnectorError:
            raise CallFailed(connect_hint(self.url)) from None
        except aiohttp.InvalidURL:
            raise CallFailed(f"invalid gateway URL {self.url!r}; set --url or MCPGW_URL") from None
        except TimeoutError:
            raise CallFailed(
                f"no answer from the gateway at {self.url} within {self._timeout.total:g}s "
                "(raise it with --timeout)"
            ) from None
        except aiohttp.ClientError as exc:
            raise CallFailed(f"request to {full} failed: {exc}") from None
        data = _parse(raw)
        if status >= 400:
            raise explain_http_error(status, data, full)
        if isinstance(data, str):
            raise CallFailed(f"{full} answered {status} with a non-JSON body: {data[:100]!r}")
        return data


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")[:300] or None


def run(coro: Any) -> Any:
    """Run a coroutine to completion for a synchronous argparse handler."""
    return asyncio.run(coro)
