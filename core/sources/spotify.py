"""Spotify client (optional source): OAuth authorization-code flow and the endpoints still open to
development-mode apps in 2026.

Built on spotipy, which is synchronous (requests): every call runs in a worker thread via
`asyncio.to_thread`. spotipy's own retrying is switched off by handing it a plain
`requests.Session` (its default session mounts a urllib3 Retry that would sleep inside the thread on
a long `Retry-After`, or turn a 429 into a header-less "Max Retries" error); 429 and 5xx come back as
`SpotifyException` carrying the response headers, and are retried here asynchronously via
`core.sources.http.with_retries`, after the shared per-app `RateLimiter`.

Redirection to a local fake: the API root is spotipy's instance attribute `prefix`; the OAuth URLs
are class attributes of `SpotifyOAuth`, so they are overridden per instance on a private subclass
(no global state changes, tests cannot leak into each other).

Token lifecycle: a `SpotifyUserApi` holds one user's `TokenSet`, refreshes it when < 60 s remain,
and on a 401 refreshes once and retries; a second 401, or `invalid_grant` from the token endpoint,
is `AccountProblem("spotify_token_revoked")`. Every new token set is handed to `on_refresh` so the
caller can persist it (encrypted) before it is used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError
from spotipy.oauth2 import SpotifyOAuth

from core.errors import AccountProblem, NotFound, SourceUnavailable
from core.sources.http import RateLimiter, Retryable, RetryPolicy, retry_after_from, with_retries
from core.sources.spotify_models import (
    CreatedPlaylist,
    RecentlyPlayed,
    SavedTracksPage,
    SpotifyArtist,
    SpotifyMalformed,
    SpotifyTrack,
    TokenSet,
    parse_artist,
    parse_items,
    parse_recently_played,
    parse_saved_tracks,
    parse_track,
)

if TYPE_CHECKING:
    from core.config import Settings

log = logging.getLogger(__name__)

SOURCE = "spotify"
T = TypeVar("T")
TimeRange = Literal["short_term", "medium_term", "long_term"]
SCOPES = ("user-read-recently-played user-top-read user-library-read "
          "playlist-modify-private playlist-modify-public")
MAX_ITEMS_PER_ADD = 100

REVOKED = ("spotify_token_revoked",
           "Sonance can no longer read your Spotify account (access was revoked or expired). "
           "Please run /link spotify again.")


class _SonanceOAuth(SpotifyOAuth):
    """SpotifyOAuth whose endpoints come from settings, set on the instance, not the class."""

    def __init__(self, *, accounts_base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        base = accounts_base.rstrip("/")
        self.OAUTH_AUTHORIZE_URL = f"{base}/authorize"
        self.OAUTH_TOKEN_URL = f"{base}/api/token"

    def _add_custom_values_to_token_info(self, token_info: dict[str, Any]) -> dict[str, Any]:
        # spotipy overwrites the *granted* scope with the *requested* one; keep what Spotify granted.
        granted = token_info.get("scope")
        token_info = super()._add_custom_values_to_token_info(token_info)
        if granted is not None:
            token_info["scope"] = granted
        return token_info


def _token_set(info: dict[str, Any], previous_refresh: str | None = None) -> TokenSet:
    return TokenSet(
        access_token=info["access_token"],
        refresh_token=info.get("refresh_token") or previous_refresh or "",
        expires_at=float(info.get("expires_at") or time.time() + float(info.get("expires_in", 3600))),
        scope=info.get("scope") or "",
    )


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError)


class SpotifyAuth:
    """The authorization-code flow: where to send the user, and the token endpoint calls."""

    def __init__(self, settings: Settings, *, retry: RetryPolicy | None = None, timeout_s: float = 10.0,
                 scope: str = SCOPES) -> None:
        settings.require("spotify_client_id", "spotify_client_secret", "spotify_redirect_uri")
        assert settings.spotify_client_secret is not None
        self._kwargs: dict[str, Any] = dict(
            client_id=settings.spotify_client_id,
            client_secret=settings.spotify_client_secret.get_secret_value(),
            redirect_uri=settings.spotify_redirect_uri, scope=scope, open_browser=False,
            requests_timeout=timeout_s, cache_handler=MemoryCacheHandler(),
            accounts_base=settings.spotify_accounts_base,
        )
        self._retry = retry or RetryPolicy()

    def _oauth(self) -> _SonanceOAuth:
        # A fresh manager per call: MemoryCacheHandler must never hold one user's token for another.
        kwargs = dict(self._kwargs, cache_handler=MemoryCacheHandler())
        return _SonanceOAuth(**kwargs)

    def authorize_url(self, state: str) -> str:
        """The consent URL; `state` comes from `OAuthStateSigner.issue`."""
        return self._oauth().get_authorize_url(state=state)

    async def _token_call(self, fn: Callable[[_SonanceOAuth], dict[str, Any]]) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            oauth = self._oauth()
            try:
                return await asyncio.to_thread(fn, oauth)
            except SpotifyOauthError as exc:
                if exc.error in ("invalid_grant",):
                    raise AccountProblem(*REVOKED) from None
                if exc.error in ("invalid_client", "unauthorized_client", "invalid_request"):
                    raise SourceUnavailable(SOURCE, detail=f"token endpoint: {exc.error}") from None
                raise Retryable(f"token endpoint: {exc.error}") from None
            except requests.exceptions.RequestException as exc:
                if _transient(exc):
                    raise Retryable(f"token endpoint: {type(exc).__name__}") from None
                raise SourceUnavailable(SOURCE, detail=str(exc)) from None

        return await with_retries(attempt, source=SOURCE, policy=self._retry)

    @staticmethod
    def _exchange(oauth: _SonanceOAuth, code: str) -> dict[str, Any]:
        # as_dict=True is deprecated in spotipy; the full token info lands in the (per-call) cache
        oauth.get_access_token(code, as_dict=False, check_cache=False)
        info = oauth.cache_handler.get_cached_token()
        if not info:
            raise SpotifyOauthError("no token info after exchange", error="server_error")
        return info

    async def exchange_code(self, code: str) -> TokenSet:
        """Trade the callback's `code` for tokens. An invalid/used code -> AccountProblem."""
        try:
            info = await self._token_call(lambda o: self._exchange(o, code))
        except AccountProblem:
            raise AccountProblem("spotify_code_invalid",
                                 "That Spotify authorisation was already used or has expired. "
                                 "Please run /link spotify again.") from None
        return _token_set(info)

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        """A new access token (Spotify may or may not rotate the refresh token; both handled)."""
        if not tokens.refresh_token:
            raise AccountProblem(*REVOKED)
        info = await self._token_call(lambda o: o.refresh_access_token(tokens.refresh_token))
        return _token_set(info, previous_refresh=tokens.refresh_token)


