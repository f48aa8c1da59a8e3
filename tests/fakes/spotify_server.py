"""A local Spotify Web API + Accounts service (real wire format), for tests.

Usage::

    async with SpotifyFake() as fake:
        settings = Settings(**fake.settings_overrides())
        code = fake.issue_code("alice")                  # as if alice approved on /authorize
        fake.users["alice"].recent = [...]               # see `FakeSpotifyUser`
        fake.fail_next("429", retry_after=0.2)           # scripted failures
        fake.fail_next("api", status=503, path="/items", skip=1, count=4)  # JSON error, 2nd request on
        fake.delete_playlist("alice", playlist_id)       # she deleted it in the app: now 404
        fake.expire_access_tokens("alice")               # next call gets 401 "The access token expired"
        fake.revoke("alice")                             # refresh -> 400 invalid_grant

API errors use Spotify's shape `{"error": {"status": 401, "message": "The access token expired"}}`;
token endpoint errors use the OAuth shape `{"error": "invalid_grant", "error_description": ...}`.
Strict like Spotify: the token endpoint takes only a form-encoded body with Basic client credentials,
and malformed parameters (a non-numeric limit or cursor, a negative offset, a search without `q`, a
playlist without a string name) are 400s, not answers. Scripted failures on `path="/api/token"`
apply to the token endpoint ("429" with Retry-After, "http", "slow", "malformed"). API failure kinds:
"429" (JSON error + Retry-After), "api" (Spotify's JSON error body with `status`: a 5xx from the API,
a 403), "http" (a plain-text 5xx, as from Spotify's edge proxy), "slow" (answers after `delay`, and
still performs the request even if the client gave up, as a real server does), "malformed".
`FakeSpotifyUser.created` counts the playlists each user created (deleted ones included).
`/authorize` redirects straight back to `redirect_uri?code=…&state=…` for `auto_approve_user`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.local_server import LocalServer

JSON = "application/json"


def make_track(track_id: str, name: str, artist: str, album: str = "Album", *, isrc: str | None = None,
               duration_ms: int = 200_000) -> dict[str, Any]:
    """A Spotify track object (2026 dev-mode shape: no popularity)."""
    artist_id = f"ar{abs(hash(artist)) % 10**8}"
    return {
        "id": track_id, "uri": f"spotify:track:{track_id}", "name": name, "type": "track",
        "duration_ms": duration_ms, "explicit": False, "track_number": 1, "disc_number": 1,
        "external_ids": {"isrc": isrc} if isrc else {},
        "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
        "artists": [{"id": artist_id, "name": a.strip(), "type": "artist", "uri": f"spotify:artist:{artist_id}"}
                    for a in artist.split(";")],
        "album": {"id": f"al{abs(hash(album)) % 10**8}", "name": album, "album_type": "album",
                  "release_date": "2020-01-01", "artists": [{"id": artist_id, "name": artist.split(';')[0]}]},
    }


def make_artist(artist_id: str, name: str, genres: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"id": artist_id, "name": name, "genres": list(genres), "type": "artist",
            "uri": f"spotify:artist:{artist_id}",
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"}}


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass
class FakeSpotifyUser:
    id: str
    recent: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (played_at ms, track)
    saved: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (added_at iso, track)
    top_artists: list[dict[str, Any]] = field(default_factory=list)
    top_tracks: list[dict[str, Any]] = field(default_factory=list)
    playlists: dict[str, dict[str, Any]] = field(default_factory=dict)
    allowlisted: bool = True  # dev-mode apps serve only their (max 5) approved users
    created: int = 0  # playlists ever created through the API (a deleted one still counts)


@dataclass
class Failure:
    kind: str  # "429" | "api" | "http" | "slow" | "malformed"
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    path: str | None = None  # substring of the request path
    user: str | None = None
    skip: int = 0  # let this many matching requests through before failing


#: Spotify's messages for the API errors a scripted "api" failure answers with.
API_ERRORS = {403: "Forbidden", 500: "Server error", 502: "Bad gateway", 503: "Service unavailable"}


class SpotifyFake(LocalServer):
    def __init__(self, *, client_id: str = "test-client", client_secret: str = "test-secret",
                 redirect_uri: str = "http://127.0.0.1:8080/oauth/spotify", token_ttl_s: int = 3600,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri
        self.token_ttl_s = token_ttl_s
        self.host, self.port = host, port
        self.users: dict[str, FakeSpotifyUser] = {}
        self.catalogue: list[dict[str, Any]] = []  # tracks searchable via /v1/search
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (user, scope)
        self.access: dict[str, tuple[str, float]] = {}  # access token -> (user, expires_at)
        self.refresh_tokens: dict[str, tuple[str, str]] = {}  # refresh token -> (user, scope)
        self.rotate_refresh_tokens = False
        self.auto_approve_user: str | None = None
        self.failures: deque[Failure] = deque()
        self.log: list[tuple[float, str, str, str | None]] = []  # (t, method, path, user)
        self.token_requests: list[dict[str, str]] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------------- lifecycle

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/authorize", self._authorize)
        r.add_post("/api/token", self._token)
        r.add_get("/v1/me", self._me)
        r.add_get("/v1/me/player/recently-played", self._recently_played)
        r.add_get("/v1/me/top/{kind}", self._top)
        r.add_get("/v1/me/tracks", self._saved)
        r.add_post("/v1/me/playlists", self._create_playlist)
        r.add_post("/v1/playlists/{id}/items", self._add_items)
        r.add_put("/v1/playlists/{id}/items", self._replace_items)
        r.add_get("/v1/search", self._search)
        return app


    def settings_overrides(self) -> dict[str, Any]:
        return {"SPOTIFY_CLIENT_ID": self.client_id, "SPOTIFY_CLIENT_SECRET": self.client_secret,
                "SPOTIFY_REDIRECT_URI": self.redirect_uri, "SPOTIFY_API_BASE": f"{self.base_url}/v1/",
                "SPOTIFY_ACCOUNTS_BASE": self.base_url}

    # ---------------------------------------------------------------------------- state

    def add_user(self, user_id: str, **kwargs: Any) -> FakeSpotifyUser:
        user = FakeSpotifyUser(user_id, **kwargs)
        self.users[user_id] = user
        return user

    def issue_code(self, user_id: str, scope: str = "user-read-recently-played user-top-read") -> str:
        self.users.setdefault(user_id, FakeSpotifyUser(user_id))
        code = secrets.token_urlsafe(16)
        self.codes[code] = (user_id, scope)
        return code

    def grant(self, user_id: str, *, expires_in: float | None = None, scope: str = "") -> dict[str, Any]:
        """Mint tokens directly (skipping the code step); returns the token endpoint JSON."""
        self.users.setdefault(user_id, FakeSpotifyUser(user_id))
        access, refresh = f"AT{next(self._ids)}-{secrets.token_hex(4)}", f"RT-{secrets.token_hex(8)}"
        ttl = self.token_ttl_s if expires_in is None else expires_in
        self.access[access] = (user_id, time.time() + ttl)
        self.refresh_tokens[refresh] = (user_id, scope)
        return {"access_token": access, "token_type": "Bearer", "expires_in": int(ttl),
                "refresh_token": refresh, "scope": scope}

    def expire_access_tokens(self, user_id: str) -> None:
        for token, (uid, _) in list(self.access.items()):
            if uid == user_id:
                self.access[token] = (uid, time.time() - 1)

    def revoke(self, user_id: str) -> None:
        """The user removed the app: every access and refresh token stops working."""
        self.access = {t: v for t, v in self.access.items() if v[0] != user_id}
        self.refresh_tokens = {t: v for t, v in self.refresh_tokens.items() if v[0] != user_id}

    def fail_next(self, kind: str, *, count: int = 1, status: int = 500, retry_after: float | None = None,
                  delay: float = 0.0, path: str | None = None, user: str | None = None, skip: int = 0) -> None:
        """Script `count` failures of the next matching requests, after letting `skip` of them through."""
        for n in range(count):
            self.failures.append(Failure(kind, status, retry_after, delay, path, user, skip if n == 0 else 0))

    def delete_playlist(self, user_id: str, playlist_id: str) -> None:
        """The user deleted the playlist in the Spotify app: calls on it answer 404 from now on."""
        del self.users[user_id].playlists[playlist_id]

    # --------------------------------------------------------------------------- helpers

    @staticmethod
    def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(body=json.dumps(payload).encode(), status=status, content_type=JSON,
                            headers=headers)

    def _api_error(self, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return self._json({"error": {"status": status, "message": message}}, status, headers)

    async def _guard(self, request: web.Request) -> FakeSpotifyUser | web.Response:
        """Auth + scripted failures for API routes (the order Spotify applies them doesn't matter here)."""
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        owner = self.access.get(token)
        self.log.append((time.monotonic(), request.method, request.path, owner[0] if owner else None))
        for f in list(self.failures):
            if (f.path is None or f.path in request.path) and (f.user is None or (owner and owner[0] == f.user)):
                if f.skip:
                    f.skip -= 1
                    break
                self.failures.remove(f)
                if f.kind == "slow":
                    await request.read()  # received in full: it is carried out even if the client gives up
                    await asyncio.sleep(f.delay)
                    break
                if f.kind == "429":
                    headers = {"Retry-After": f"{f.retry_after:g}"} if f.retry_after is not None else {}
                    return self._api_error(429, "API rate limit exceeded", headers)
                if f.kind == "api":
                    return self._api_error(f.status, API_ERRORS.get(f.status, "Request failed"))
                if f.kind == "http":
                    return web.Response(status=f.status, text="upstream connect error", content_type="text/plain")
                if f.kind == "malformed":
                    return web.Response(status=200, text='{"items": [{"track": ', content_type=JSON)
        if not auth.startswith("Bearer ") or owner is None:
            return self._api_error(401, "Invalid access token")
        user_id, expires_at = owner
        if time.time() >= expires_at:
            return self._api_error(401, "The access token expired")
        user = self.users[user_id]
        if not user.allowlisted:
            return self._api_error(403, "User not registered in the Developer Dashboard")
        return user

    def _page(self, request: web.Request, items: list[Any], *, max_limit: int = 50) -> dict[str, Any] | web.Response:
        try:
            limit = int(request.query.get("limit", 20))
            offset = int(request.query.get("offset", 0))
        except ValueError:
            return self._api_error(400, "Invalid limit")
        if offset < 0:
            return self._api_error(400, "Invalid offset")
        if not 1 <= limit <= max_limit:
            return self._api_error(400, "Invalid limit")
        chunk = items[offset:offset + limit]
        nxt = offset + limit < len(items)
        href = f"{self.base_url}{request.path}"
        return {"href": href, "items": chunk, "limit": limit, "offset": offset, "total": len(items),
                "next": f"{href}?offset={offset + limit}&limit={limit}" if nxt else None,
                "previous": None}

    # ---------------------------------------------------------------------------- accounts

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return web.Response(status=400, text="INVALID_CLIENT: Invalid client")
        if q.get("redirect_uri") != self.redirect_uri:
            return web.Response(status=400, text="INVALID_CLIENT: Invalid redirect URI")
        if self.auto_approve_user is None:
            return web.Response(text="<html><body>Log in to Spotify</body></html>", content_type="text/html")
        code = self.issue_code(self.auto_approve_user, q.get("scope", ""))
        state = f"&state={q['state']}" if "state" in q else ""
        raise web.HTTPSeeOther(f"{self.redirect_uri}?code={code}{state}")

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()} \
            if request.content_type == "application/x-www-form-urlencoded" else {}
        self.token_requests.append(form)
        for f in list(self.failures):
            if f.path == "/api/token":
                self.failures.remove(f)
                if f.kind == "slow":
                    await asyncio.sleep(f.delay)
                    break
                if f.kind == "429":
                    headers = {"Retry-After": f"{f.retry_after:g}"} if f.retry_after is not None else {}
                    return web.Response(status=429, text="Too many requests", headers=headers)
                if f.kind == "malformed":
                    return web.Response(status=200, text='{"access_token": ', content_type=JSON)
                return web.Response(status=f.status, text="Service Unavailable")
        if request.content_type != "application/x-www-form-urlencoded":
            return self._json({"error": "unsupported_grant_type",
                               "error_description": "grant_type parameter is missing"}, 400)
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return self._json({"error": "invalid_client", "error_description": "Invalid client"}, 400)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            if form.get("redirect_uri") != self.redirect_uri:
                return self._json({"error": "invalid_grant", "error_description": "Invalid redirect URI"}, 400)
            found = self.codes.pop(form.get("code", ""), None)  # single use
            if found is None:
                return self._json({"error": "invalid_grant", "error_description": "Invalid authorization code"}, 400)
            user_id, scope = found
            return self._json(self.grant(user_id, scope=scope))
        if grant == "refresh_token":
            found = self.refresh_tokens.get(form.get("refresh_token", ""))
            if found is None:
                return self._json({"error": "invalid_grant", "error_description": "Refresh token revoked"}, 400)
            user_id, scope = found
            tokens = self.grant(user_id, scope=scope)
            if not self.rotate_refresh_tokens:  # Spotify usually omits refresh_token on refresh
                del self.refresh_tokens[tokens.pop("refresh_token")]
            return self._json(tokens)
        return self._json({"error": "unsupported_grant_type", "error_description": grant}, 400)

    # --------------------------------------------------------------------------------- API

    async def _me(self, request: web.Request) -> web.Response:
        user = await self._guard(request)
        if isinstance(user, web.Response):
            return user
        return self._json({"id": user.id, "display_name": user.id, "type": "user", "uri": f"spotify:user:{user.id}"})

    async def _recently_played(self, request: web.Request) -> web.Response:
        user = await self._guard(request)
        if isinstance(user, web.Response):
            return user
        q = request.query
        try:
            limit = int(q.get("limit", 20))
            cursor = int(q.get("after") or q.get("before") or 0)
        except ValueError:
            return self._api_error(400, "Invalid limit or cursor")
        if not 1 <= limit <= 50:
            return self._api_error(400, "Invalid limit")
        if "after" in q and "before" in q:
            return self._api_error(400, "Only one of after or before may be specified")
        plays = sorted(user.recent, key=lambda p: -p[0])[:50]  # Spotify keeps the last 50 only
        if "after" in q:
            plays = [p for p in plays if p[0] > cursor][-limit:]
        elif "before" in q:
            plays = [p for p in plays if p[0] < cursor][:limit]
        else:
            plays = plays[:limit]
        items = [{"track": t, "played_at": iso_ms(ms), "context": None} for ms, t in plays]
        cursors = {"after": str(plays[0][0]), "before": str(plays[-1][0])} if plays else None
        return self._json({"items": items, "next": None, "cursors": cursors, "limit": limit,
                           "href": f"{self.base_url}{request.path_qs}"})

    async def _top(self, request: web.Request) -> web.Response:
        user = await self._guard(request)
        if isinstance(user, web.Response):
            return user
        if request.query.get("time_range", "medium_term") not in ("short_term", "medium_term", "long_term"):
            return self._api_error(400, "Invalid time range")
        kind = request.match_info["kind"]
        items = user.top_artists if kind == "artists" else user.top_tracks if kind == "tracks" else None
        if items is None:
            return self._api_error(404, "Service not found")
        page = self._page(request, items)
        return page if isinstance(page, web.Response) else self._json(page)

    async def _saved(self, request: web.Request) -> web.Response:
        user = await self._guard(request)
        if isinstance(user, web.Response):
            return user
        page = self._page(request, [{"added_at": at, "track": t} for at, t in user.saved])
        return page if isinstance(page, web.Response) else self._json(page)

    async def _create_playlist(self, request: web.Request) -> web.Response:
        user = await self._guard(request)
        if isinstance(user, web.Response):
            return user
        try:
            body = await request.json()
        except ValueError:
            return self._api_error(400, "Error parsing JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            return self._api_error(400, "Missing required field: name")
        if not isinstance(body.get("public", True), bool) or not isinstance(body.get("description", ""), str):
            return self._api_error(400, "Invalid field type")
        pid = f"pl{next(self._ids)}"
        playlist = {"id": pid, "name": body["name"], "public": bool(body.get("public", True)),
                    "description": body.get("description", ""), "uri": f"spotify:playlist:{pid}",
                    "external_urls": {"spotify": f"https://open.spotify.com/playlist/{pid}"},
                    "owner": {"id": user.id}, "items": []}
        user.playlists[pid] = playlist
        user.created += 1
        return self._json({k: v for k, v in playlist.items() if k != "items"}, 201)

    async def _writable_playlist(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The caller's playlist named in the path, or Spotify's refusal: 401 from the guard, 403
        when it is another user's (it exists, the caller may not change it), 404 when nobody has it."""
        user = await self._guard(request)
        if isinstance(user, web.Response):
            return user
        playlist_id = request.match_info["id"]
        playlist = user.playlists.get(playlist_id)
        if playlist is not None:
            return playlist
        if any(playlist_id in other.playlists for other in self.users.values()):
            return self._api_error(403, "You cannot add tracks to a playlist you don't own.")
        return self._api_error(404, "Not found.")

    def _bad_uris(self, uris: list[Any], verb: str) -> web.Response | None:
        """Spotify's 400 for more than 100 URIs or one that is not a track URI (None: fine)."""
        if len(uris) > 100:
            return self._api_error(400, f"You can {verb} a maximum of 100 tracks per request.")
        if not all(isinstance(u, str) and u.startswith("spotify:track:") for u in uris):
            return self._api_error(400, "Invalid track uri")
        return None

    async def _add_items(self, request: web.Request) -> web.Response:
        playlist = await self._writable_playlist(request)
        if isinstance(playlist, web.Response):
            return playlist
        try:
            body = await request.json()
        except ValueError:
            return self._api_error(400, "Error parsing JSON.")
        uris = body.get("uris") if isinstance(body, dict) else body  # the documented object, or a bare array
        if not isinstance(uris, list) or not uris:
            return self._api_error(400, "No uris provided")
        if (refused := self._bad_uris(uris, "add")) is not None:
            return refused
        playlist["items"].extend(uris)
        return self._json({"snapshot_id": secrets.token_hex(8)}, 201)

    async def _replace_items(self, request: web.Request) -> web.Response:
        """`PUT /playlists/{id}/items` with `uris` (body or comma-separated query): the playlist's items
        become exactly these (an empty list clears it). Reordering (`range_start`…) is not faked."""
        playlist = await self._writable_playlist(request)
        if isinstance(playlist, web.Response):
            return playlist
        body: Any = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return self._api_error(400, "Error parsing JSON.")
        if not isinstance(body, dict):
            return self._api_error(400, "Invalid request body")
        if "range_start" in body or "insert_before" in body:
            return self._api_error(400, "Reordering is not supported by this fake")
        uris = body.get("uris")
        if uris is None and "uris" in request.query:
            uris = [u for u in request.query["uris"].split(",") if u]
        if not isinstance(uris, list):
            return self._api_error(400, "No uris provided")
        if (refused := self._bad_uris(uris, "set")) is not None:
            return refused
        playlist["items"] = list(uris)
        return self._json({"snapshot_id": secrets.token_hex(8)})

    async def _search(self, request: web.Request) -> web.Response:
        user = await self._guard(request)
        if isinstance(user, web.Response):
            return user
        q = request.query.get("q", "").lower()
        if not q.strip():
            return self._api_error(400, "No search query")
        if request.query.get("type") != "track":
            return self._api_error(400, "Unsupported type")
        words = [w.strip('"') for w in q.replace("track:", " ").replace("artist:", " ").split() if w.strip('"')]

        def hit(t: dict[str, Any]) -> bool:
            text = (t["name"] + " " + " ".join(a["name"] for a in t["artists"])).lower()
            return all(w in text for w in words)

        page = self._page(request, [t for t in self.catalogue if hit(t)])
        return page if isinstance(page, web.Response) else self._json({"tracks": page})
