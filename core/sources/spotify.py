"""Spotify client (optional source): the Web API endpoints still open to development-mode apps in 2026.

Why hand-written on aiohttp rather than a Spotify library: Sonance calls a handful of JSON endpoints
(recently played, top artists/tracks, saved tracks, search, /me, create playlist + add/replace items) and
must call them the way it calls Last.fm: on the process's one `aiohttp` session, after the shared
per-app `RateLimiter`, with `core.sources.http.with_retries` honouring `Retry-After` in the caller's
own task. spotipy, the best-kept Python library, is synchronous (requests): using it meant a worker
thread per call, a swapped-in session to switch off its urllib3 retries (which sleep inside the
thread on a long `Retry-After`), a patched private method to keep the granted scope, and class
attributes overridden to reach a local fake. An async library (tekore, on httpx) would bring a
second HTTP stack and its own retry and token handling beside ours. What remains here is the documented wire format,
which `tests/fakes/spotify_server.py` also speaks (and refuses what Spotify refuses).

Token lifecycle: a `SpotifyUserApi` holds one user's `TokenSet`, refreshes it when < 60 s remain,
and on a 401 refreshes once and retries; a second 401, or `invalid_grant` from the token endpoint,
is `AccountProblem("spotify_token_revoked")`. Every new token set is handed to `on_refresh` so the
caller can persist it (encrypted) before it is used.

Error mapping (API errors are `{"error": {"status": …, "message": …}}`):
- 401 -> one refresh, then AccountProblem("spotify_token_revoked"); 403 -> AccountProblem
  ("spotify_forbidden": a dev-mode app serves only its allow-listed users); 404 -> NotFound
- 429 -> retried after `Retry-After` (reads and writes alike: Spotify did not process the request)
- 5xx, timeouts, connection errors -> retried for reads; for writes SourceUnavailable at once, since
  the write may have happened and a retry could duplicate the playlist. Replacing a playlist's items
  (PUT) is idempotent, so it is retried like a read.
- a 2xx body that is not JSON, or not the documented shape -> SourceUnavailable (not retried)
- any other 4xx -> SourceUnavailable
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
import orjson

from core.errors import AccountProblem, NotFound, SourceUnavailable
from core.sources.http import RateLimiter, Retryable, RetryPolicy, retry_after_from, user_agent, with_retries
from core.sources.spotify_auth import REVOKED, SCOPES, SOURCE, SpotifyAuth
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

__all__ = ["REVOKED", "SCOPES", "SOURCE", "SpotifyAuth", "SpotifyClient", "SpotifyUserApi", "TokenSet"]

log = logging.getLogger(__name__)

T = TypeVar("T")
TimeRange = Literal["short_term", "medium_term", "long_term"]
MAX_ITEMS_PER_ADD = 100
FORBIDDEN = ("spotify_forbidden",
             "Spotify refused access for your account. Sonance's Spotify app is limited to a few "
             "approved users; ask the bot owner to add you, or use Last.fm instead.")


class SpotifyClient:
    """Process-wide Spotify entry point: the OAuth flow plus per-user API handles.

    `session` and `limiter` are created once by the composition root (`Services.start_clients`);
    the limiter is the app's budget, shared by every user.
    """

    def __init__(self, settings: Settings, session: aiohttp.ClientSession, limiter: RateLimiter, *,
                 retry: RetryPolicy | None = None, timeout_s: float = 10.0, refresh_margin_s: float = 60.0) -> None:
        self.auth = SpotifyAuth(settings, session, retry=retry, timeout_s=timeout_s)
        self.session = session
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.refresh_margin_s = refresh_margin_s
        self.api_root = settings.spotify_api_base.rstrip("/") + "/"
        self.user_agent = user_agent(settings)

    def for_user(self, tokens: TokenSet,
                 on_refresh: Callable[[TokenSet], Awaitable[None]] | None = None) -> SpotifyUserApi:
        """An API handle for one user. Keep it for a sync run; `on_refresh` persists new tokens."""
        return SpotifyUserApi(self, tokens, on_refresh)


class _Refused(Exception):
    """A 4xx answer that retrying cannot fix (a 401 still earns one token refresh)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status} {message}")
        self.status = status
        self.message = message


