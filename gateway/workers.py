"""`--workers N`: N gateway processes on one port (SO_REUSEPORT), so one machine's cores are used.

The children (`--worker`) behave like replicas sharing one session secret (made up for the run
when none is set). A child that exits on its own stops the others and the parent exits with its
code: a half-served port is worse than a restart by the supervisor that started us.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

SECRET_ENV = "MCPGW_GATEWAY_MCP_SESSION_SECRET"
GRACE_SECONDS = 10.0


def child_env(environ: Mapping[str, str], has_secret: bool) -> dict[str, str]:
    """The children's environment: one session secret for all of them (made up if none is set)."""
    env = dict(environ)
    if not has_secret:
        env[SECRET_ENV] = secrets.token_urlsafe(32)
    return env


def child_argv(argv: Sequence[str]) -> list[str]:
    """The serve command again, as a worker (`--workers` dropped, `--worker` added)."""
    out: list[str] = []
    skip = False  # the value after `--workers`
    for arg in argv:
        if not skip and arg != "--workers" and not arg.startswith("--workers="):
            out.append(arg)
        skip = arg == "--workers"
    return [sys.executable, "-m", "mcpgw.cli", *out, "--worker"]


def supervise(count: int, argv: Sequence[str], has_secret: bool) -> int:
    """Run `count` workers until a signal (0) or until one of them exits (its code, 1 if it was 0)."""
    if not has_secret:
        log.warning("several workers and no %s: one was made up for this run (sessions end when it stops)",
                    SECRET_ENV)
    env = child_env(os.environ, has_secret)
    children = [subprocess.Popen(child_argv(argv), env=env) for _ in range(count)]
    log.info("gateway workers started", extra={"workers": count, "pids": [c.pid for c in children]})
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    code = 0
    while not stopping.wait(0.2):
        ended = next((c for c in children if c.poll() is not None), None)
        if ended is not None:
            code = ended.returncode or 1
            log.error("a gateway worker exited; stopping the others", extra={"pid": ended.pid, "code": ended.returncode})
            break
    stop(children)
    return code


def stop(children: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child still running, then SIGKILL what is left after the grace period."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
