"""Spotify's authorization-code flow: the consent URL, and the token endpoint (code exchange, refresh).

The wire format is RFC 6749 as Spotify documents it: `POST {accounts}/api/token`, form-encoded, with
the app's credentials in an HTTP Basic header; errors are the OAuth shape `{"error": "invalid_grant",
"error_description": …}`. It is a dozen lines of aiohttp, so no OAuth library is used (see
`core.sources.spotify` for why Sonance has no Spotify SDK either).

Error mapping:
- `invalid_grant` (a used or expired code, a revoked refresh token) -> AccountProblem: the user must
  link again; `exchange_code` words it as "that authorisation was already used".
- any other error (`invalid_client`, `unauthorized_client`, `invalid_request`, …, or a bare 4xx)
  -> SourceUnavailable at once: our configuration is wrong, and asking again will not change that.
- 429 (honouring Retry-After), 5xx, timeouts, connection errors and a 2xx body that is not a token
  response -> retried with backoff, then SourceUnavailable.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
import orjson

from core.errors import AccountProblem, SourceUnavailable
from core.sources.http import Retryable, RetryPolicy, retry_after_from, with_retries
from core.sources.spotify_models import TokenSet

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from core.config import Settings

SOURCE = "spotify"
SCOPES = ("user-read-recently-played user-top-read user-library-read "
          "playlist-modify-private playlist-modify-public")

REVOKED = ("spotify_token_revoked",
           "Sonance can no longer read your Spotify account (access was revoked or expired). "
           "Please run /link spotify again.")
CODE_INVALID = ("spotify_code_invalid",
                "That Spotify authorisation was already used or has expired. Please run /link spotify again.")


def token_set(info: Any, *, fallback_scope: str, previous_refresh: str | None = None) -> TokenSet:
    """A token endpoint answer -> TokenSet. Raises Retryable when it is not a token response.

    Spotify may omit `refresh_token` on a refresh (the old one stays valid) and `scope` when it granted
    what was asked (RFC 6749 section 5.1), hence the fallbacks.
    """
    if not isinstance(info, dict) or not isinstance(info.get("access_token"), str) or not info["access_token"]:
        raise Retryable("token endpoint: answer without an access_token")
    try:
        expires_in = float(info.get("expires_in", 3600))
    except (TypeError, ValueError):
        raise Retryable("token endpoint: expires_in is not a number") from None
    refresh = info.get("refresh_token")
    scope = info.get("scope")
    return TokenSet(
        access_token=info["access_token"],
        refresh_token=refresh if isinstance(refresh, str) and refresh else previous_refresh or "",
        expires_at=time.time() + expires_in,
        scope=scope if isinstance(scope, str) else fallback_scope,
    )


class SpotifyAuth:
    """The authorization-code flow for one Spotify app, on the process's shared HTTP session."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession, *, retry: RetryPolicy | None = None,
                 timeout_s: float = 10.0, scope: str = SCOPES) -> None:
        settings.require("spotify_client_id", "spotify_client_secret", "spotify_redirect_uri")
        assert settings.spotify_client_id is not None and settings.spotify_client_secret is not None
        assert settings.spotify_redirect_uri is not None
        self._client_id = settings.spotify_client_id
        self._redirect_uri = settings.spotify_redirect_uri
        credentials = f"{self._client_id}:{settings.spotify_client_secret.get_secret_value()}"
        self._basic = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
        base = settings.spotify_accounts_base.rstrip("/")
        self._authorize_url = f"{base}/authorize"
        self._token_url = f"{base}/api/token"
        self._session = session
        self._retry = retry or RetryPolicy()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.scope = scope

    def authorize_url(self, state: str) -> str:
        """The consent URL; `state` comes from `OAuthStateSigner.issue`."""
        query = {"client_id": self._client_id, "response_type": "code", "redirect_uri": self._redirect_uri,
                 "scope": self.scope, "state": state}
        return f"{self._authorize_url}?{urlencode(query)}"

    async def exchange_code(self, code: str) -> TokenSet:
        """Trade the callback's `code` for tokens. An invalid/used code -> AccountProblem."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self._redirect_uri}
        try:
            return await self._token_call(form, lambda info: token_set(info, fallback_scope=self.scope))
        except AccountProblem:
            raise AccountProblem(*CODE_INVALID) from None

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        """A new access token (Spotify may or may not rotate the refresh token; both handled)."""
        if not tokens.refresh_token:
            raise AccountProblem(*REVOKED)
        form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        return await self._token_call(form, lambda info: token_set(
            info, fallback_scope=tokens.scope, previous_refresh=tokens.refresh_token))

    async def _token_call(self, form: Mapping[str, str], build: Callable[[Any], TokenSet]) -> TokenSet:
        """POST the form until a token response comes back; `build` turns it into a TokenSet inside
        the retry loop, so an answer of the wrong shape is retried like a 5xx."""
        headers = {"Authorization": self._basic, "Accept": "application/json"}

        async def attempt() -> TokenSet:
            try:
                async with self._session.post(self._token_url, data=dict(form), headers=headers,
                                              timeout=self._timeout) as resp:
                    body = await resp.read()
                    info = self._decode(resp.status, resp.headers, body)
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise Retryable(f"token endpoint: {type(exc).__name__}") from None
            return build(info)

        return await with_retries(attempt, source=SOURCE, policy=self._retry)

    @staticmethod
    def _decode(status: int, headers: Mapping[str, str], body: bytes) -> Any:
        if status == 429 or status >= 500:
            raise Retryable(f"token endpoint: HTTP {status}", retry_after=retry_after_from(headers))
        try:
            data = orjson.loads(body)
        except ValueError:
            if status >= 400:
                raise SourceUnavailable(SOURCE, detail=f"token endpoint: HTTP {status}") from None
            raise Retryable(f"token endpoint: malformed body (HTTP {status})") from None
        error = data.get("error") if isinstance(data, dict) else None
        if error == "invalid_grant":
            raise AccountProblem(*REVOKED)
        if error is not None or status >= 400:
            raise SourceUnavailable(SOURCE, detail=f"token endpoint: HTTP {status} {error or ''}".rstrip())
        return data
