"""A stdio MCP server: a supervised child process speaking newline-delimited JSON-RPC.

The child holds ONE MCP session that every gateway caller shares (multiplexed by `mux.py`).
Launching, limits, environment and stopping live in `stdio_process.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import orjson

from gateway.credentials import CredentialError, CredentialStore
from gateway.masking import secret_forms
from gateway.registry import StdioConfig
from gateway.upstream.transports import stdio_process as proc_mod
from gateway.upstream.transports.mux import Channel, Multiplexer, Unavailable
from gateway.upstream.transports.stdio_process import StdioLimits

log = logging.getLogger(__name__)


class StdioChannel(Channel):
    """A running child: JSON lines on stdin/stdout, stderr to the log."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, limits: StdioLimits,
                 forms: Sequence[str] = (), release: Callable[[], None] = lambda: None) -> None:
        self.name, self.proc, self.limits = name, proc, limits
        self.release = release  # its launch secrets no longer masked once it has stopped
        assert proc.stderr is not None
        self.stderr = asyncio.create_task(  # logged with the secrets it was launched with masked (`forms`)
            proc_mod.drain_stderr(proc.stderr, name, limits.stderr_lines_per_second, forms), name=f"stdio-stderr-{name}")

    async def send(self, message: dict[str, Any]) -> None:
        """Write one line to the child's stdin."""
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing() or self.proc.returncode is not None:
            raise Unavailable(f"stdio server {self.name} is not running")
        stdin.write(orjson.dumps(message) + b"\n")
        try:
            await stdin.drain()  # a child that stops reading slows its callers, never grows our buffer
        except (BrokenPipeError, ConnectionResetError):
            raise Unavailable(f"stdio server {self.name} is not running") from None

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Each JSON line of the child's stdout, until it closes."""
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while line := await stdout.readline():
                try:
                    message = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("stdio server wrote a non-JSON line", extra={"server": self.name})
                    continue
                if isinstance(message, dict):
                    yield message
        except ValueError:  # a line past max_message_bytes: the stream cannot be resynchronised
            log.error("stdio server sent an oversized message; restarting it", extra={"server": self.name})
            self.proc.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 1.0)  # so ended() can name the exit code

    async def close(self) -> None:
        """Stop the child (stdin closed, SIGTERM to its group, SIGKILL after the grace period)."""
        try:
            await proc_mod.stop(self.proc, self.limits.stop_grace)
            self.stderr.cancel()
            await asyncio.gather(self.stderr, return_exceptions=True)
        finally:
            self.release()

    def ended(self) -> str:
        """'exited with code N' (or 'exited' while the code is not known yet)."""
        code = self.proc.returncode
        return "exited" if code is None else f"exited with code {code}"


class StdioServer(Multiplexer):
    """A supervised stdio MCP server shared by every caller."""

    kind = "stdio server"

    def __init__(self, name: str, config: StdioConfig, limits: StdioLimits, environ: Mapping[str, str],
                 credentials: CredentialStore | None = None) -> None:
        super().__init__(name, limits)
        self.config, self.environ = config, environ
        self.credentials = credentials  # told which secrets each child holds, so its answers mask them

    @property
    def pid(self) -> int | None:
        """The running child's pid, if any."""
        run = self._run
        return run.channel.proc.pid if run is not None and isinstance(run.channel, StdioChannel) else None

    async def _open(self) -> Channel:
        try:
            env = proc_mod.child_env(self.config, self.environ)
        except CredentialError as exc:
            raise Unavailable(f"credential unavailable: {exc}") from None
        try:
            proc = await proc_mod.spawn(self.config, env, self.limits)
        except OSError as exc:
            raise Unavailable(f"cannot run {self.config.command}: {exc.strerror or exc}") from None
        log.info("stdio server launched", extra={"server": self.name, "pid": proc.pid})
        secrets = proc_mod.env_secrets(self.config, env)
        release = self.credentials.launched(self.name, secrets) if self.credentials is not None else (lambda: None)
        return StdioChannel(self.name, proc, self.limits, secret_forms(secrets), release)
