"""After `register-mcp` / `unregister-mcp` wrote the servers file: did the running gateway take it?

The gateway re-reads the file every 2 s and refuses a whole file that has one bad entry (keeping its
previous backends). Its `/health` says which version of the file it examined last
(`servers_file_version`: a short hash of the file's mtime in ns and size) and whether it refused it
(`servers_file_error`), so the command waits for the version it wrote and then says what happened.
Why a file is refused is in the gateway's log; the command adds what this shell can see (the same
checks in this shell's environment, which may differ from the gateway's).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import aiohttp

# Three of the gateway's 2 s polls.
WAIT = 6.0


@dataclass(frozen=True)
class Verdict:
    """What the gateway at `url` did with the file: taken, refused, unseen, unreachable or unknown."""

    outcome: str
    url: str


def file_version(path: Path) -> str:
    """The version of the file as the gateway names it (gateway.registry.Registry.file_version)."""
    from gateway.registry import version_tag

    st = path.stat()
    return version_tag(st.st_mtime_ns, st.st_size)


async def _health(http: aiohttp.ClientSession, url: str) -> dict[str, object] | None:
    async with http.get(url + "/health") as resp:
        body = await resp.json(content_type=None) if resp.status == 200 else None
    return body if isinstance(body, dict) else None


async def verdict(url: str, version: str, wait: float = WAIT, interval: float = 0.2) -> Verdict:
    """Poll the gateway's /health until it has examined `version` (or `wait` seconds passed)."""
    deadline = asyncio.get_running_loop().time() + wait
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while True:
            try:
                body = await _health(http, url)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return Verdict("unreachable", url)
            if body is None or "servers_file_version" not in body:
                return Verdict("unknown", url)  # not an mcpgw gateway, or one too old to say
            if body["servers_file_version"] == version:
                return Verdict("refused" if body.get("servers_file_error") else "taken", url)
            if asyncio.get_running_loop().time() >= deadline:
                return Verdict("unseen", url)
            await asyncio.sleep(interval)


def local_reasons(path: Path) -> list[str]:
    """Why a gateway started from this shell would refuse the file (empty: it would take it)."""
    from gateway.registry import start_problems

    return start_problems(path, None, os.environ)


def report(v: Verdict, path: Path, name: str, verb: str) -> tuple[int, list[str]]:
    """Exit code and lines (`error:` / `warning:` / `note:` first word) for a verdict."""
    where = f"the gateway at {v.url}"
    if v.outcome == "taken":
        return 0, [f"note: {where} loaded {path}"]
    if v.outcome == "unreachable":
        return 0, [f"note: no gateway answers at {v.url}; a gateway loads {path} when it starts "
                   "(--gateway-url or MCPGW_URL names another one)"]
    if v.outcome == "unknown":
        return 0, [f"warning: {where} does not say which servers file it loaded; check `mcpgw list-servers`"]
    if v.outcome == "unseen":
        return 1, [f"error: {name} was {verb} in {path}, but {where} has not loaded that file within "
                   f"{WAIT:g}s: it watches another file (its MCPGW_GATEWAY_SERVERS_FILE / --servers), "
                   "or --gateway-url / MCPGW_URL names the wrong gateway"]
    reasons = local_reasons(path)
    why = (["as this shell sees it (the gateway's environment may differ):", *(f"  {r}" for r in reasons)]
           if reasons else
           ["every check this shell can make passes, so the gateway's environment or settings differ "
            "(an env:// variable or file:// it cannot read, MCPGW_GATEWAY_UPSTREAM_ALLOWLIST)"])
    return 1, [f"error: {name} was {verb} in {path}, but {where} refuses that file and keeps serving "
               f"its previous backends, so the change is not live. Its log says why "
               "(\"servers file rejected\"); " + why[0], *why[1:]]
