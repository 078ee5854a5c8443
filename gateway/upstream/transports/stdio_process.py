"""Launching and stopping one stdio child: minimal environment, resource limits, bounded stderr.

Pure parts (`child_env`, `backoff`) are unit-tested; `spawn` starts the child in its own process
group (so `stop` reaches grandchildren such as `npx`'s node) with rlimits set in the child before
exec; `stop` closes stdin, sends SIGTERM to the group, and SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gateway.credentials import is_ref, read_ref
from gateway.masking import mask
from gateway.registry import StdioConfig
from gateway.settings import GatewaySettings as Defaults

log = logging.getLogger(__name__)

# Copied from the gateway's environment when set: what programs need to run, never a secret.
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM")
STDERR_LINE_BYTES = 1000


@dataclass(frozen=True)
class StdioLimits:
    """Settings-driven limits for every stdio child (0 = no limit); the defaults are the settings'."""

    max_memory_mb: int = Defaults.stdio_max_memory_mb
    max_open_files: int = Defaults.stdio_max_open_files
    max_cpu_seconds: int = Defaults.stdio_max_cpu_seconds
    stop_grace: float = Defaults.stdio_stop_grace
    backoff_max: float = Defaults.stdio_restart_backoff_max
    healthy_seconds: float = Defaults.stdio_healthy_seconds
    crash_loop_after: int = 3
    stderr_lines_per_second: float = Defaults.stdio_stderr_lines_per_second
    max_message_bytes: int = Defaults.mcp_max_response_bytes


def child_env(config: StdioConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: `BASE_ENV` from `environ` plus the server's own `env`, refs resolved.

    Raises CredentialError naming a reference that cannot be read.
    """
    env = {key: environ[key] for key in BASE_ENV if key in environ}
    for key, value in config.env:
        env[key] = read_ref(value, environ).secret.get() if is_ref(value) else value
    return env


def env_secrets(config: StdioConfig, env: Mapping[str, str]) -> list[str]:
    """The secrets (`env://`/`file://` references, resolved) in the child's environment `env`."""
    return [env[key] for key, value in config.env if is_ref(value) and key in env]


def backoff(failures: int, limit: float) -> float:
    """Seconds to wait before the next start after `failures` consecutive failures.

    The first restart is immediate (one crash is usually a one-off); then 0.5 s, 1 s, 2 s … `limit`.
    """
    if failures <= 1:
        return 0.0
    return min(0.5 * 2 ** (failures - 2), limit)


def _rlimits(limits: StdioLimits) -> Callable[[], None]:
    wanted = [
        (resource.RLIMIT_AS, limits.max_memory_mb * 1024 * 1024),
        (resource.RLIMIT_NOFILE, limits.max_open_files),
        (resource.RLIMIT_CPU, limits.max_cpu_seconds),
    ]

    def apply() -> None:  # runs in the child between fork and exec: no logging, no locks
        for which, value in wanted:
            if value > 0:
                _, hard = resource.getrlimit(which)
                cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
                resource.setrlimit(which, (cap, cap))

    return apply


async def spawn(
    config: StdioConfig, env: dict[str, str], limits: StdioLimits
) -> asyncio.subprocess.Process:
    """Start the child with pipes on stdin/stdout/stderr; raise OSError if it cannot be run."""
    return await asyncio.create_subprocess_exec(
        config.command, *config.args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, cwd=config.cwd, start_new_session=True, preexec_fn=_rlimits(limits),
        limit=limits.max_message_bytes,
    )


async def stop(proc: asyncio.subprocess.Process, grace: float) -> None:
    """Close stdin, SIGTERM the process group, SIGKILL it after `grace` seconds; reap the child."""
    if proc.stdin is not None:
        with contextlib.suppress(Exception):
            proc.stdin.close()
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        log.warning("stdio child ignored SIGTERM; killing it", extra={"pid": proc.pid})
    # The group may hold grandchildren even when the leader has exited.
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def drain_stderr(stream: asyncio.StreamReader, server: str, rate: float, forms: Sequence[str] = ()) -> None:
    """Log the child's stderr line by line at most `rate` lines/s (burst 5 s worth); drop the rest.

    Reads in chunks and truncates long lines, so a child writing without newlines never grows memory.
    Each line is masked (gateway/masking.py): the secrets of its environment (`forms`), credential shapes.
    """
    bucket, last, dropped = rate * 5, time.monotonic(), 0
    pending = b""
    while chunk := await stream.read(65536):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()[:STDERR_LINE_BYTES]
        for line in lines:
            now = time.monotonic()
            bucket = min(rate * 5, bucket + (now - last) * rate)
            last = now
            if bucket < 1:
                dropped += 1
                continue
            bucket -= 1
            if dropped:
                log.warning("stdio server %s: %d stderr lines dropped (rate limit)", server, dropped)
                dropped = 0
            text = mask(line[:STDERR_LINE_BYTES].decode("utf-8", "replace").rstrip(), forms)
            log.info("stdio server %s stderr: %s", server, text, extra={"server": server})
