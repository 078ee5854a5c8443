"""Start Postgres (embedded), a dev OIDC issuer, a demo MCP backend, the PDP and the gateway.

`python -m mcpgw.devstack [--no-auth]` (`make run`, `make run ARGS=--no-auth`). Checks ports and
configuration before starting anything (exit 2 with every problem); prints the URLs, a dev token
and how to call the gateway; Ctrl-C stops everything, the embedded Postgres included. Exit 1 when
a component dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from mcpgw.devstack import files, preflight
from mcpgw.devstack.banner import StackInfo, banner
from mcpgw.devstack.issuer import DevIssuer
from mcpgw.devstack.users import CONSOLE_CLIENT_ID, USERS
from shared import db
from shared.clierror import PREFIX, UsageParser, error
from shared.settings import read_dotenv

HOST = "127.0.0.1"
PORTS = {"gateway": 8000, "pdp": 8181, "backend": 9001, "issuer": 8900}
AUDIENCE = "mcpgw"
NO_AUTH_ROLES = "agent"


class StackError(Exception):
    """A problem that stops `make run` with a message and an exit code (no traceback)."""

    def __init__(self, lines: list[str], code: int) -> None:
        super().__init__("\n".join(lines))
        self.lines, self.code = lines, code


@dataclass(frozen=True)
class Layout:
    """Ports, URLs and files of this run, from the environment."""

    data: Path
    ports: dict[str, int]
    policy_file: Path
    servers_file: Path
    no_auth: bool

    def url(self, name: str) -> str:
        """Base URL of a component."""
        return f"http://{HOST}:{self.ports[name]}"

    @property
    def cli_config(self) -> Path:
        """The mcpgw client's config for this stack."""
        return (self.data / "dev" / "cli.yaml").resolve()


def layout_from(environ: os._Environ[str] | dict[str, str], no_auth: bool) -> Layout:
    """Read ports and paths; a port that is not a number is a configuration error."""
    ports, bad = {}, []
    for name, default in PORTS.items():
        variable = f"MCPGW_DEV_{name.upper()}_PORT"
        raw = environ.get(variable, str(default))
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            bad.append(f"{variable}={raw}: must be a TCP port (1-65535)")
        else:
            ports[name] = int(raw)
    if bad:
        raise StackError(bad, 2)
    return Layout(
        data=Path(environ.get("MCPGW_DATA_DIR", ".data")),
        ports=ports,
        policy_file=Path(environ.get("MCPGW_PDP_POLICY_FILE") or "policies/policy.yaml"),
        servers_file=files.servers_path(environ),
        no_auth=no_auth,
    )


def check_before_start(lay: Layout, environ: dict[str, str], dotenv: dict[str, str]) -> None:
    """Every problem at once (exit 2), before Postgres or any process is started."""
    problems = [
        *preflight.variable_problems(environ, dotenv),
        *preflight.policy_problems(lay.policy_file),
        *preflight.servers_problems(lay.servers_file, environ, dotenv),
        *preflight.settings_problems(environ, dotenv, lay.no_auth),
    ]
    off = preflight.auth_off_source(environ, dotenv)
    if off and not lay.no_auth:
        problems.append(
            f"authentication is switched off by {off}; `make run` refuses that unless asked on the "
            "command line: remove it, or run `make run ARGS=--no-auth` (python -m mcpgw.devstack --no-auth)")
    if problems:
        raise StackError(["configuration problems (nothing was started):", *(f"  {p}" for p in problems)], 2)
    busy = preflight.port_problems(HOST, lay.ports)
    if busy:
        raise StackError(busy, 2)


