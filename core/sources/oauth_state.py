"""Signed, expiring, single-use OAuth `state` values.

Why: the OAuth callback is a public URL. The `state` parameter is how the callback learns which
Discord user started the flow, so it must be unforgeable (HMAC with the app's secret key), short-lived
(an expiry inside the signed payload) and single-use (a nonce recorded when consumed, so a leaked
callback URL cannot link the account a second time). Nothing is stored when a state is *issued*;
only consumption writes, which keeps the /link command free of database work.

A state is claimed (`claim`) when its callback starts the token exchange, so concurrent callbacks with
one state exchange at most one code. If the exchange fails on the provider's side (5xx, timeout), the
callback `release`s the claim: the same link then works again until it expires, so "try again later"
is true. After a successful exchange the claim stays: replays are refused.

Format: `base64url(json payload) "." base64url(hmac_sha256(secret, payload_b64))`, payload
`{"u": discord_user_id, "p": purpose, "n": nonce, "e": expiry_unix}`. The purpose ("spotify",
"lastfm") stops a state minted for one provider being replayed on another's callback.

Why hand-written beside itsdangerous (the well-kept library for signed, timed tokens): the signing
and expiry it would replace are a few lines of standard-library `hmac` in `OAuthStateSigner`,
compared in constant time; the part that needs care is the single-use claim and its release, which
no signing library offers and which would stay here anyway. A dependency for the easy half is not
worth it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Protocol

from core.errors import SonanceError


class OAuthStateError(SonanceError):
    """The callback's state is forged, expired, for another flow, or already used."""

    user_message = "That link has expired or was already used. Please run /link again."


class NonceStore(Protocol):
    """Records consumed nonces. `consume` returns True the first time a nonce is seen, else False.

    Implementations must be atomic across processes when the bot runs several (Redis `SET NX EX`,
    or a DB insert on a unique key); `ttl` is how long the nonce must be remembered (until the state
    would have expired anyway).
    """

    async def consume(self, nonce: str, ttl: float) -> bool: ...

    async def release(self, nonce: str) -> None:
        """Forget a consumed nonce (the flow it guarded failed before doing anything)."""


class InMemoryNonceStore:
    """Single-process `NonceStore` (tests, a one-process bot). Expired entries are pruned lazily."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, float] = {}

    async def consume(self, nonce: str, ttl: float) -> bool:
        now = self._clock()
        if len(self._seen) > 1024:
            self._seen = {n: exp for n, exp in self._seen.items() if exp > now}
        expires = self._seen.get(nonce)
        if expires is not None and expires > now:
            return False
        self._seen[nonce] = now + ttl
        return True

    async def release(self, nonce: str) -> None:
        self._seen.pop(nonce, None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class OAuthStateSigner:
    """Issues and verifies states. One instance, built from `settings.secret_key`."""

    def __init__(self, secret_key: str | bytes, store: NonceStore, *, ttl_s: float = 600.0,
                 clock: Callable[[], float] = time.time) -> None:
        if not secret_key:
            raise ValueError("a secret key is required to sign OAuth state")
        self._key = secret_key.encode() if isinstance(secret_key, str) else secret_key
        self._store = store
        self.ttl_s = ttl_s
        self._clock = clock

    def _mac(self, payload_b64: str) -> str:
        return _b64(hmac.new(self._key, payload_b64.encode("ascii"), hashlib.sha256).digest())

    def issue(self, discord_user_id: int, purpose: str = "spotify") -> str:
        payload = {"u": int(discord_user_id), "p": purpose, "n": secrets.token_urlsafe(12),
                   "e": int(self._clock() + self.ttl_s)}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    async def verify(self, state: str, purpose: str = "spotify") -> int:
        """Return the Discord user id the state was issued for; consume it. Raises OAuthStateError."""
        user_id, _ = await self.claim(state, purpose)
        return user_id

    async def release(self, nonce: str) -> None:
        """Give a claimed state back (its token exchange failed on the provider's side)."""
        await self._store.release(nonce)

    async def claim(self, state: str, purpose: str = "spotify") -> tuple[int, str]:
        """Verify and consume the state: (Discord user id, nonce). Raises OAuthStateError."""
        body, _, mac = (state or "").partition(".")
        if not body or not mac or not (body.isascii() and mac.isascii()) \
                or not hmac.compare_digest(mac, self._mac(body)):  # non-ASCII: refuse, don't crash
            raise OAuthStateError(detail="bad signature")
        try:
            payload = json.loads(_unb64(body))
            user_id, got_purpose, nonce, expiry = int(payload["u"]), payload["p"], str(payload["n"]), payload["e"]
        except (ValueError, KeyError, TypeError):
            raise OAuthStateError(detail="bad payload") from None
        if got_purpose != purpose:
            raise OAuthStateError(detail="wrong purpose")
        remaining = float(expiry) - self._clock()
        if remaining <= 0:
            raise OAuthStateError(detail="expired")
        if not await self._store.consume(nonce, remaining):
            raise OAuthStateError(detail="already used")
        return user_id, nonce