def _error_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
        return str(data["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


class SpotifyUserApi:
    """One user's calls. Methods raise AccountProblem / NotFound / SourceUnavailable only."""

    def __init__(self, client: SpotifyClient, tokens: TokenSet,
                 on_refresh: Callable[[TokenSet], Awaitable[None]] | None) -> None:
        self._client = client
        self._tokens = tokens
        self._on_refresh = on_refresh
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
            if self._on_refresh is not None:
                await self._on_refresh(tokens)

    # ---------------------------------------------------------------------------- transport

    async def _call(self, what: str, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    body: Any = None, idempotent: bool = True) -> Any:
        """One API call with refresh-before-expiry, retries and one refresh on 401; the decoded JSON."""
        if self._tokens.expires_soon(margin_s=self._client.refresh_margin_s):
            await self._refresh(self._tokens.access_token)
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}

        async def attempt() -> Any:
            return await self._attempt(what, method, path, query, body, idempotent)

        for refreshed in (False, True):
            used = self._tokens.access_token
            try:
                return await with_retries(attempt, source=SOURCE, policy=self._client.retry)
            except _Refused as exc:
                if exc.status == 401 and not refreshed:
                    log.info("spotify %s: 401 (%s); refreshing the token once", what, exc.message)
                    await self._refresh(used)
                    continue
                raise self._translate(what, exc) from None
        raise AssertionError("unreachable")

    async def _attempt(self, what: str, method: str, path: str, query: dict[str, str], body: Any,
                       idempotent: bool) -> Any:
        client = self._client
        await client.limiter.acquire()
        headers = {"Authorization": f"Bearer {self._tokens.access_token}", "Accept": "application/json",
                   "User-Agent": client.user_agent}
        try:
            async with client.session.request(method, client.api_root + path, params=query, json=body,
                                              headers=headers, timeout=client.timeout) as resp:
                status, resp_headers, raw = resp.status, resp.headers, await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            detail = f"{what}: {type(exc).__name__}"
            if idempotent:
                raise Retryable(detail) from None
            raise SourceUnavailable(SOURCE, detail=detail) from None
        if status == 429:
            raise Retryable(f"{what}: HTTP 429", retry_after=retry_after_from(resp_headers), rate_limited=True)
        if status >= 500:
            if idempotent:
                raise Retryable(f"{what}: HTTP {status}", retry_after=retry_after_from(resp_headers))
            raise SourceUnavailable(SOURCE, detail=f"{what}: HTTP {status}")
        if status >= 400:
            raise _Refused(status, _error_message(raw))
        if not raw:
            return None
        try:
            return orjson.loads(raw)
        except ValueError:
            raise SourceUnavailable(SOURCE, detail=f"{what}: malformed JSON (HTTP {status})") from None

    @staticmethod
    def _translate(what: str, exc: _Refused) -> Exception:
        if exc.status == 401:
            return AccountProblem(*REVOKED)
        if exc.status == 403:
            return AccountProblem(*FORBIDDEN)
        if exc.status == 404:
            return NotFound(detail=f"spotify {what}")
        return SourceUnavailable(SOURCE, detail=f"{what}: HTTP {exc.status} {exc.message}")

    async def _parsed(self, what: str, path: str, params: Mapping[str, Any], parser: Callable[[Any], T]) -> T:
        data = await self._call(what, "GET", path, params=params)
        try:
            return parser(data)
        except SpotifyMalformed as exc:
            raise SourceUnavailable(SOURCE, detail=f"{what}: {exc}") from None

    # ------------------------------------------------------------------------------- reads

    async def me(self) -> dict[str, Any]:
        """`GET /me`: the Spotify user behind the token (`id`, `display_name`)."""
        data = await self._call("me", "GET", "me")
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise SourceUnavailable(SOURCE, detail="/me: no id in answer")
        return data

    async def recently_played(self, *, after_ms: int | None = None, limit: int = 50) -> RecentlyPlayed:
        """Up to 50 plays after `after_ms` (Unix ms), oldest first; store the returned `after_ms`.

        Spotify only keeps the last 50 plays here, so poll at least every couple of hours.
        """
        return await self._parsed("recently-played", "me/player/recently-played",
                                  {"limit": min(limit, 50), "after": after_ms},
                                  lambda d: parse_recently_played(d, after_ms))

    async def top_artists(self, time_range: TimeRange = "medium_term", *, limit: int = 50) -> list[SpotifyArtist]:
        return await self._parsed(
            "top-artists", "me/top/artists", {"time_range": time_range, "limit": limit},
            lambda d: [parse_artist(a, rank) for rank, a in enumerate(parse_items(d), start=1)])

    async def top_tracks(self, time_range: TimeRange = "medium_term", *, limit: int = 50) -> list[SpotifyTrack]:
        return await self._parsed(
            "top-tracks", "me/top/tracks", {"time_range": time_range, "limit": limit},
            lambda d: [parse_track(t, rank) for rank, t in enumerate(parse_items(d), start=1)])

    async def saved_tracks(self, *, offset: int = 0, limit: int = 50) -> SavedTracksPage:
        return await self._parsed("saved-tracks", "me/tracks", {"limit": min(limit, 50), "offset": offset},
                                  parse_saved_tracks)

    async def iter_saved_tracks(self, *, page_size: int = 50) -> AsyncIterator[SavedTracksPage]:
        offset: int | None = 0
        while offset is not None:
            page = await self.saved_tracks(offset=offset, limit=page_size)
            yield page
            offset = page.next_offset

    async def search_tracks(self, query: str, *, limit: int = 10) -> list[SpotifyTrack]:
        return await self._parsed(
            "search", "search", {"q": query, "type": "track", "limit": limit},
            lambda d: [parse_track(t) for t in parse_items(d.get("tracks") if isinstance(d, dict) else None)])

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
        A caller that must survive a failure between the two steps uses `new_playlist` and
        `fill_playlist` itself, remembering the id in between.
        """
        created = await self.new_playlist(name, description=description, public=public)
        return replace(created, added=await self.fill_playlist(created.id, uris))

    async def new_playlist(self, name: str, *, description: str = "", public: bool = False) -> CreatedPlaylist:
        """`POST /me/playlists`: an empty playlist in the user's library (`added` is 0)."""
        created = await self._call("create-playlist", "POST", "me/playlists",
                                   body={"name": name, "public": public, "description": description},
                                   idempotent=False)
        if not isinstance(created, dict) or not isinstance(created.get("id"), str) or not created["id"]:
            raise SourceUnavailable(SOURCE, detail="create-playlist: no id in answer")
        return CreatedPlaylist(created["id"], (created.get("external_urls") or {}).get("spotify"),
                               created.get("uri"), 0)

    async def fill_playlist(self, playlist_id: str, uris: list[str], *, replace_existing: bool = False) -> int:
        """Put `uris` into the playlist in chunks of 100; the number of URIs sent.

        `replace_existing` first replaces whatever the playlist holds with the first chunk (PUT), so
        finishing a playlist that an earlier, interrupted fill left half full (or whose last batch
        landed after the caller gave up) neither doubles tracks nor needs to know what got in.
        A playlist that no longer exists (the user deleted it) raises NotFound.
        """
        rest = uris
        if replace_existing:
            await self.replace_items(playlist_id, uris[:MAX_ITEMS_PER_ADD])
            rest = uris[MAX_ITEMS_PER_ADD:]
        for start in range(0, len(rest), MAX_ITEMS_PER_ADD):
            await self.add_items(playlist_id, rest[start:start + MAX_ITEMS_PER_ADD])
        return len(uris)

    async def add_items(self, playlist_id: str, uris: list[str]) -> None:
        """`POST /playlists/{id}/items` with at most 100 track URIs (Spotify's limit per request)."""
        if len(uris) > MAX_ITEMS_PER_ADD:
            raise ValueError(f"at most {MAX_ITEMS_PER_ADD} URIs per request")
        await self._call("add-items", "POST", f"playlists/{quote(playlist_id, safe='')}/items",
                         body={"uris": uris}, idempotent=False)

    async def replace_items(self, playlist_id: str, uris: list[str]) -> None:
        """`PUT /playlists/{id}/items`: the playlist holds exactly these (at most 100) URIs afterwards.

        Idempotent (the same request twice leaves the same playlist), so a 5xx or timeout is retried.
        """
        if len(uris) > MAX_ITEMS_PER_ADD:
            raise ValueError(f"at most {MAX_ITEMS_PER_ADD} URIs per request")
        await self._call("replace-items", "PUT", f"playlists/{quote(playlist_id, safe='')}/items",
                         body={"uris": uris}, idempotent=True)