class SpotifyClient:
    """Process-wide Spotify entry point: the OAuth flow plus per-user API handles."""

    def __init__(self, settings: Settings, limiter: RateLimiter, *, retry: RetryPolicy | None = None,
                 timeout_s: float = 10.0, refresh_margin_s: float = 60.0) -> None:
        self.auth = SpotifyAuth(settings, retry=retry, timeout_s=timeout_s)
        self._prefix = settings.spotify_api_base if settings.spotify_api_base.endswith("/") \
            else settings.spotify_api_base + "/"
        self._limiter = limiter
        self._retry = retry or RetryPolicy()
        self._timeout_s = timeout_s
        self._margin = refresh_margin_s

    def for_user(self, tokens: TokenSet,
                 on_refresh: Callable[[TokenSet], Awaitable[None]] | None = None) -> SpotifyUserApi:
        """An API handle for one user. Keep it for a sync run; `on_refresh` persists new tokens."""
        return SpotifyUserApi(self, tokens, on_refresh)

    def _new_spotipy(self, access_token: str) -> spotipy.Spotify:
        sp = spotipy.Spotify(auth=access_token, requests_session=requests.Session(), retries=0,
                             status_retries=0, requests_timeout=self._timeout_s)
        sp.prefix = self._prefix
        return sp


