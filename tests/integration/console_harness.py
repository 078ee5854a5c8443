"""A PDP with the console enabled, signed in through a real oidc-provider, on loopback."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from pdp.app import create_app
from pdp.settings import check_settings
from tests.fixtures.oidc_provider import oidc_provider, sign_in
from tests.integration.pdp_helpers import pdp_settings
from tests.integration.pdp_process import free_port

CLIENT_ID = "mcpgw-console"
USERS = {
    "vera": {"roles": ["policy-viewer"], "name": "Vera Viewer"},
    "eddie": {"roles": ["policy-editor"], "name": "Eddie Editor"},
    "anna": {"roles": ["policy-approver"], "name": "Anna Approver"},
    "max": {"roles": ["policy-editor", "policy-approver"], "name": "Max Both"},
    "nobody": {"roles": [], "name": "No Roles"},
}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    """The running console: its base URL, app and issuer."""

    url: str
    app: web.Application
    issuer: str

    def client(self) -> aiohttp.ClientSession:
        """A browser-like client (its own cookie jar; no redirects followed automatically off-site)."""
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def signed_in(self, login: str) -> tuple[aiohttp.ClientSession, str]:
        """A client signed in as `login` and its CSRF token."""
        session = self.client()
        resp = await sign_in(session, self.url, login)
        assert resp.status == 200, await resp.text()
        return session, csrf_of(await resp.text())


def csrf_of(html: str) -> str:
    """The CSRF token a console page carries."""
    match = _CSRF.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


@contextlib.asynccontextmanager
async def running_console(tmp_path: Path, dsn: str, **changes: Any) -> AsyncIterator[Console]:
    """oidc-provider + a PDP serving the console on a fixed loopback port."""
    port = int(free_port())
    url = f"http://127.0.0.1:{port}"
    clients = [{"client_id": CLIENT_ID, "client_secret": "console-test-secret",
                "redirect_uris": [url + "/console/callback"],
                "post_logout_redirect_uris": [url + "/console/signed-out?provider=1"]}]
    async with oidc_provider(clients, USERS) as issuer:
        from shared.settings import Secret

        settings = check_settings(pdp_settings(
            tmp_path, dsn, port=port, console_oidc_issuer=issuer, console_client_id=CLIENT_ID,
            console_client_secret=Secret("console-test-secret"), console_public_url=url, **changes))
        app = create_app(settings)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            yield Console(url, app, issuer)
        finally:
            await runner.cleanup()
