"""The real Spotify client (aiohttp, the shared session and limiter) against the local Spotify API +
Accounts fake: OAuth code flow, refresh, retries and error mapping."""

from __future__ import annotations

import asyncio
import threading
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from core.errors import AccountProblem, NotFound, SourceUnavailable
from core.sources.http import RateLimiter
from core.sources.oauth_state import InMemoryNonceStore, OAuthStateSigner
from core.sources.spotify import SpotifyAuth, SpotifyClient, SpotifyUserApi, TokenSet
from tests.fakes.spotify_server import SpotifyFake, make_artist, make_track
from tests.sources.conftest import FAST_RETRY, make_settings


@pytest.fixture
def spotify(spotify_fake: SpotifyFake, http: aiohttp.ClientSession) -> SpotifyClient:
    return SpotifyClient(make_settings(**spotify_fake.settings_overrides()), http, RateLimiter(500, burst=20),
                         retry=FAST_RETRY, timeout_s=1.0)


def tokens_for(fake: SpotifyFake, user: str, *, expires_in: float = 3600) -> TokenSet:
    info = fake.grant(user, expires_in=expires_in)
    return TokenSet(info["access_token"], info["refresh_token"], time.time() + expires_in, info["scope"])


def api(spotify: SpotifyClient, fake: SpotifyFake, user: str, saved: list[TokenSet] | None = None,
        **kw: float) -> SpotifyUserApi:
    async def on_refresh(tokens: TokenSet) -> None:
        if saved is not None:
            saved.append(tokens)

    return spotify.for_user(tokens_for(fake, user, **kw), on_refresh)


async def test_authorize_url_and_full_code_flow(spotify: SpotifyClient, spotify_fake: SpotifyFake,
                                                http: aiohttp.ClientSession) -> None:
    signer = OAuthStateSigner("s3cret", InMemoryNonceStore())
    state = signer.issue(424242, "spotify")
    url = spotify.auth.authorize_url(state)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{spotify_fake.base_url}/authorize"
    assert query["client_id"] == ["test-client"] and query["state"] == [state]
    assert "user-read-recently-played" in query["scope"][0]
    # the endpoints belong to the instance: a client built from default settings still goes to Spotify
    # (no global state leaks between tests)
    real = SpotifyAuth(make_settings(SPOTIFY_CLIENT_ID="x", SPOTIFY_CLIENT_SECRET="y",
                                     SPOTIFY_REDIRECT_URI="https://bot.example/cb"), http)
    assert real.authorize_url("s").startswith("https://accounts.spotify.com/authorize?")

    spotify_fake.auto_approve_user = "alice"
    async with http.get(url, allow_redirects=False) as resp:
        assert resp.status == 303
        callback = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert await signer.verify(callback["state"][0], "spotify") == 424242
    tokens = await spotify.auth.exchange_code(callback["code"][0])
    assert tokens.access_token and tokens.refresh_token and tokens.expires_at > time.time() + 3000
    assert "user-top-read" in tokens.scope or tokens.scope == query["scope"][0]

    with pytest.raises(AccountProblem) as err:  # codes are single use
        await spotify.auth.exchange_code(callback["code"][0])
    assert err.value.reason == "spotify_code_invalid"


