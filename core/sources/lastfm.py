"""Last.fm client: the primary listening source.

Built directly on aiohttp (`format=json`) rather than pylast, because pylast is synchronous, POSTs
and parses XML on every call and hard-codes HTTPS: too slow for a million-scrobble import and awkward
to point at a local fake. Request signing for `auth.getSession` is the documented md5 recipe,
implemented in `sign()` (a test checks it against pylast's own `_Request._get_signature`).

Error mapping (Last.fm error codes, which may arrive with HTTP 200 or 4xx alike):
- 6 on a user method -> AccountProblem("lastfm_user_not_found"); on artist/track methods -> NotFound
- 17 (login required: private profile) -> AccountProblem("lastfm_private")
- 4/14/15 on auth.getSession (bad/unauthorised/expired token) -> AccountProblem("lastfm_token_invalid")
- 9 (invalid session key) -> AccountProblem("lastfm_session_revoked")
- 8, 11, 16, 29, HTTP 429/5xx, timeouts, connection errors, malformed bodies -> retried with backoff
  (honouring Retry-After), then SourceUnavailable("lastfm")
- 10 (invalid key), 26 (suspended key) and anything unknown -> SourceUnavailable("lastfm") at once
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import aiohttp
import orjson

from core.domain import Kind
from core.errors import AccountProblem, NotFound, SourceUnavailable
from core.sources.http import RateLimiter, Retryable, RetryPolicy, retry_after_from, user_agent, with_retries
from core.sources.lastfm_history import HistoryCursor, HistoryPage, iterate_history
from core.sources.lastfm_models import (
    AlbumInfo,
    ArtistInfo,
    LastfmSession,
    LastfmUser,
    MalformedResponse,
    RecentTracksPage,
    SimilarArtists,
    SimilarTrack,
    Tag,
    TopItem,
    parse_album_info,
    parse_artist_info,
    parse_recent_tracks,
    parse_session,
    parse_similar_artists,
    parse_similar_tracks,
    parse_top,
    parse_top_tags,
    parse_user_info,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from core.config import Settings

log = logging.getLogger(__name__)

SOURCE = "lastfm"
Period = Literal["overall", "7day", "1month", "3month", "6month", "12month"]
PERIODS: frozenset[str] = frozenset({"overall", "7day", "1month", "3month", "6month", "12month"})
MAX_PAGE_SIZE = 200
#: Last.fm's ceiling for `limit` on artist.getSimilar / track.getSimilar.
MAX_SIMILAR = 100

TRANSIENT_CODES = frozenset({8, 11, 16, 29})
TOKEN_CODES = frozenset({4, 14, 15})


def sign(params: Mapping[str, str], secret: str) -> str:
    """Last.fm's api_sig: md5 over params sorted by name, name+value concatenated, then the secret.

    `format` and `callback` are not part of the signature (documented exception).
    """
    text = "".join(f"{k}{params[k]}" for k in sorted(params) if k not in ("format", "callback"))
    return hashlib.md5((text + secret).encode("utf-8")).hexdigest()


class LastfmClient:
    """Async Last.fm API client; one instance per process, shared by all users.

    `session` and `limiter` are created once by the composition root (`build_services`):
    the limiter is the app-wide budget of `settings.lastfm_requests_per_second`.
    """

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        limiter: RateLimiter,
        *,
        retry: RetryPolicy | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        settings.require("lastfm_api_key")
        assert settings.lastfm_api_key is not None
        self._key = settings.lastfm_api_key.get_secret_value()
        self._secret = settings.lastfm_api_secret.get_secret_value() if settings.lastfm_api_secret else None
        self._root = settings.lastfm_api_root
        self._auth_url = settings.lastfm_auth_url
        self._session = session
        self._limiter = limiter
        self._retry = retry or RetryPolicy()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = {"User-Agent": user_agent(settings), "Accept": "application/json"}

    # ---------------------------------------------------------------------------------- transport

    async def call(self, method: str, params: Mapping[str, Any], *, user: str | None = None,
                   signed: bool = False) -> Any:
        """One API method with retries; returns the decoded JSON body. `user` selects error mapping."""
        query: dict[str, str] = {"method": method, "api_key": self._key}
        query.update({k: str(v) for k, v in params.items() if v is not None})
        if signed:
            if not self._secret:
                raise SourceUnavailable(SOURCE, detail="LASTFM_API_SECRET is required for signed calls")
            query["api_sig"] = sign(query, self._secret)
        query["format"] = "json"

        async def attempt() -> Any:
            await self._limiter.acquire()
            try:
                if signed:  # tokens and signatures stay out of URLs (and so out of access logs)
                    request = self._session.post(self._root, data=query, headers=self._headers,
                                                 timeout=self._timeout)
                else:
                    request = self._session.get(self._root, params=query, headers=self._headers,
                                                timeout=self._timeout)
                async with request as resp:
                    body = await resp.read()
                    return self._decode(method, resp.status, resp.headers, body, user)
            except TimeoutError:
                raise Retryable(f"{method}: timed out") from None
            except aiohttp.ClientError as exc:
                raise Retryable(f"{method}: {type(exc).__name__}: {exc}") from None

        return await with_retries(attempt, source=SOURCE, policy=self._retry)

    def _decode(self, method: str, status: int, headers: Mapping[str, str], body: bytes,
                user: str | None) -> Any:
        if status == 429:
            raise Retryable(f"{method}: HTTP 429", retry_after=retry_after_from(headers), rate_limited=True)
        try:
            data = orjson.loads(body)
        except ValueError:
            if status >= 500:
                raise Retryable(f"{method}: HTTP {status}", retry_after=retry_after_from(headers)) from None
            raise Retryable(f"{method}: malformed body (HTTP {status})") from None
        if isinstance(data, dict) and "error" in data:
            self._raise_api_error(method, data, headers, user)
        if status >= 500:
            raise Retryable(f"{method}: HTTP {status}", retry_after=retry_after_from(headers))
        if status >= 400:
            raise SourceUnavailable(SOURCE, detail=f"{method}: unexpected HTTP {status}")
        return data

    def _raise_api_error(self, method: str, data: dict[str, Any], headers: Mapping[str, str],
                         user: str | None) -> None:
        try:
            code = int(data["error"])
        except (TypeError, ValueError):
            raise Retryable(f"{method}: malformed error body") from None
        message = str(data.get("message", ""))
        detail = f"{method}: error {code}: {message}"
        if code in TRANSIENT_CODES:
            raise Retryable(detail, retry_after=retry_after_from(headers), rate_limited=code == 29)
        if code == 6:
            if user is not None:
                raise AccountProblem("lastfm_user_not_found",
                                     f"I couldn't find a Last.fm user called {user!r}.")
            raise NotFound(detail=detail)
        if code == 17:
            raise AccountProblem("lastfm_private",
                                 "That Last.fm profile hides its listening history. In Last.fm's privacy "
                                 "settings, untick 'Hide recent listening information', then try again.")
        if code in TOKEN_CODES:
            raise AccountProblem("lastfm_token_invalid",
                                 "That Last.fm authorisation has expired or was not approved. "
                                 "Please run /link lastfm again.")
        if code == 9:
            raise AccountProblem("lastfm_session_revoked",
                                 "Sonance's access to your Last.fm account was revoked. Please link it again.")
        raise SourceUnavailable(SOURCE, detail=detail)  # 10, 26 and anything unknown: not retryable

    async def _parsed(self, method: str, params: Mapping[str, Any], parser: Any, *,
                      user: str | None = None, signed: bool = False) -> Any:
        """Call + parse, where a wrong-shaped body counts as a transient failure (retried)."""

        async def once() -> Any:
            data = await self.call(method, params, user=user, signed=signed)
            return parser(data)

        try:
            return await once()
        except MalformedResponse as exc:
            log.warning("lastfm %s: malformed body (%s); retrying once", method, exc)
            await asyncio.sleep(self._retry.backoff(1))
            try:
                return await once()
            except MalformedResponse as exc2:
                raise SourceUnavailable(SOURCE, detail=f"{method}: {exc2}") from None

    # ----------------------------------------------------------------------------------- methods

    async def user_info(self, user: str) -> LastfmUser:
        """user.getInfo: whether the user exists, their playcount and registration date."""
        return await self._parsed("user.getInfo", {"user": user}, parse_user_info, user=user)

    async def recent_tracks(self, user: str, *, from_ts: int | None = None, to_ts: int | None = None,
                            page: int = 1, limit: int = MAX_PAGE_SIZE, extended: bool = False
                            ) -> RecentTracksPage:
        """One page of user.getRecentTracks (newest first, now-playing row split off)."""
        params = {"user": user, "page": page, "limit": min(limit, MAX_PAGE_SIZE),
                  "from": from_ts, "to": to_ts, "extended": 1 if extended else None}
        return await self._parsed("user.getRecentTracks", params, parse_recent_tracks, user=user)

    def history(self, cursor: HistoryCursor, *, prefetch: int = 2) -> AsyncIterator[HistoryPage]:
        """Page through the window described by `cursor` (see `lastfm_history` for the contract)."""
        return iterate_history(self, cursor, prefetch=prefetch)

    async def top(self, user: str, kind: Kind, period: Period = "overall", *, limit: int = 50,
                  page: int = 1) -> list[TopItem]:
        if period not in PERIODS:
            raise ValueError(f"unknown period {period!r}")
        method = {Kind.ARTIST: "user.getTopArtists", Kind.ALBUM: "user.getTopAlbums",
                  Kind.TRACK: "user.getTopTracks"}[kind]
        params = {"user": user, "period": period, "limit": limit, "page": page}
        return await self._parsed(method, params, lambda d: parse_top(d, kind), user=user)

    async def top_artists(self, user: str, period: Period = "overall", *, limit: int = 50) -> list[TopItem]:
        return await self.top(user, Kind.ARTIST, period, limit=limit)

    async def top_albums(self, user: str, period: Period = "overall", *, limit: int = 50) -> list[TopItem]:
        return await self.top(user, Kind.ALBUM, period, limit=limit)

    async def top_tracks(self, user: str, period: Period = "overall", *, limit: int = 50) -> list[TopItem]:
        return await self.top(user, Kind.TRACK, period, limit=limit)

    async def artist_top_tags(self, artist: str, *, mbid: str | None = None) -> list[Tag]:
        """artist.getTopTags (autocorrect on, so "the beatles" finds The Beatles). Unknown -> NotFound."""
        params = {"mbid": mbid} if mbid else {"artist": artist, "autocorrect": 1}
        return await self._parsed("artist.getTopTags", params, parse_top_tags)

    async def track_top_tags(self, artist: str, track: str, *, mbid: str | None = None) -> list[Tag]:
        params = {"mbid": mbid} if mbid else {"artist": artist, "track": track, "autocorrect": 1}
        return await self._parsed("track.getTopTags", params, parse_top_tags)

    async def artist_similar(self, artist: str, *, limit: int = MAX_SIMILAR, mbid: str | None = None
                             ) -> SimilarArtists:
        """artist.getSimilar (autocorrect on), best match first. Unknown artist (error 6) -> NotFound."""
        params: dict[str, Any] = {"mbid": mbid} if mbid else {"artist": artist, "autocorrect": 1}
        params["limit"] = min(limit, MAX_SIMILAR)
        return await self._parsed("artist.getSimilar", params, parse_similar_artists)

    async def track_similar(self, artist: str, track: str, *, limit: int = MAX_SIMILAR, mbid: str | None = None
                            ) -> list[SimilarTrack]:
        """track.getSimilar (autocorrect on), best match first. Unknown track (error 6) -> NotFound."""
        params: dict[str, Any] = {"mbid": mbid} if mbid else {"artist": artist, "track": track, "autocorrect": 1}
        params["limit"] = min(limit, MAX_SIMILAR)
        return await self._parsed("track.getSimilar", params, parse_similar_tracks)

    async def artist_info(self, artist: str, *, mbid: str | None = None) -> ArtistInfo:
        """artist.getInfo: global listeners and playcount (all of Last.fm). Unknown -> NotFound."""
        params = {"mbid": mbid} if mbid else {"artist": artist, "autocorrect": 1}
        return await self._parsed("artist.getInfo", params, parse_artist_info)

    async def album_info(self, artist: str, album: str, *, mbid: str | None = None) -> AlbumInfo:
        """album.getInfo: the album's cover art (largest image). Unknown -> NotFound."""
        params = {"mbid": mbid} if mbid else {"artist": artist, "album": album, "autocorrect": 1}
        return await self._parsed("album.getInfo", params, parse_album_info)

    # ---------------------------------------------------------------------------------- web auth

    def auth_url(self, callback: str) -> str:
        """Where to send a user to prove they own a Last.fm account; Last.fm returns `?token=`."""
        return f"{self._auth_url}?{urlencode({'api_key': self._key, 'cb': callback})}"

    async def get_session(self, token: str) -> LastfmSession:
        """auth.getSession (signed): exchange the single-use web-auth token for a session key."""
        return await self._parsed("auth.getSession", {"token": token}, parse_session, signed=True)