class SpotifyUserApi:
    """One user's calls. Methods raise AccountProblem / NotFound / SourceUnavailable only."""

    def __init__(self, client: SpotifyClient, tokens: TokenSet,
                 on_refresh: Callable[[TokenSet], Awaitable[None]] | None) -> None:
        self._client = client
        self._tokens = tokens
        self._on_refresh = on_refresh
        self._sp = client._new_spotipy(tokens.access_token)
        self._refresh_lock = asyncio.Lock()

    @property
    def tokens(self) -> TokenSet:
        return self._tokens

    async def _refresh(self, stale: str) -> None:
        async with self._refresh_lock:
            if self._tokens.access_token != stale:
                return  # another call refreshed while we waited
            tokens = await self._client.auth.refresh(self._tokens)
            self._tokens = tokens
            self._sp.set_auth(tokens.access_token)
            if self._on_refresh is not None:
                await self._on_refresh(tokens)

    async def _call(self, what: str, fn: Callable[[spotipy.Spotify], T], *, idempotent: bool = True) -> T:
        if self._tokens.expires_soon(margin_s=self._client._margin):
            await self._refresh(self._tokens.access_token)

        async def attempt() -> T:
            await self._client._limiter.acquire()
            try:
                return await asyncio.to_thread(fn, self._sp)
            except SpotifyException as exc:
                if exc.http_status == 429:
                    raise Retryable(f"{what}: HTTP 429", retry_after=retry_after_from(exc.headers)) from None
                if exc.http_status >= 500 and idempotent:
                    raise Retryable(f"{what}: HTTP {exc.http_status}") from None
                raise
            except requests.exceptions.RequestException as exc:
                if idempotent and _transient(exc):
                    raise Retryable(f"{what}: {type(exc).__name__}") from None
                raise SourceUnavailable(SOURCE, detail=f"{what}: {exc}") from None

        for refreshed in (False, True):
            used = self._tokens.access_token
            try:
                return await with_retries(attempt, source=SOURCE, policy=self._client._retry)
            except SpotifyException as exc:
                if exc.http_status == 401 and not refreshed:
                    log.info("spotify %s: 401 (%s); refreshing the token once", what, exc.msg)
                    await self._refresh(used)
                    continue
                raise self._translate(what, exc) from None
        raise AssertionError("unreachable")

    @staticmethod
    def _translate(what: str, exc: SpotifyException) -> Exception:
        if exc.http_status == 401:
            return AccountProblem(*REVOKED)
        if exc.http_status == 403:
            return AccountProblem(
                "spotify_forbidden",
                "Spotify refused access for your account. Sonance's Spotify app is limited to a few "
                "approved users; ask the bot owner to add you, or use Last.fm instead.")
        if exc.http_status == 404:
            return NotFound(detail=f"spotify {what}")
        return SourceUnavailable(SOURCE, detail=f"{what}: HTTP {exc.http_status} {exc.msg}")

    async def _parsed(self, what: str, fn: Callable[[spotipy.Spotify], Any], parser: Callable[[Any], T],
                      *, idempotent: bool = True) -> T:
        data = await self._call(what, fn, idempotent=idempotent)
        try:
            return parser(data)
        except SpotifyMalformed as exc:
            raise SourceUnavailable(SOURCE, detail=f"{what}: {exc}") from None

    # ------------------------------------------------------------------------------- reads

    async def recently_played(self, *, after_ms: int | None = None, limit: int = 50) -> RecentlyPlayed:
        """Up to 50 plays after `after_ms` (Unix ms), oldest first; store the returned `after_ms`.

        Spotify only keeps the last 50 plays here, so poll at least every couple of hours.
        """
        return await self._parsed(
            "recently-played", lambda sp: sp.current_user_recently_played(limit=min(limit, 50), after=after_ms),
            lambda d: parse_recently_played(d, after_ms))

    async def top_artists(self, time_range: TimeRange = "medium_term", *, limit: int = 50) -> list[SpotifyArtist]:
        return await self._parsed(
            "top-artists", lambda sp: sp.current_user_top_artists(limit=limit, time_range=time_range),
            lambda d: [parse_artist(a, rank) for rank, a in enumerate(parse_items(d), start=1)])

    async def top_tracks(self, time_range: TimeRange = "medium_term", *, limit: int = 50) -> list[SpotifyTrack]:
        return await self._parsed(
            "top-tracks", lambda sp: sp.current_user_top_tracks(limit=limit, time_range=time_range),
            lambda d: [parse_track(t, rank) for rank, t in enumerate(parse_items(d), start=1)])

    async def saved_tracks(self, *, offset: int = 0, limit: int = 50) -> SavedTracksPage:
        return await self._parsed(
            "saved-tracks", lambda sp: sp.current_user_saved_tracks(limit=min(limit, 50), offset=offset),
            parse_saved_tracks)

    async def iter_saved_tracks(self, *, page_size: int = 50) -> AsyncIterator[SavedTracksPage]:
        offset: int | None = 0
        while offset is not None:
            page = await self.saved_tracks(offset=offset, limit=page_size)
            yield page
            offset = page.next_offset

    async def search_tracks(self, query: str, *, limit: int = 10) -> list[SpotifyTrack]:
        return await self._parsed(
            "search", lambda sp: sp.search(q=query, type="track", limit=limit),
            lambda d: [parse_track(t) for t in parse_items((d or {}).get("tracks"))])

    async def find_track(self, artist: str, title: str) -> SpotifyTrack | None:
        """The Spotify track for (artist, title) via search + identity matching, or None."""
        from core.matching import TRACK_THRESHOLD, track_key, track_match_score

        def clean(s: str) -> str:
            return s.replace('"', " ")

        candidates = await self.search_tracks(f'track:"{clean(title)}" artist:"{clean(artist)}"', limit=10)
        want = track_key(artist, title)
        for t in candidates:
            if any(track_key(a, t.name) == want for a in t.artists):
                return t
        scored = [(max(track_match_score(artist, title, a, t.name) for a in t.artists or ("",)), t)
                  for t in candidates]
        scored = [st for st in scored if st[0] >= TRACK_THRESHOLD]
        return max(scored, key=lambda st: st[0])[1] if scored else None

    # ------------------------------------------------------------------------------ writes

    async def create_playlist(self, name: str, uris: list[str], *, description: str = "",
                              public: bool = False) -> CreatedPlaylist:
        """`POST /me/playlists`, then `POST /playlists/{id}/items` in chunks of at most 100 URIs.

        Writes are not retried after a 5xx or timeout (the write may have happened: retrying could
        duplicate the playlist); a 429 is retried since Spotify did not process the request.
        """
        created = await self._call(
            "create-playlist",
            lambda sp: sp.current_user_playlist_create(name, public=public, description=description),
            idempotent=False)
        if not isinstance(created, dict) or not created.get("id"):
            raise SourceUnavailable(SOURCE, detail="create-playlist: no id in answer")
        playlist_id = created["id"]
        added = 0
        for start in range(0, len(uris), MAX_ITEMS_PER_ADD):
            chunk = uris[start:start + MAX_ITEMS_PER_ADD]
            await self._call("add-items", lambda sp, c=chunk: sp.playlist_add_items(playlist_id, c),
                             idempotent=False)
            added += len(chunk)
        return CreatedPlaylist(playlist_id, (created.get("external_urls") or {}).get("spotify"),
                               created.get("uri"), added)
