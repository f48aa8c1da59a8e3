"""The real Spotify client (spotipy in threads) against the local Spotify API + Accounts fake."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from spotipy.oauth2 import SpotifyOAuth

from core.errors import AccountProblem, NotFound, SourceUnavailable
from core.sources.http import RateLimiter
from core.sources.oauth_state import InMemoryNonceStore, OAuthStateSigner
from core.sources.spotify import SpotifyClient, SpotifyUserApi, TokenSet
from tests.fakes.spotify_server import SpotifyFake, make_artist, make_track
from tests.sources.conftest import FAST_RETRY, make_settings


@pytest.fixture
async def spotify_fake() -> AsyncIterator[SpotifyFake]:
    async with SpotifyFake() as fake:
        yield fake


@pytest.fixture
def spotify(spotify_fake: SpotifyFake) -> SpotifyClient:
    return SpotifyClient(make_settings(**spotify_fake.settings_overrides()), RateLimiter(500, burst=20),
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
    # the class attributes of spotipy were not touched (no global state leaks between tests)
    assert SpotifyOAuth.OAUTH_AUTHORIZE_URL == "https://accounts.spotify.com/authorize"
    assert SpotifyOAuth.OAUTH_TOKEN_URL == "https://accounts.spotify.com/api/token"

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


async def test_slow_answer_hits_the_timeout(spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice")
    client = SpotifyClient(make_settings(**spotify_fake.settings_overrides()), RateLimiter(100),
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
        await me._call("add-items", lambda sp: sp.playlist_add_items("nope", ["spotify:track:1"]))
