"""The backend registry: the last good set of backends from `mcp_servers.yaml` (parsed in
servers_file.py); a reload swaps in a new set only when the file and its credentials are valid."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from gateway.credentials import CredentialStore
from gateway.servers_file import (
    RegistryError,
    ServerConfig,
    StdioConfig,
    load_servers_file,
    parse_server,
    parse_servers,
)
from gateway.yamllines import with_lines
from shared.runtime import cancel_and_wait

__all__ = ["Registry", "RegistryError", "ServerConfig", "StdioConfig", "load_servers_file", "parse_server",
           "parse_servers", "start_problems", "watch"]

log = logging.getLogger(__name__)


def version_tag(mtime_ns: int, size: int) -> str:
    """A short hash of a file's `MTIME_NS:SIZE` (/health publishes it: equal for the same version,
    without telling unauthenticated callers the file's exact mtime and size)."""
    return hashlib.sha256(f"{mtime_ns}:{size}".encode()).hexdigest()[:12]


class Registry:
    """The current set of backends, reloaded from `path` on change."""

    def __init__(
        self,
        path: Path | None,
        *,
        allowlist: Iterable[str] | None = None,
        credentials: CredentialStore | None = None,
        bridge_url: Callable[[str], str] | None = None,
    ) -> None:
        # Maps a stdio or legacy-SSE server's name to the loopback endpoint the gateway bridges it on.
        self.bridge_url = bridge_url
        # Called with every newly installed set (the stdio host stops processes of removed servers).
        self.listeners: list[Callable[[Mapping[str, ServerConfig]], None]] = []
        self.path = Path(path) if path is not None else None
        # An empty allowlist means no restriction (the settings default).
        self.allowlist = list(allowlist) if allowlist else None
        self.credentials = credentials
        self._servers: Mapping[str, ServerConfig] = MappingProxyType({})
        self._stamp: tuple[int, int] | None = None
        self.last_error: RegistryError | None = None
        # Bumped on every install, so caches derived from the servers (tool lists) go stale.
        self.generation = 0

    @property
    def servers(self) -> Mapping[str, ServerConfig]:
        """All configured servers by name (read-only snapshot)."""
        return self._servers

    def enabled(self) -> list[ServerConfig]:
        """Enabled servers, sorted by name."""
        return [s for _, s in sorted(self._servers.items()) if s.enabled]

    def get(self, name: str) -> ServerConfig | None:
        """An enabled server by name, else None."""
        server = self._servers.get(name)
        return server if server is not None and server.enabled else None

    @property
    def file_version(self) -> str | None:
        """The version tag (`version_tag`) of the file last examined, taken or refused (`mcpgw
        register-mcp` waits for the version it wrote to learn whether the gateway took it)."""
        return None if self._stamp is None else version_tag(*self._stamp)

    def set_servers(self, servers: Mapping[str, ServerConfig]) -> None:
        """Install `servers` (already validated) after resolving their credentials."""
        if self.credentials is not None:
            resolved, errors = self.credentials.resolve(servers.values())
            if errors:
                raise RegistryError(errors)
            self.credentials.commit(resolved)
        servers = {
            name: replace(s, url=self.bridge_url(name)) if (s.stdio or s.sse_url) and self.bridge_url else s
            for name, s in servers.items()
        }
        self._servers = MappingProxyType(servers)
        self.generation += 1
        for listener in self.listeners:
            listener(self._servers)

    def _file_stamp(self) -> tuple[int, int] | None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def load(self) -> None:
        """Load the file now; raise RegistryError (and keep the old set) if it is bad."""
        if self.path is None:
            self.set_servers({})
            return
        stamp = self._file_stamp()
        try:
            self.set_servers(load_servers_file(self.path, self.allowlist))
        except RegistryError as exc:
            self._stamp = stamp  # don't re-report the same bad edit every poll
            self.last_error = exc
            raise
        self._stamp = stamp
        self.last_error = None

    def poll(self) -> bool:
        """Reload if the file changed and refresh credentials; True if a new set was installed."""
        if self.credentials is not None:
            self.credentials.refresh()
        if self.path is None or self._file_stamp() == self._stamp:
            return False
        try:
            self.load()
        except RegistryError as exc:
            log.error("servers file rejected, keeping the last good set: %s", exc)
            return False
        log.info("servers file reloaded", extra={"servers": len(self._servers)})
        return True


def start_problems(path: Path, allowlist: Iterable[str] | None, environ: Mapping[str, str]) -> list[str]:
    """Everything that would stop a gateway with `environ` from loading `path`: the file's errors, else
    each credential reference it cannot resolve (`FILE:LINE: servers.NAME.auth.FIELD: why`)."""
    try:
        servers = load_servers_file(path, allowlist)
    except RegistryError as exc:
        return exc.errors
    errors = CredentialStore(environ=environ).resolve(servers.values())[1]
    return with_lines(Path(path).read_text(), errors, str(path)) if errors else []


async def watch(registry: Registry, interval: float = 2.0) -> AsyncIterator[None]:
    """Cleanup-ctx body: poll the servers file every `interval` seconds until shutdown."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                registry.poll()
            except Exception:  # a watcher bug must not kill reloads for good
                log.exception("servers file watcher failed")

    task = asyncio.create_task(loop(), name="registry-watcher")
    try:
        yield
    finally:
        await cancel_and_wait(task)
