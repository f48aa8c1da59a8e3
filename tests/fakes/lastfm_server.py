"""A local Last.fm API (`/2.0/`) speaking the real JSON wire format, for tests and benchmarks.

Usage::

    async with LastfmFake() as fake:                 # listens on 127.0.0.1, random port
        fake.add_user("rj", scrobbles=[...])         # explicit plays, or:
        fake.add_user("big", synthetic=1_000_000)    # generated on the fly from a seed
        settings = Settings(LASTFM_API_KEY=fake.api_key, LASTFM_API_SECRET=fake.api_secret,
                            LASTFM_API_ROOT=fake.api_root)
        fake.fail_next("error", code=29)             # scripted failures (see `fail_next`)

Shapes follow ws.audioscrobbler.com `format=json` answers: numbers as strings, empty mbids as "",
`recenttracks.@attr` {user, page, perPage, totalPages, total}, the now-playing row with
`@attr.nowplaying = "true"` and no date, errors as `{"error": N, "message": ..., "links": []}` (with
HTTP 200 for some codes, as the real service sometimes does). A one-element list is rendered as a
bare object, like the real XML-to-JSON translation does.

Run standalone (for `scripts/bench sync` or manual poking)::

    python -m tests.fakes.lastfm_server --port 8901 --synthetic big=1000000
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

from aiohttp import web

from tests.fakes.local_server import LocalServer

JSON = "application/json"
ERROR_MESSAGES = {
    4: "Invalid authentication token supplied",
    6: "User not found",
    8: "Operation failed - Most likely the backend service failed. Please try again.",
    9: "Invalid session key - Please re-authenticate",
    10: "Invalid API key - You must be granted a valid key by last.fm",
    11: "Service Offline - This service is temporarily offline. Try again later.",
    13: "Invalid method signature supplied",
    14: "This token has not been authorized",
    15: "This token has expired",
    16: "There was a temporary error processing your request. Please try again",
    17: "Login: User required to be logged in",
    26: "Suspended API key - Access for your account has been suspended, please contact Last.fm",
    29: "Rate Limit Exceeded - Your IP has made too many requests in a short period",
}
#: codes the real service answers with HTTP 200 rather than 4xx/5xx (it is inconsistent; both happen)
HTTP_STATUS_FOR_CODE = {6: 400, 17: 403, 10: 403, 26: 403, 29: 429, 4: 403, 14: 403, 15: 403, 9: 403,
                        8: 500, 11: 503, 16: 503, 13: 403}

Play = tuple[int, str, str, str]  # (uts, artist, album, track)


def _image() -> list[dict[str, str]]:
    return [{"size": s, "#text": ""} for s in ("small", "medium", "large", "extralarge")]


def _date_text(uts: int) -> str:
    return datetime.fromtimestamp(uts, UTC).strftime("%d %b %Y, %H:%M")


def _url(artist: str, track: str) -> str:
    return f"https://www.last.fm/music/{artist.replace(' ', '+')}/_/{track.replace(' ', '+')}"


@dataclass
class SyntheticHistory:
    """`total` plays, one every `step_s` seconds from `start_uts`, names derived from (seed, index).

    Nothing is stored: any page is computed arithmetically, so a 1,000,000-play user costs nothing
    until asked for. Artist popularity is skewed (a cube of a uniform hash) like real listening.
    """

    total: int
    start_uts: int = 1_300_000_000
    step_s: int = 30
    seed: int = 1
    n_artists: int = 5000
    tracks_per_artist: int = 30

    def __post_init__(self) -> None:
        self._artists = [f"Artist {self.seed}-{a}" for a in range(self.n_artists)]

    def uts(self, i: int) -> int:
        return self.start_uts + i * self.step_s

    def index_range(self, from_ts: int | None, to_ts: int | None) -> tuple[int, int]:
        """Half-open [lo, hi) of play indices inside the inclusive time window."""
        lo = 0 if from_ts is None else max(0, -(-(from_ts - self.start_uts) // self.step_s))
        hi = self.total if to_ts is None else min(self.total, (to_ts - self.start_uts) // self.step_s + 1)
        return lo, max(lo, hi)

    def play(self, i: int) -> Play:
        h = ((i + 1) * 2654435761 + self.seed * 40503) & 0xFFFFFFFF
        a = int(self.n_artists * (h / 2**32) ** 3)
        t = (h >> 7) % self.tracks_per_artist
        artist = self._artists[a]
        return self.uts(i), artist, f"Album {a}-{t // 10}", f"Track {a}-{t}"


@dataclass
class FakeUser:
    name: str
    plays: list[Play] = field(default_factory=list)  # ascending uts
    synthetic: SyntheticHistory | None = None
    private: bool = False
    registered_uts: int = 1_200_000_000
    now_playing: tuple[str, str, str] | None = None  # (artist, album, track)

    @property
    def total(self) -> int:
        return self.synthetic.total if self.synthetic else len(self.plays)

    def window(self, from_ts: int | None, to_ts: int | None) -> tuple[int, int]:
        if self.synthetic:
            return self.synthetic.index_range(from_ts, to_ts)
        keys = [p[0] for p in self.plays]
        lo = 0 if from_ts is None else bisect.bisect_left(keys, from_ts)
        hi = len(keys) if to_ts is None else bisect.bisect_right(keys, to_ts)
        return lo, max(lo, hi)

    def play(self, i: int) -> Play:
        return self.synthetic.play(i) if self.synthetic else self.plays[i]


@dataclass
class Failure:
    """A scripted misbehaviour for the next matching request."""

    kind: str  # "error" | "http" | "429" | "slow" | "malformed" | "reset"
    code: int | None = None  # Last.fm error code (kind="error")
    status: int | None = None  # HTTP status (kind="http"; overrides the default for "error")
    retry_after: float | None = None
    delay: float = 0.0
    method: str | None = None
    user: str | None = None
    after: int = 0  # let this many matching requests through first


class LastfmFake(LocalServer):
    """The fake service: state (users, tokens, tags) + scripted failures + a request log."""

    def __init__(self, *, api_key: str = "test-lastfm-key", api_secret: str = "test-lastfm-secret",
                 host: str = "127.0.0.1", port: int = 0, one_item_as_object: bool = True) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.host, self.port = host, port
        self.one_item_as_object = one_item_as_object
        self.users: dict[str, FakeUser] = {}
        self.tokens: dict[str, str] = {}  # authorised web-auth token -> username
        self.sessions: dict[str, str] = {}  # session key -> username
        self.artist_tags: dict[str, list[tuple[str, int]]] = {}
        self.track_tags: dict[tuple[str, str], list[tuple[str, int]]] = {}
        self.similar: dict[str, list[tuple[str, float]]] = {}  # artist (lower) -> [(name, match)]
        #: artists (lower) whose getSimilar always fails with error 8 "Operation failed" and HTTP 500,
        #: while every other artist answers: Last.fm's backend does this for some pages for days.
        self.broken_similar: set[str] = set()
        #: Misspellings Last.fm's autocorrect fixes (lower-cased typed name -> its name for the artist);
        #: with autocorrect=1, artist.getSimilar answers for that artist and names it in @attr.
        self.corrections: dict[str, str] = {}
        self.similar_tracks: dict[tuple[str, str], list[tuple[str, str, float]]] = {}  # -> [(artist, title, match)]
        self.artist_mbids: dict[str, str] = {}  # artist (lower) -> mbid, rendered and accepted as `mbid=`
        #: artist (lower-case) -> (global listeners, playcount), answered by artist.getInfo
        self.artist_stats: dict[str, tuple[int, int]] = {}
        #: (artist, album) lower-case -> cover URL ("" = Last.fm has the album but no cover)
        self.album_covers: dict[tuple[str, str], str] = {}
        self.suspended = False
        self.failures: deque[Failure] = deque()
        self.log: list[tuple[float, str, dict[str, str]]] = []
        #: (monotonic time, method, client tag or None) of every request, for rate checks across processes
        self.request_clients: list[tuple[float, str, str | None]] = []
        self.log_limit = 100_000
        self.request_count = 0
        self.user_agents: set[str] = set()
        self._fragments: dict[tuple[str, str, str], str] = {}
        self._day_text: dict[int, str] = {}
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------------- lifecycle

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/2.0/", self._handle)
        app.router.add_route("*", "/2.0", self._handle)
        # One root per client process (`api_root_for`), so a multi-process test can tell who asked.
        app.router.add_route("*", "/c/{client}/2.0/", self._handle)
        return app

    def api_root_for(self, client: str) -> str:
        """An API root that records `client` with every request (see `request_clients`)."""
        return f"{self.base_url}/c/{client}/2.0/"


    @property
    def api_root(self) -> str:
        return f"{self.base_url}/2.0/"

    def settings_overrides(self) -> dict[str, Any]:
        """Keyword arguments for `Settings(...)` that point the real client here."""
        return {"LASTFM_API_KEY": self.api_key, "LASTFM_API_SECRET": self.api_secret,
                "LASTFM_API_ROOT": self.api_root, "LASTFM_AUTH_URL": f"{self.base_url}/api/auth/"}

    # ---------------------------------------------------------------------------- state

    def add_user(self, name: str, *, scrobbles: list[Play] | None = None, synthetic: int | None = None,
                 seed: int = 1, start_uts: int = 1_300_000_000, step_s: int = 30, private: bool = False,
                 now_playing: tuple[str, str, str] | None = None) -> FakeUser:
        user = FakeUser(name=name, plays=sorted(scrobbles or []), private=private, now_playing=now_playing)
        if synthetic is not None:
            user.synthetic = SyntheticHistory(total=synthetic, seed=seed, start_uts=start_uts, step_s=step_s)
        self.users[name.lower()] = user
        return user

    def authorise_token(self, token: str, username: str) -> None:
        """Simulate the user approving Sonance on last.fm/api/auth (the token becomes exchangeable)."""
        self.tokens[token] = username

    def fail_next(self, kind: str, *, count: int = 1, code: int | None = None, status: int | None = None,
                  retry_after: float | None = None, delay: float = 0.0, method: str | None = None,
                  user: str | None = None, after: int = 0) -> None:
        """Queue `count` failures, each consumed by the next request matching `method`/`user`.

        kinds: "error" (Last.fm error `code`, HTTP `status` or 200), "http" (bare HTTP `status`,
        HTML body), "429" (HTTP 429 + Retry-After), "slow" (answer normally after `delay` s),
        "malformed" (HTTP 200, truncated JSON), "reset" (close the connection without answering).
        `after` lets that many matching requests succeed first (an outage that starts mid-import).
        """
        for _ in range(count):
            self.failures.append(Failure(kind, code, status, retry_after, delay, method, user, after))

    def requests_for(self, method: str) -> list[tuple[float, dict[str, str]]]:
        return [(t, p) for t, m, p in self.log if m == method]

    # --------------------------------------------------------------------------- serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params: dict[str, str] = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        method = params.get("method", "")
        self.request_count += 1
        self.user_agents.add(request.headers.get("User-Agent", ""))
        if len(self.log) < self.log_limit:
            self.log.append((time.monotonic(), method, params))
            self.request_clients.append((self.log[-1][0], method, request.match_info.get("client")))

        failure = self._take_failure(method, params.get("user"))
        if failure is not None:
            response = await self._misbehave(failure, request)
            if response is not None:
                return response

        if params.get("api_key") != self.api_key:
            return self._error(10)
        if self.suspended:
            return self._error(26)
        handler = self._methods.get(method.lower())
        if handler is None:
            return self._error(3, "Invalid Method - No method with that name in this package")
        return handler(self, params)

    def _take_failure(self, method: str, user: str | None) -> Failure | None:
        matching = [f for f in self.failures
                    if (f.method is None or f.method == method) and (f.user is None or f.user == user)]
        if not matching:
            return None
        if matching[0].after > 0:
            for f in matching:  # one request went through: every queued failure is one step closer
                f.after -= 1
            return None
        self.failures.remove(matching[0])
        return matching[0]

    async def _misbehave(self, f: Failure, request: web.Request) -> web.StreamResponse | None:
        if f.kind == "slow":
            await asyncio.sleep(f.delay)
            return None
        if f.kind == "error":
            assert f.code is not None
            return self._error(f.code, status=f.status if f.status is not None else 200,
                               retry_after=f.retry_after)
        if f.kind == "429":
            headers = {"Retry-After": f"{f.retry_after:g}"} if f.retry_after is not None else {}
            return web.Response(status=429, text="Too Many Requests", headers=headers)
        if f.kind == "http":
            return web.Response(status=f.status or 500, text="<html><body>Internal Server Error</body></html>",
                                content_type="text/html")
        if f.kind == "malformed":
            return web.Response(status=200, text='{"recenttracks": {"track": [{"artist": ', content_type=JSON)
        if f.kind == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        raise ValueError(f"unknown failure kind {f.kind!r}")

    @staticmethod
    def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(body=json.dumps(payload, separators=(",", ":")).encode(), status=status,
                            content_type=JSON, headers=headers)

    def _error(self, code: int, message: str | None = None, *, status: int | None = None,
               retry_after: float | None = None) -> web.Response:
        body = {"error": code, "message": message or ERROR_MESSAGES.get(code, "Error"), "links": []}
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        return self._json(body, status=HTTP_STATUS_FOR_CODE.get(code, 400) if status is None else status,
                          headers=headers)

    def _items(self, items: list[Any]) -> Any:
        return items[0] if (self.one_item_as_object and len(items) == 1) else items

    def _user(self, params: dict[str, str]) -> FakeUser | web.Response:
        user = self.users.get(params.get("user", "").lower())
        if user is None:
            return self._error(6)
        return user

    # ------------------------------------------------------------------------- methods

    def _get_info(self, params: dict[str, str]) -> web.Response:
        user = self._user(params)
        if isinstance(user, web.Response):
            return user
        return self._json({"user": {
            "name": user.name, "realname": "", "playcount": str(user.total), "artist_count": "0",
            "track_count": "0", "album_count": "0", "country": "None", "subscriber": "0", "type": "user",
            "url": f"https://www.last.fm/user/{user.name}", "image": _image(),
            "registered": {"unixtime": str(user.registered_uts), "#text": user.registered_uts},
        }})

    def _recent_tracks(self, params: dict[str, str]) -> web.Response:
        user = self._user(params)
        if isinstance(user, web.Response):
            return user
        if user.private:
            return self._error(17)
        try:
            limit = min(200, max(1, int(params.get("limit", 50))))
            page = max(1, int(params.get("page", 1)))
            from_ts = int(params["from"]) if "from" in params else None
            to_ts = int(params["to"]) if "to" in params else None
        except ValueError:
            return self._error(6, "Invalid parameters")
        extended = params.get("extended") == "1"
        lo, hi = user.window(from_ts, to_ts)
        total = hi - lo
        total_pages = -(-total // limit)
        rows: list[dict[str, Any]] = []
        if page == 1 and user.now_playing:
            artist, album, track = user.now_playing
            row = self._row(0, artist, album, track, extended)
            del row["date"]
            row["@attr"] = {"nowplaying": "true"}
            rows.append(row)
        newest = hi - 1 - (page - 1) * limit  # rows go newest first
        indices = range(newest, max(lo, newest - limit + 1) - 1, -1)
        attr = {"user": user.name, "totalPages": str(total_pages), "page": str(page),
                "perPage": str(limit), "total": str(total)}
        if user.synthetic is not None and not extended and not rows and len(indices) > 1:
            return self._fast_synthetic_page(user.synthetic, indices, attr)
        for i in indices:
            rows.append(self._row(*user.play(i), extended))
        return self._json({"recenttracks": {"track": self._items(rows), "@attr": attr}})

    def _fast_synthetic_page(self, history: SyntheticHistory, indices: range,
                             attr: dict[str, str]) -> web.Response:
        """Same bytes as `_row` + json.dumps would give, from pre-rendered fragments (benchmarks)."""
        cache = self._fragments
        parts = []
        for i in indices:
            uts, artist, album, track = history.play(i)
            frag = cache.get((artist, album, track))
            if frag is None:
                row = self._row(0, artist, album, track, False)
                del row["date"]
                frag = cache[(artist, album, track)] = json.dumps(row, separators=(",", ":"))[:-1]
            day = uts // 86_400
            date_text = self._day_text.get(day)
            if date_text is None:
                date_text = self._day_text[day] = _date_text(day * 86_400)[:-5]
            minute = (uts % 86_400) // 60
            parts.append(f'{frag},"date":{{"uts":"{uts}","#text":"{date_text}'
                         f'{minute // 60:02d}:{minute % 60:02d}"}}}}')
        attr_json = json.dumps(attr, separators=(",", ":"))
        body = '{"recenttracks":{"track":[' + ",".join(parts) + '],"@attr":' + attr_json + "}}"
        return web.Response(body=body.encode(), content_type=JSON)

    @staticmethod
    def _row(uts: int, artist: str, album: str, track: str, extended: bool) -> dict[str, Any]:
        if extended:
            artist_obj: dict[str, Any] = {"url": f"https://www.last.fm/music/{artist.replace(' ', '+')}",
                                          "name": artist, "image": _image(), "mbid": ""}
        else:
            artist_obj = {"mbid": "", "#text": artist}
        row: dict[str, Any] = {"artist": artist_obj, "streamable": "0", "image": _image(), "mbid": "",
                               "album": {"mbid": "", "#text": album}, "name": track,
                               "url": _url(artist, track),
                               "date": {"uts": str(uts), "#text": _date_text(uts)}}
        if extended:
            row["loved"] = "0"
        return row

    def _counts(self, user: FakeUser, kind: str) -> Counter[tuple[str, ...]]:
        counts: Counter[tuple[str, ...]] = Counter()
        lo, hi = 0, user.total
        if user.synthetic:
            hi = min(hi, 20_000)  # enough for a realistic top list
        for i in range(lo, hi):
            _, artist, album, track = user.play(i)
            counts[(artist,) if kind == "artist" else (artist, album if kind == "album" else track)] += 1
        return counts

    def _top(self, params: dict[str, str], kind: str) -> web.Response:
        user = self._user(params)
        if isinstance(user, web.Response):
            return user
        if user.private:
            return self._error(17)
        if params.get("period", "overall") not in {"overall", "7day", "1month", "3month", "6month", "12month"}:
            return self._error(6, "Invalid period")
        limit = int(params.get("limit", 50))
        items = []
        for rank, (key, n) in enumerate(self._counts(user, kind).most_common(limit), start=1):
            item: dict[str, Any] = {"name": key[-1], "playcount": str(n), "mbid": "",
                                    "url": f"https://www.last.fm/music/{key[0].replace(' ', '+')}",
                                    "@attr": {"rank": str(rank)}, "image": _image()}
            if kind != "artist":
                item["artist"] = {"name": key[0], "mbid": "", "url": "https://www.last.fm/music/x"}
            items.append(item)
        outer = {"artist": "topartists", "album": "topalbums", "track": "toptracks"}[kind]
        return self._json({outer: {kind: self._items(items), "@attr": {
            "user": user.name, "page": "1", "perPage": str(limit), "totalPages": "1", "total": str(len(items))}}})

    def _artist_tags(self, params: dict[str, str]) -> web.Response:
        artist = params.get("artist", "")
        tags = self.artist_tags.get(artist.lower())
        if tags is None:
            return self._error(6, "The artist you supplied could not be found")
        return self._json({"toptags": {"tag": self._items([
            {"count": c, "name": n, "url": f"https://www.last.fm/tag/{n}"} for n, c in tags]),
            "@attr": {"artist": artist}}})

    def _track_tags(self, params: dict[str, str]) -> web.Response:
        key = (params.get("artist", "").lower(), params.get("track", "").lower())
        tags = self.track_tags.get(key)
        if tags is None:
            return self._error(6, "Track not found")
        return self._json({"toptags": {"tag": self._items([
            {"count": c, "name": n, "url": f"https://www.last.fm/tag/{n}"} for n, c in tags]),
            "@attr": {"artist": params.get("artist"), "track": params.get("track")}}})

    def _artist_param(self, params: dict[str, str]) -> str:
        """The artist a method was asked about: by `mbid`, else by name (autocorrect is case-folding)."""
        if params.get("mbid"):
            by_mbid = {m: a for a, m in self.artist_mbids.items()}
            return by_mbid.get(params["mbid"], "")
        typed = params.get("artist", "").strip().lower()
        if params.get("autocorrect") == "1" and typed in self.corrections:
            return self.corrections[typed].lower()
        return typed

    def _limit(self, params: dict[str, str]) -> int | web.Response:
        try:
            limit = int(params.get("limit", 100))
        except ValueError:
            return self._error(6, "Invalid parameters")
        return max(1, min(limit, 100))  # like the real service, at most 100 rows whatever was asked

    def _similar(self, params: dict[str, str]) -> web.Response:
        """artist.getSimilar; an unknown artist is error 6 with HTTP 404, as ws.audioscrobbler answers."""
        artist = self._artist_param(params)
        if artist in self.broken_similar:
            return self._error(8, "Operation failed - Most likely the backend service failed. Please try again.")
        similar = self.similar.get(artist)
        if similar is None:
            return self._error(6, "The artist you supplied could not be found", status=404)
        limit = self._limit(params)
        if isinstance(limit, web.Response):
            return limit
        return self._json({"similarartists": {"artist": self._items([
            {"name": n, "mbid": self.artist_mbids.get(n.lower(), ""), "match": f"{m:.6f}".rstrip("0").rstrip("."),
             "url": f"https://www.last.fm/music/{n.replace(' ', '+')}", "image": _image(), "streamable": "0"}
            for n, m in similar[:limit]]),
            "@attr": {"artist": self._corrected_name(params, artist)}}})

    def _corrected_name(self, params: dict[str, str], artist: str) -> str:
        typed = params.get("artist", "").strip().lower()
        if params.get("autocorrect") == "1" and typed in self.corrections:
            return self.corrections[typed]
        return params.get("artist", artist)

    def _similar_track(self, params: dict[str, str]) -> web.Response:
        """track.getSimilar; numbers as JSON numbers here (the real service is inconsistent)."""
        key = (params.get("artist", "").strip().lower(), params.get("track", "").strip().lower())
        similar = self.similar_tracks.get(key)
        if similar is None:
            return self._error(6, "Track not found", status=404)
        limit = self._limit(params)
        if isinstance(limit, web.Response):
            return limit
        return self._json({"similartracks": {"track": self._items([
            {"name": t, "playcount": 1000, "mbid": "", "match": m, "url": _url(a, t),
             "streamable": {"#text": "0", "fulltrack": "0"}, "duration": 200,
             "artist": {"name": a, "mbid": self.artist_mbids.get(a.lower(), ""),
                        "url": f"https://www.last.fm/music/{a.replace(' ', '+')}"}, "image": _image()}
            for a, t, m in similar[:limit]]),
            "@attr": {"artist": params.get("artist", "")}}})

    def _artist_info(self, params: dict[str, str]) -> web.Response:
        """artist.getInfo as Last.fm sends it: numbers as strings, the star placeholder as every image."""
        artist = params.get("artist", "")
        stats = self.artist_stats.get(artist.lower())
        if stats is None:
            return self._error(6, "The artist you supplied could not be found", status=404)
        listeners, playcount = stats
        star = "https://lastfm.freetls.fastly.net/i/u/{}/2a96cbd8b46e442fc41c2b86b821562f.png"
        images = [{"#text": star.format(d), "size": s} for s, d in
                  (("small", "34s"), ("medium", "64s"), ("large", "174s"), ("extralarge", "300x300"),
                   ("mega", "300x300"), ("", "300x300"))]
        url = f"https://www.last.fm/music/{quote(artist)}"
        tags = self.artist_tags.get(artist.lower(), [])
        return self._json({"artist": {
            "name": artist, "mbid": "", "url": url, "image": images, "streamable": "0", "ontour": "0",
            "stats": {"listeners": str(listeners), "playcount": str(playcount)},
            "similar": {"artist": [{"name": n, "url": f"https://www.last.fm/music/{quote(n)}", "image": images}
                                   for n, _ in self.similar.get(artist.lower(), [])[:5]]},
            "tags": {"tag": [{"name": n, "url": f"https://www.last.fm/tag/{quote(n)}"} for n, _ in tags[:5]]},
            "bio": {"links": {"link": {"#text": "", "rel": "original", "href": f"{url}/+wiki"}},
                    "published": "01 Jan 2010, 00:00", "summary": "", "content": ""}}})

    def _album_info(self, params: dict[str, str]) -> web.Response:
        """album.getInfo: cover sizes small..mega plus the unsized original, all one picture."""
        artist, album = params.get("artist", ""), params.get("album", "")
        cover = self.album_covers.get((artist.lower(), album.lower()))
        if cover is None:
            return self._error(6, "Album not found", status=404)
        sizes = (("small", "34s"), ("medium", "64s"), ("large", "174s"), ("extralarge", "300x300"),
                 ("mega", "300x300"), ("", "300x300"))
        images = [{"size": s, "#text": cover.replace("/SIZE/", f"/{d}/") if cover else ""} for s, d in sizes]
        return self._json({"album": {
            "artist": artist, "mbid": "", "tags": {"tag": []}, "playcount": "1000", "image": images,
            "tracks": {"track": []}, "url": f"https://www.last.fm/music/{quote(artist)}/{quote(album)}",
            "name": album, "listeners": "500"}})

    def _get_session(self, params: dict[str, str]) -> web.Response:
        sig = params.get("api_sig", "")
        signed = {k: v for k, v in params.items() if k not in ("api_sig", "format", "callback")}
        expected = hashlib.md5(("".join(f"{k}{signed[k]}" for k in sorted(signed)) + self.api_secret)
                               .encode("utf-8")).hexdigest()
        if sig != expected:
            return self._error(13)
        token = params.get("token", "")
        username = self.tokens.pop(token, None)  # single use
        if username is None:
            return self._error(14)
        key = hashlib.sha1(f"session:{token}".encode()).hexdigest()[:32]
        self.sessions[key] = username
        return self._json({"session": {"name": username, "key": key, "subscriber": 0}})

    _methods: ClassVar[dict[str, Any]] = {
        "user.getinfo": _get_info,
        "user.getrecenttracks": _recent_tracks,
        "user.gettopartists": lambda self, p: self._top(p, "artist"),
        "user.gettopalbums": lambda self, p: self._top(p, "album"),
        "user.gettoptracks": lambda self, p: self._top(p, "track"),
        "artist.gettoptags": _artist_tags,
        "track.gettoptags": _track_tags,
        "artist.getsimilar": _similar,
        "track.getsimilar": _similar_track,
        "artist.getinfo": _artist_info,
        "album.getinfo": _album_info,
        "auth.getsession": _get_session,
    }


async def _main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Last.fm API on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--synthetic", action="append", default=[], metavar="USER=N",
                        help="add a user with N generated scrobbles (repeatable)")
    args = parser.parse_args()
    fake = LastfmFake(port=args.port)
    for spec in args.synthetic:
        name, _, n = spec.partition("=")
        fake.add_user(name, synthetic=int(n or 1000))
    async with fake:
        print(f"fake Last.fm at {fake.api_root} (api_key={fake.api_key})", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main())
