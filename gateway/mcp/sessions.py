"""Gateway-minted `Mcp-Session-Id`s: self-contained, AES-GCM-sealed (signed and opaque), bound to the subject.

Any replica holding the secret opens them, so a session outlives the replica that minted it.
Forged, expired or foreign-subject ids are all "unknown session" (404). DELETEd sessions are
remembered by a keyed hash until they would have expired (shared by `gateway.mcp.revocations`).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import os
import secrets
import time
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "gw1."


@dataclass(frozen=True)
class Session:
    """What a session id carries."""

    sid: str  # random, for metrics and audit correlation
    subject_hash: str
    version: str
    server: str | None = None  # None = the aggregated /mcp endpoint
    upstream_id: str | None = None  # the backend's Mcp-Session-Id (passthrough)
    issued_at: float = 0.0
    bridged: bool = False  # backend of the other era: requests go through the upstream pool
    capabilities: str = "{}"  # the agent's declared client capabilities (canonical JSON, bounded)


class SessionError(Exception):
    """The id is not a live session for this caller (answered with 404)."""


def subject_hash(subject: str, key: bytes) -> str:
    """A keyed hash of the subject, so ids do not reveal who holds them."""
    return hmac.new(key, subject.encode(), hashlib.sha256).hexdigest()[:32]


class SessionCodec:
    """Mints and opens session ids with one secret; `max_age` bounds their lifetime."""

    def __init__(self, secret: str | bytes | None, max_age: float = 86_400.0) -> None:
        raw = secret.encode() if isinstance(secret, str) else (secret or os.urandom(32))
        self._enc = AESGCM(hmac.new(raw, b"mcpgw-session-enc-v1", hashlib.sha256).digest())
        self._mac = hmac.new(raw, b"mcpgw-session-subject-v1", hashlib.sha256).digest()
        self._revoke_mac = hmac.new(raw, b"mcpgw-session-revoke-v1", hashlib.sha256).digest()
        self.max_age = max_age
        self._revoked: dict[str, float] = {}  # revocation key -> unix time the session expires
        # (expiry, key) min-heap: expired revocations leave from the top, so noting one is O(log n).
        self._expiries: list[tuple[float, str]] = []

    def mint(self, subject: str, version: str, server: str | None = None,
             upstream_id: str | None = None, now: float | None = None,
             bridged: bool = False, capabilities: str = "{}") -> tuple[str, Session]:
        """A new session id for `subject` and the Session it encodes."""
        session = Session(
            sid=secrets.token_hex(8), subject_hash=subject_hash(subject, self._mac), version=version,
            server=server, upstream_id=upstream_id, issued_at=time.time() if now is None else now,
            bridged=bridged, capabilities=capabilities,
        )
        payload = orjson.dumps([session.sid, session.subject_hash, version, server, upstream_id,
                                int(session.issued_at), bridged, capabilities])
        nonce = os.urandom(12)
        sealed = self._enc.encrypt(nonce, payload, PREFIX.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode(), session

    def open(self, token: str, subject: str, server: str | None = None, now: float | None = None) -> Session:
        """The Session behind `token` if it is genuine, live, ours and for `server`; else SessionError."""
        if not token.startswith(PREFIX) or len(token) > 4096:
            raise SessionError("unknown session")
        body = token[len(PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            payload = self._enc.decrypt(raw[:12], raw[12:], PREFIX.encode())
            sid, shash, version, srv, upstream, issued, bridged, *rest = orjson.loads(payload)
        except (ValueError, InvalidTag, TypeError):
            raise SessionError("unknown session") from None
        current = time.time() if now is None else now
        if current - issued > self.max_age or (self._revoked and self.revocation_key(sid) in self._revoked):
            raise SessionError("session expired or terminated")
        if not hmac.compare_digest(shash, subject_hash(subject, self._mac)):
            raise SessionError("unknown session")  # never tell a caller the id belongs to someone else
        if srv != server:
            raise SessionError("session belongs to another endpoint")
        capabilities = rest[0] if rest and isinstance(rest[0], str) else "{}"
        return Session(sid, shash, version, srv, upstream, float(issued), bool(bridged), capabilities)

    def revocation_key(self, sid: str) -> str:
        """The keyed hash a revoked session is known by (in memory, in the database, on the wire)."""
        return hmac.new(self._revoke_mac, sid.encode(), hashlib.sha256).hexdigest()

    def revoke(self, session: Session) -> tuple[str, float]:
        """Refuse `session` on this replica from now on; return its revocation key and expiry."""
        key, expires = self.revocation_key(session.sid), session.issued_at + self.max_age
        self.note_revoked(key, expires)
        return key, expires

    def note_revoked(self, key: str, expires: float, now: float | None = None) -> None:
        """Remember a revocation (ours or another replica's) until `expires`; O(log n), since every
        replica hears every DELETE."""
        current = time.time() if now is None else now
        self._expire(current)
        if expires > current and self._revoked.get(key, 0.0) < expires:
            self._revoked[key] = expires
            heapq.heappush(self._expiries, (expires, key))

    def _expire(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            expires, key = heapq.heappop(self._expiries)
            if self._revoked.get(key) == expires:  # not re-noted with a later expiry since
                del self._revoked[key]

    def replace_revoked(self, entries: dict[str, float]) -> None:
        """Adopt a full revocation set (loaded from the database), keeping local ones not in it yet."""
        now = time.time()
        for key, expires in entries.items():
            self.note_revoked(key, expires, now)

    @property
    def revoked_count(self) -> int:
        """Revocations remembered by this replica."""
        return len(self._revoked)
