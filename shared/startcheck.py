"""Checks a service makes before it starts anything (database, sockets): problems exit 2, not 1.

A port in use or an unknown `MCPGW_*` variable is a configuration problem with a name and a fix,
not an "unexpected error" after the embedded Postgres has already started.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from shared.envcheck import unknown_variables
from shared.settings import read_dotenv

log = logging.getLogger(__name__)


def bind_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on ("is in use", "cannot be used (…)"), or None; bound
    the way aiohttp binds (SO_REUSEADDR), so a port in TIME_WAIT after a restart is not "in use"."""
    if port == 0:
        return None  # any free port: always fine
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
    return None


def port_problem(host: str, port: int, how_to_move: str) -> str | None:
    """Why `host:port` cannot be listened on, naming how to move it, or None."""
    why = bind_problem(host, port)
    return f"port {port} on {host} {why}; choose another with {how_to_move}" if why else None


def extras_problems(event_loop: str) -> list[str]:
    """Settings that need an optional extra which is not installed (`uvloop`)."""
    from shared.runtime import event_loop_problem

    loop = event_loop_problem(event_loop)
    return [loop] if loop else []


def warn_unknown_variables(environ: Mapping[str, str] | None = None, dotenv: Path = Path(".env")) -> list[str]:
    """Log (warning) every unknown MCPGW_* name in the environment and `.env`; return the messages."""
    environ = os.environ if environ is None else environ
    found = unknown_variables(environ) + [f"{m} (in .env)" for m in unknown_variables(read_dotenv(dotenv))]
    for message in found:
        log.warning("ignored: %s", message)
    return found