async def test_recently_played_with_after_cursor(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    user = spotify_fake.add_user("alice")
    base = 1_700_000_000_000
    user.recent = [(base + i * 240_000, make_track(f"t{i}", f"Song {i}", "Band", "LP")) for i in range(5)]
    me = api(spotify, spotify_fake, "alice")
    batch = await me.recently_played()
    assert [p.track.name for p in batch.plays] == [f"Song {i}" for i in range(5)]  # oldest first
    assert batch.after_ms == base + 4 * 240_000
    assert batch.plays[0].played_at.tzinfo is not None and batch.plays[0].played_ms == base
    newer = await me.recently_played(after_ms=base + 2 * 240_000)
    assert [p.track.name for p in newer.plays] == ["Song 3", "Song 4"]
    nothing = await me.recently_played(after_ms=batch.after_ms)
    assert nothing.plays == [] and nothing.after_ms == batch.after_ms


async def test_expired_token_is_refreshed_once_and_persisted(spotify: SpotifyClient,
                                                             spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice").top_artists = [make_artist("a1", "Band", ("indie",))]
    saved: list[TokenSet] = []
    me = api(spotify, spotify_fake, "alice", saved)
    old = me.tokens
    spotify_fake.expire_access_tokens("alice")  # Spotify will answer 401 "The access token expired"
    artists = await me.top_artists("short_term")
    assert [a.name for a in artists] == ["Band"] and artists[0].genres == ("indie",)
    assert len(saved) == 1 and saved[0].access_token != old.access_token
    assert saved[0].refresh_token == old.refresh_token  # Spotify omitted it: the old one is kept
    assert [r["grant_type"] for r in spotify_fake.token_requests] == ["refresh_token"]


async def test_token_close_to_expiry_is_refreshed_before_the_call(spotify: SpotifyClient,
                                                                  spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice")
    saved: list[TokenSet] = []
    me = api(spotify, spotify_fake, "alice", saved, expires_in=30)  # < 60 s margin
    await me.recently_played()
    assert len(saved) == 1
    assert all(owner is not None for _, _, _, owner in spotify_fake.log)  # no 401 round trip


async def test_revoked_access_is_an_account_problem(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice")
    me = api(spotify, spotify_fake, "alice")
    spotify_fake.revoke("alice")
    with pytest.raises(AccountProblem) as err:
        await me.recently_played()
    assert err.value.reason == "spotify_token_revoked"
    assert len(spotify_fake.token_requests) == 1  # exactly one refresh attempt


async def test_not_allowlisted_user_in_dev_mode(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("eve", allowlisted=False)
    with pytest.raises(AccountProblem) as err:
        await api(spotify, spotify_fake, "eve").recently_played()
    assert err.value.reason == "spotify_forbidden"


async def test_429_retry_after_honoured_while_another_user_proceeds(spotify: SpotifyClient,
                                                                    spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice")
    spotify_fake.add_user("bob")
    alice, bob = api(spotify, spotify_fake, "alice"), api(spotify, spotify_fake, "bob")
    spotify_fake.fail_next("429", retry_after=0.5, user="alice")
    start = time.monotonic()
    finished: dict[str, float] = {}

    async def run(name: str, me: SpotifyUserApi) -> None:
        await me.recently_played()
        finished[name] = time.monotonic() - start

    task = asyncio.create_task(run("alice", alice))
    await asyncio.sleep(0.1)
    await run("bob", bob)
    await task
    assert finished["alice"] >= 0.5
    assert finished["bob"] < 0.45


async def test_5xx_then_success_and_persistent_5xx(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice").top_tracks = [make_track("t1", "Song", "Band")]
    me = api(spotify, spotify_fake, "alice")
    spotify_fake.fail_next("http", status=502)
    assert [t.name for t in await me.top_tracks()] == ["Song"]
    spotify_fake.fail_next("http", status=503, count=5)
    with pytest.raises(SourceUnavailable):
        await me.top_tracks()


async def test_slow_answer_hits_the_timeout(spotify_fake: SpotifyFake, http: aiohttp.ClientSession) -> None:
    spotify_fake.add_user("alice")
    client = SpotifyClient(make_settings(**spotify_fake.settings_overrides()), http, RateLimiter(100),
                           retry=FAST_RETRY, timeout_s=0.2)
    spotify_fake.fail_next("slow", delay=0.6, count=3)
    start = time.monotonic()
    with pytest.raises(SourceUnavailable) as err:
        await api(client, spotify_fake, "alice").recently_played()
    assert "Timeout" in (err.value.detail or "")
    assert time.monotonic() - start < 2.5


async def test_malformed_body(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice")
    spotify_fake.fail_next("malformed")
    with pytest.raises(SourceUnavailable):
        await api(spotify, spotify_fake, "alice").recently_played()


async def test_saved_tracks_paging(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    user = spotify_fake.add_user("alice")
    user.saved = [(f"2024-01-{i + 1:02d}T10:00:00Z", make_track(f"s{i}", f"Saved {i}", "Band")) for i in range(23)]
    me = api(spotify, spotify_fake, "alice")
    pages = [p async for p in me.iter_saved_tracks(page_size=10)]
    assert [len(p.items) for p in pages] == [10, 10, 3]
    assert pages[-1].next_offset is None and pages[0].total == 23
    assert pages[0].items[0][1].year == 2024


async def test_create_playlist_in_chunks_of_100(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    user = spotify_fake.add_user("alice")
    uris = [f"spotify:track:{i:022d}" for i in range(250)]
    created = await api(spotify, spotify_fake, "alice").create_playlist("Sonance mix", uris, description="for you")
    assert created.added == 250 and created.url and created.url.startswith("https://open.spotify.com/playlist/")
    assert user.playlists[created.id]["items"] == uris
    assert user.playlists[created.id]["public"] is False
    adds = [path for _, method, path, _ in spotify_fake.log if path.endswith("/items")]
    assert len(adds) == 3
    assert any(path == "/v1/me/playlists" for _, _, path, _ in spotify_fake.log)


async def test_find_track_uses_identity_matching(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice")
    spotify_fake.catalogue = [
        make_track("x1", "Creep - Acoustic", "Radiohead"),
        make_track("x2", "Creep", "Radiohead"),
        make_track("x3", "Don't Stop Me Now - Remastered 2011", "Queen"),
    ]
    me = api(spotify, spotify_fake, "alice")
    found = await me.find_track("Radiohead", "Creep")
    assert found is not None and found.id == "x2"
    found = await me.find_track("Queen", "Don't Stop Me Now (2011 Remaster)")
    assert found is None or found.id == "x3"  # the fake's naive search may not find it by words
    assert await me.find_track("Nobody", "Nothing") is None


async def test_missing_playlist_is_not_found(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice")
    me = api(spotify, spotify_fake, "alice")
    with pytest.raises(NotFound):
        await me.add_items("nope", ["spotify:track:1"])


async def test_me_names_the_spotify_user(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice")
    assert (await api(spotify, spotify_fake, "alice").me())["id"] == "alice"


async def test_failed_writes_are_not_retried_but_a_429_is(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    user = spotify_fake.add_user("alice")
    me = api(spotify, spotify_fake, "alice")

    def creates() -> int:
        return sum(1 for _, method, path, _ in spotify_fake.log if method == "POST" and path == "/v1/me/playlists")

    spotify_fake.fail_next("http", status=502, path="/v1/me/playlists")
    with pytest.raises(SourceUnavailable):
        await me.create_playlist("Mix", ["spotify:track:1"])
    assert creates() == 1 and user.playlists == {}  # the write may have happened: never sent twice

    spotify_fake.fail_next("429", retry_after=0.1, path="/v1/me/playlists")
    created = await me.create_playlist("Mix", ["spotify:track:1"])
    assert creates() == 3 and list(user.playlists) == [created.id]


async def test_timed_out_write_is_not_retried(spotify_fake: SpotifyFake, http: aiohttp.ClientSession) -> None:
    spotify_fake.add_user("alice")
    client = SpotifyClient(make_settings(**spotify_fake.settings_overrides()), http, RateLimiter(100),
                           retry=FAST_RETRY, timeout_s=0.2)
    spotify_fake.fail_next("slow", delay=0.5, path="/v1/me/playlists", count=3)
    with pytest.raises(SourceUnavailable) as err:
        await api(client, spotify_fake, "alice").create_playlist("Mix", ["spotify:track:1"])
    assert "Timeout" in (err.value.detail or "")
    assert sum(1 for _, method, _, _ in spotify_fake.log if method == "POST") == 1


async def test_a_second_401_after_refreshing_is_revoked_access() -> None:
    async with SpotifyFake(token_ttl_s=0) as fake, aiohttp.ClientSession() as http:  # refreshed tokens die at once
        client = SpotifyClient(make_settings(**fake.settings_overrides()), http, RateLimiter(500, burst=20),
                               retry=FAST_RETRY, timeout_s=1.0)
        fake.add_user("alice")
        me = client.for_user(tokens_for(fake, "alice"))
        fake.expire_access_tokens("alice")
        with pytest.raises(AccountProblem) as err:
            await me.recently_played()
        assert err.value.reason == "spotify_token_revoked"
        assert [r["grant_type"] for r in fake.token_requests] == ["refresh_token"]  # refreshed once only


async def test_concurrent_calls_share_one_refresh(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice").top_tracks = [make_track("t1", "Song", "Band")]
    saved: list[TokenSet] = []
    me = api(spotify, spotify_fake, "alice", saved)
    spotify_fake.expire_access_tokens("alice")
    results = await asyncio.gather(*(me.top_tracks() for _ in range(4)))
    assert all([t.name for t in r] == ["Song"] for r in results)
    assert len(spotify_fake.token_requests) == 1 and len(saved) == 1


async def test_wrong_shaped_json_and_refused_parameters(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice").top_tracks = [make_track("t1", "Song", "Band") | {"id": None}]
    me = api(spotify, spotify_fake, "alice")
    with pytest.raises(SourceUnavailable) as err:
        await me.top_tracks()
    assert "top-tracks" in (err.value.detail or "")
    asked = len(spotify_fake.log)
    with pytest.raises(SourceUnavailable) as err:
        await me.search_tracks("Band", limit=60)  # above Spotify's maximum: a 400, not worth retrying
    assert "400" in (err.value.detail or "") and len(spotify_fake.log) == asked + 1


async def test_calls_go_through_the_shared_limiter(spotify_fake: SpotifyFake, http: aiohttp.ClientSession) -> None:
    spotify_fake.add_user("alice")
    spotify_fake.add_user("bob")
    limiter = RateLimiter(20, burst=1)  # one call every 50 ms, for every user of the app together
    client = SpotifyClient(make_settings(**spotify_fake.settings_overrides()), http, limiter, retry=FAST_RETRY)
    alice, bob = api(client, spotify_fake, "alice"), api(client, spotify_fake, "bob")
    start = time.monotonic()
    await asyncio.gather(*(who.recently_played() for who in (alice, bob, alice, bob, alice)))
    assert time.monotonic() - start >= 0.2  # 5 calls: 4 intervals of 50 ms at the least


async def test_calls_and_refreshes_start_no_threads(spotify: SpotifyClient, spotify_fake: SpotifyFake) -> None:
    """Everything runs on the event loop (the previous client ran each call in a worker thread)."""
    spotify_fake.add_user("alice").top_tracks = [make_track("t1", "Song", "Band")]
    me = api(spotify, spotify_fake, "alice")
    before = {t.ident for t in threading.enumerate()}
    spotify_fake.expire_access_tokens("alice")
    await asyncio.gather(me.top_tracks(), me.recently_played(), me.search_tracks("Song"))
    assert {t.ident for t in threading.enumerate()} <= before
    assert len(spotify_fake.token_requests) == 1