def child_env(lay: Layout, dsn: str) -> dict[str, str]:
    """What every child gets: the shared database, the data dir, the followed policy file."""
    env = {**os.environ, "DATABASE_URL": dsn, "MCPGW_DATA_DIR": str(lay.data),
           "MCPGW_PDP_POLICY_FOLLOW_FILE": "true", "MCPGW_GATEWAY_SERVERS_FILE": str(lay.servers_file)}
    # The OAuth metadata names the gateway by its configured URL, never by the Host header.
    env.setdefault("MCPGW_GATEWAY_PUBLIC_URL", lay.url("gateway"))
    if lay.no_auth:
        env.setdefault("MCPGW_GATEWAY_DEV_ROLES", NO_AUTH_ROLES)
    return env


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a child in its own process group so Ctrl-C handling stays with us."""
    return subprocess.Popen([sys.executable, *args], env=env, start_new_session=True)


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], name: str, limit: float = 60) -> None:
    """Poll `url` until it answers, or fail if the process died."""
    deadline = asyncio.get_running_loop().time() + limit
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            if proc.poll() is not None:
                raise StackError([f"{name} exited with code {proc.returncode} at start; see its output above"], 1)
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            await asyncio.sleep(0.2)
    raise StackError([f"{name} did not become healthy at {url} within {limit:.0f}s"], 1)


async def start_issuer(lay: Layout) -> tuple[DevIssuer, web.AppRunner]:
    """The dev OIDC issuer, in this process."""
    issuer = DevIssuer(lay.url("issuer"), AUDIENCE)
    runner = web.AppRunner(issuer.app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, lay.ports["issuer"]).start()
    except OSError as exc:
        await runner.cleanup()
        raise StackError([f"port {lay.ports['issuer']} (issuer) cannot be used ({exc.strerror}); "
                          "choose another with MCPGW_DEV_ISSUER_PORT=PORT"], 2) from None
    return issuer, runner


async def start_services(lay: Layout, env: dict[str, str], issuer: DevIssuer,
                         procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """Backend and PDP, then the gateway; each must answer before the next starts."""
    cli = ["-m", "mcpgw.cli"]
    procs["backend"] = spawn(["-m", "mcpgw.devstack.demo_backend", "--port", str(lay.ports["backend"])], env)
    procs["pdp"] = spawn([*cli, "pdp", "serve", "--host", HOST, "--port", str(lay.ports["pdp"]),
                          "--policy", str(lay.policy_file)], {**env, **console_env(issuer.issuer, lay.url("pdp"))})
    await wait_healthy(lay.url("backend") + "/mcp", procs["backend"], "demo backend")
    await wait_healthy(lay.url("pdp") + "/healthz", procs["pdp"], "PDP")
    auth = ["--no-auth"] if lay.no_auth else ["--issuer", issuer.issuer, "--audience", AUDIENCE]
    procs["gateway"] = spawn([*cli, "gateway", "serve", "--host", HOST, "--port", str(lay.ports["gateway"]),
                              "--servers", str(lay.servers_file), "--pdp-url", lay.url("pdp"), *auth], env)
    await wait_healthy(lay.url("gateway") + "/health", procs["gateway"], "gateway")


def console_env(issuer: str, pdp_url: str) -> dict[str, str]:
    """The PDP's admin API and policy console, both trusting the dev issuer.

    The admin API accepts the dev token the banner prints (audience mcpgw, role admin); the console
    signs people in at the dev issuer as the public client CONSOLE_CLIENT_ID (PKCE, no secret).
    """
    return {
        "MCPGW_PDP_ADMIN_ISSUER": issuer, "MCPGW_PDP_ADMIN_AUDIENCE": AUDIENCE,
        "MCPGW_PDP_CONSOLE_OIDC_ISSUER": issuer, "MCPGW_PDP_CONSOLE_CLIENT_ID": CONSOLE_CLIENT_ID,
        "MCPGW_PDP_CONSOLE_PUBLIC_URL": pdp_url,
    }


async def watch_children(procs: dict[str, subprocess.Popen[bytes]]) -> int:
    """Wait for Ctrl-C (0) or a child's death (1)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        for name, proc in procs.items():
            if proc.poll() is not None:
                error(f"{name} exited with code {proc.returncode}; stopping everything")
                return 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1)
    return 0


def stop_children(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child, then SIGKILL what is left after 10 s."""
    for proc in procs.values():
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run(lay: Layout) -> int:
    """Bring the stack up, print how to use it, wait; always tear everything down."""
    environ = dict(os.environ)
    check_before_start(lay, environ, read_dotenv(Path(".env")))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    runner: web.AppRunner | None = None
    embedded = not environ.get("DATABASE_URL")
    try:
        dsn = environ.get("DATABASE_URL", "")
        if embedded:
            dsn = await asyncio.to_thread(db.start_embedded, lay.data)
        issuer, runner = await start_issuer(lay)
        state = files.ensure_servers_file(lay.servers_file, lay.url("backend") + "/mcp")
        files.write_cli_config(lay.cli_config, lay.url("gateway"), lay.url("pdp"), issuer.issuer)
        await start_services(lay, child_env(lay, dsn), issuer, procs)
        token = None if lay.no_auth else issuer.mint_for(USERS["alice"], "mcpgw-cli")
        info = StackInfo(lay.url("gateway"), lay.url("pdp"), lay.url("backend") + "/mcp", issuer.issuer,
                         lay.policy_file.resolve(), lay.servers_file.resolve(), state, lay.cli_config,
                         (lay.data / "postgres").resolve(), lay.no_auth,
                         os.environ.get("MCPGW_GATEWAY_DEV_ROLES", NO_AUTH_ROLES),
                         preflight.gateway_leeway(environ, read_dotenv(Path(".env"))))
        print(banner(info, token), flush=True)
        return await watch_children(procs)
    finally:
        stop_children(procs)
        if runner is not None:
            await runner.cleanup()
        if embedded and not await asyncio.to_thread(db.stop_embedded, lay.data):
            error(f"the embedded Postgres under {lay.data / 'postgres'} did not stop")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; configuration problems exit 2 with one line each."""
    parser = UsageParser(prog="python -m mcpgw.devstack", description=__doc__)
    parser.add_argument("--no-auth", action="store_true",
                        help="run the gateway WITHOUT authentication (shown in the banner and /health)")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run(layout_from(os.environ, args.no_auth)))
    except StackError as exc:
        error("\n".join(line if line.startswith(" ") or i == 0 else PREFIX + line
                         for i, line in enumerate(exc.lines)))
        return exc.code
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        return 130


if __name__ == "__main__":
    sys.exit(main())
