"""`--workers N`: N gateway processes on one port (SO_REUSEPORT), so one machine's cores are used.

The children (`--worker`) behave like replicas sharing one session secret (made up for the run
when none is set) and one peer channel: each listens on a loopback port of its own for the others'
forwards of retries and answers to calls it holds (keyed by the session secret unless a peer secret is set). A child that exits on its own stops the others and the parent exits with its
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
PEER_LISTEN_ENV = "MCPGW_GATEWAY_PEER_LISTEN"
GRACE_SECONDS = 10.0


def child_env(environ: Mapping[str, str], has_secret: bool, has_peer_listen: bool = True) -> dict[str, str]:
    """The children's environment: one session secret for all of them (made up if none is set; the peer
    channel's key is derived from it unless MCPGW_GATEWAY_PEER_SECRET is set), and a peer listener each
    unless one is configured."""
    env = dict(environ)
    if not has_secret:
        env[SECRET_ENV] = secrets.token_urlsafe(32)
    if not has_peer_listen:
        env[PEER_LISTEN_ENV] = "127.0.0.1:0"  # each its own port, advertised as bound
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


def supervise(count: int, argv: Sequence[str], has_secret: bool, has_peer_listen: bool = True) -> int:
    """Run `count` workers until a signal (0) or until one of them exits (its code, 1 if it was 0)."""
    if not has_secret:
        log.warning("several workers and no %s: one was made up for this run (sessions end when it stops)",
                    SECRET_ENV)
    env = child_env(os.environ, has_secret, has_peer_listen)
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
