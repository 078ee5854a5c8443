"""Backend credentials: `env://NAME` / `file:///path` references resolved when the registry loads and
re-read by `refresh()` when their value or mtime changes (never per request); oauth2 client-credentials
tokens cached until shortly before they expire, and masked until they expire even once replaced (the
backend saw them and may still say them). A stdio server's `env` references are secrets of the
same kind (its child may echo them): resolved and refreshed alike, and masked in what it says (`forms`),
together with the values each running child was launched with (`launched`), however often they rotated since."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

import aiohttp

from gateway.backend_auth import AuthConfig, Injection, format_value, is_ref
from gateway.masking import credential_forms, secret_forms
from shared.settings import Secret

if TYPE_CHECKING:  # at run time servers_file imports gateway.upstream, which imports this
    from gateway.servers_file import ServerConfig

log = logging.getLogger(__name__)

# Refresh a token this long before it expires (or at 90% of its life when that is shorter).
REFRESH_MARGIN = 30.0
RETIRED_TOKENS = 4  # replaced oauth2 tokens still masked per server (each until it expires)


class CredentialError(Exception):
    """A credential could not be resolved or obtained; the request must not be sent."""


@dataclass(frozen=True)
class Resolved:
    """A resolved reference: the secret and the version it came from."""

    ref: str
    secret: Secret
    stamp: object


def read_ref(ref: str, environ: Mapping[str, str]) -> Resolved:
    """Resolve one reference; raise CredentialError naming it (never its value)."""
    scheme, _, target = ref.partition("://")
    if scheme == "env":
        value = environ.get(target)
        if not value:
            raise CredentialError(f"environment variable {target} is not set")
        return Resolved(ref, Secret(value), value)
    if scheme == "file":
        path = Path(target)
        try:
            stamp = path.stat().st_mtime_ns
            value = path.read_text().rstrip("\r\n")
        except OSError as exc:
            raise CredentialError(f"cannot read {path}: {exc.strerror}") from None
        if not value:
            raise CredentialError(f"{path} is empty")
        return Resolved(ref, Secret(value), stamp)
    raise CredentialError(f"unsupported scheme {scheme}://")


def _stamp_of(ref: str, environ: Mapping[str, str]) -> object:
    scheme, _, target = ref.partition("://")
    if scheme == "env":
        return environ.get(target)
    try:
        return Path(target).stat().st_mtime_ns
    except OSError:
        return None


@dataclass
class Resolution:
    """What `resolve` read: each server's credential, and each stdio server's `env` references."""

    auth: dict[str, tuple[AuthConfig, Resolved]] = field(default_factory=dict)
    env: dict[str, list[Resolved]] = field(default_factory=dict)


@dataclass
class _Token:
    value: Secret
    refresh_at: float
    expires_at: float


class CredentialStore:
    """Resolved backend secrets by server name, plus cached oauth2 tokens."""

    def __init__(self, session: aiohttp.ClientSession | None = None, *, environ: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.session = session
        self.environ = os.environ if environ is None else environ
        self._clock = clock
        self._auth: dict[str, AuthConfig] = {}
        self._secrets: dict[str, Resolved] = {}
        self._env: dict[str, list[Resolved]] = {}  # a stdio server's env references
        # The env secrets each running stdio child was launched with (it holds them, and may say
        # them, until it stops, whatever rotated since): server → launch id → values.
        self._launched: dict[str, dict[int, tuple[str, ...]]] = {}
        self._launch_ids = itertools.count()
        self._tokens: dict[str, _Token] = {}
        self._retired: dict[str, list[_Token]] = {}  # replaced tokens, masked until they expire
        self._locks: dict[str, asyncio.Lock] = {}
        self._forms: dict[str, tuple[tuple[AuthConfig | None, tuple[str, ...]], list[str]]] = {}

    def resolve(self, servers: Iterable[ServerConfig]) -> tuple[Resolution, list[str]]:
        """Resolve every server's reference; return (resolved, errors naming server and field)."""
        resolved = Resolution()
        errors: list[str] = []
        for server in servers:
            # A stdio server's env references must resolve now too; the values are read again at launch.
            for key, value in server.stdio.env if server.stdio else ():
                if is_ref(value):
                    try:
                        resolved.env.setdefault(server.name, []).append(read_ref(value, self.environ))
                    except CredentialError as exc:
                        errors.append(f"servers.{server.name}.env.{key}: {exc}")
            ref = server.auth.secret_ref
            if server.auth.method == "none" or ref is None:
                continue
            key = "client_secret_ref" if server.auth.client_secret_ref else "credential_ref"
            try:
                resolved.auth[server.name] = (server.auth, read_ref(ref, self.environ))
            except CredentialError as exc:
                errors.append(f"servers.{server.name}.auth.{key}: {exc}")
        return resolved, errors

    def commit(self, resolved: Resolution) -> None:
        """Install resolved secrets; drop cached tokens whose config or secret changed."""
        for name in list(self._tokens):
            old_auth, new = self._auth.get(name), resolved.auth.get(name)
            if new is None or new[0] != old_auth or new[1].secret != self._secrets[name].secret:
                self._retire(name)
        self._auth = {name: auth for name, (auth, _) in resolved.auth.items()}
        self._secrets = {name: res for name, (_, res) in resolved.auth.items()}
        self._env = {name: list(refs) for name, refs in resolved.env.items()}

    def refresh(self) -> list[str]:
        """Re-read references whose source changed; return the names of servers updated."""
        changed = []
        for name, res in list(self._secrets.items()):
            if _stamp_of(res.ref, self.environ) == res.stamp:
                continue
            try:
                new = read_ref(res.ref, self.environ)
            except CredentialError as exc:
                # Keep the last good secret: a file mid-rewrite must not break every call.
                log.warning("credential for %s not refreshed: %s", name, exc)
                continue
            self._secrets[name] = new
            self._retire(name)
            changed.append(name)
        for name, refs in self._env.items():
            for i, res in enumerate(refs):
                if _stamp_of(res.ref, self.environ) != res.stamp:
                    with contextlib.suppress(CredentialError):  # unreadable now: the value known stays masked
                        refs[i] = read_ref(res.ref, self.environ)
                        if name not in changed:
                            changed.append(name)
        if changed:
            log.info("backend credentials refreshed", extra={"servers": changed})
        return changed

    def forms(self, server: ServerConfig) -> list[str]:
        """Every form the server's credential (and its current oauth2 token) may be echoed in, for
        masking what the backend says (gateway/masking.py); empty when it has none."""
        resolved = self._secrets.get(server.name)
        if resolved is None:
            return self._env_forms(server.name)
        auth = self._auth.get(server.name, server.auth)
        token, retired = self._tokens.get(server.name), self._retired.get(server.name)
        values: tuple[str, ...] = (resolved.secret.get(), token.value.get() if token is not None else "")
        if retired:  # rare: only after a refresh, so the usual answer reads no clock
            now = self._clock()
            values += tuple(t.value.get() for t in retired if t.expires_at > now)
        cached = self._forms.get(server.name)
        if cached is None or cached[0] != (auth, values):  # computed once per credential (a relay asks per answer)
            cached = self._forms[server.name] = ((auth, values), [f for v in values for f in credential_forms(auth, v)])
        return cached[1]

    def launched(self, server: str, values: Iterable[str]) -> Callable[[], None]:
        """Mask `values` (the env secrets a stdio child of `server` was started with) in what the
        server says until the returned function is called, when that child has stopped."""
        held = tuple(v for v in values if v)
        launch, children = next(self._launch_ids), self._launched.setdefault(server, {})
        children[launch] = held

        def release() -> None:
            children.pop(launch, None)
            if not children and self._launched.get(server) is children:
                del self._launched[server]
        return release

    def _env_forms(self, name: str) -> list[str]:
        """The forms of a stdio server's env secrets, current and held by its running children."""
        if name not in self._env and not self._launched.get(name):
            return []  # the usual server (no secret env): asked per answer, so no generators built
        current = (res.secret.get() for res in self._env.get(name, ()))
        launched = (v for held in self._launched.get(name, {}).values() for v in held)
        values = tuple(dict.fromkeys(itertools.chain(current, launched)))
        if not values:
            return []
        cached = self._forms.get(name)
        if cached is None or cached[0] != (None, values):
            cached = self._forms[name] = ((None, values), secret_forms(values))
        return cached[1]

    def invalidate_token(self, server: str) -> None:
        """Forget a cached oauth2 token (e.g. after the backend answered 401)."""
        self._retire(server)

    def _retire(self, server: str) -> None:
        """Stop using `server`'s token, still masking it until it expires (at most RETIRED_TOKENS kept)."""
        token = self._tokens.pop(server, None)
        if token is None:
            return
        now = self._clock()
        kept = [t for t in self._retired.get(server, ()) if t.expires_at > now][-(RETIRED_TOKENS - 1):]
        self._retired[server] = [*kept, token]

    async def injection(self, server: ServerConfig) -> Injection | None:
        """What to add to a request for `server`; raise CredentialError if it cannot be had."""
        auth = server.auth
        if auth.method == "none":
            return None
        resolved = self._secrets.get(server.name)
        if resolved is None or self._auth.get(server.name) != auth:
            raise CredentialError(f"no resolved credential for server {server.name}")
        if auth.method == "oauth2":
            credential = (await self._token(server.name, auth, resolved.secret)).get()
        else:
            credential = resolved.secret.get()
        return Injection(auth.location, auth.name, format_value(auth, credential))

    async def _token(self, name: str, auth: AuthConfig, secret: Secret) -> Secret:
        async with self._locks.setdefault(name, asyncio.Lock()):  # one fetch at a time per server
            token = self._tokens.get(name)
            if token is None or self._clock() >= token.refresh_at:
                fresh = await self._fetch_token(name, auth, secret)
                self._retire(name)
                token = self._tokens[name] = fresh
            return token.value

    async def _fetch_token(self, name: str, auth: AuthConfig, secret: Secret) -> _Token:
        if self.session is None:
            raise CredentialError(f"server {name}: oauth2 needs an HTTP session")
        assert auth.token_url and auth.client_id
        form = {"grant_type": "client_credentials"}
        if auth.scope:
            form["scope"] = auth.scope
        if auth.audience:
            form["audience"] = auth.audience
        # client_secret_basic (RFC 6749 2.3.1: each part form-encoded, then base64) keeps the
        # secret out of form bodies that token endpoints tend to log.
        pair = f"{quote_plus(auth.client_id)}:{quote_plus(secret.get())}"
        headers = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}
        started = self._clock()
        try:
            async with self.session.post(
                auth.token_url, data=form, headers=headers, timeout=aiohttp.ClientTimeout(total=10),
                allow_redirects=False,  # the client secret goes to the configured URL only
            ) as resp:
                if resp.status != 200:
                    raise CredentialError(f"server {name}: token endpoint answered HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise CredentialError(f"server {name}: token request failed: {type(exc).__name__}") from None
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise CredentialError(f"server {name}: token endpoint returned no access_token")
        expires_in = body.get("expires_in")
        life = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else 300.0
        margin = min(REFRESH_MARGIN, life * 0.1)
        return _Token(Secret(value), started + life - margin, started + life)
