"""The real Last.fm client against the local fake speaking Last.fm's JSON wire format."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from core.domain import Kind
from core.errors import AccountProblem, NotFound, SourceUnavailable
from core.sources.http import RateLimiter
from core.sources.lastfm import LastfmClient, sign
from tests.fakes.lastfm_server import LastfmFake
from tests.sources.conftest import FAST_RETRY, make_settings

PLAYS = [(1_700_000_000 + i * 200, f"Artist {i % 3}", f"Album {i % 2}", f"Track {i}") for i in range(5)]


async def test_user_info(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("RJ", scrobbles=PLAYS)
    info = await lastfm.user_info("rj")
    assert info.name == "RJ" and info.playcount == 5
    assert info.registered is not None and info.registered.tzinfo is not None
    assert any(ua.startswith("Sonance/") for ua in lastfm_fake.user_agents)


async def test_unknown_user_is_an_account_problem(lastfm: LastfmClient) -> None:
    with pytest.raises(AccountProblem) as err:
        await lastfm.user_info("nobody")
    assert err.value.reason == "lastfm_user_not_found"
    with pytest.raises(AccountProblem) as err:
        await lastfm.recent_tracks("nobody")
    assert err.value.reason == "lastfm_user_not_found"


async def test_private_profile_is_an_account_problem(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("shy", scrobbles=PLAYS, private=True)
    with pytest.raises(AccountProblem) as err:
        await lastfm.recent_tracks("shy")
    assert err.value.reason == "lastfm_private"
    assert "privacy" in err.value.user_message


async def test_recent_tracks_skips_now_playing(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("rj", scrobbles=PLAYS, now_playing=("Live Artist", "Live Album", "Playing Now"))
    page = await lastfm.recent_tracks("rj")
    assert [r.track for r in page.rows] == ["Track 4", "Track 3", "Track 2", "Track 1", "Track 0"]
    assert all(r.track != "Playing Now" for r in page.rows)
    assert page.now_playing is not None and page.now_playing.track == "Playing Now"
    assert (page.total, page.total_pages, page.page) == (5, 1, 1)
    row = page.rows[0]
    assert row.artist == "Artist 1" and row.album == "Album 0" and row.artist_mbid is None
    assert row.played_uts == 1_700_000_800 and row.played_at.timestamp() == 1_700_000_800
    assert row.url and row.url.startswith("https://www.last.fm/music/")


async def test_single_row_as_bare_object_and_extended_shape(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("one", scrobbles=PLAYS[:1])
    page = await lastfm.recent_tracks("one")  # the fake renders a one-element list as an object
    assert [r.track for r in page.rows] == ["Track 0"]
    page = await lastfm.recent_tracks("one", extended=True)
    assert page.rows[0].artist == "Artist 0" and page.rows[0].loved is False


async def test_window_and_paging_parameters(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("rj", scrobbles=PLAYS)
    page = await lastfm.recent_tracks("rj", from_ts=PLAYS[1][0], to_ts=PLAYS[3][0], limit=2, page=2)
    assert [r.track for r in page.rows] == ["Track 1"]
    assert (page.total, page.total_pages) == (3, 2)


@pytest.mark.parametrize("code", [8, 11, 16, 29])
async def test_transient_error_codes_are_retried(lastfm: LastfmClient, lastfm_fake: LastfmFake, code: int) -> None:
    lastfm_fake.add_user("rj", scrobbles=PLAYS)
    lastfm_fake.fail_next("error", code=code, count=2)  # HTTP 200 with an error body
    page = await lastfm.recent_tracks("rj")
    assert len(page.rows) == 5
    assert len(lastfm_fake.requests_for("user.getRecentTracks")) == 3


async def test_http_5xx_then_success(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("rj", scrobbles=PLAYS)
    lastfm_fake.fail_next("http", status=502)
    lastfm_fake.fail_next("error", code=11, status=503)
    assert len((await lastfm.recent_tracks("rj")).rows) == 5


async def test_persistent_failure_becomes_source_unavailable(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("rj", scrobbles=PLAYS)
    lastfm_fake.fail_next("http", status=500, count=10)
    with pytest.raises(SourceUnavailable) as err:
        await lastfm.recent_tracks("rj")
    assert err.value.source == "lastfm"
    assert not err.value.rate_limited  # a failing backend, not our request rate
    assert len(lastfm_fake.requests_for("user.getRecentTracks")) == FAST_RETRY.attempts


@pytest.mark.parametrize("status", [200, 429])  # error 29 in a 200 body, and as Last.fm also sends it
async def test_a_persistent_rate_limit_says_so(lastfm: LastfmClient, lastfm_fake: LastfmFake, status: int) -> None:
    """Callers that pace many requests (the similar-graph filler) stop at once on our rate, not on a page."""
    lastfm_fake.add_user("rj", scrobbles=PLAYS)
    lastfm_fake.fail_next("error", code=29, status=status, count=10)
    with pytest.raises(SourceUnavailable) as err:
        await lastfm.recent_tracks("rj")
    assert err.value.rate_limited


async def test_suspended_key_is_not_retried(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("rj", scrobbles=PLAYS)
    lastfm_fake.suspended = True
    with pytest.raises(SourceUnavailable) as err:
        await lastfm.user_info("rj")
    assert "26" in (err.value.detail or "")
    assert lastfm_fake.request_count == 1


async def test_malformed_body_is_retried(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("rj", scrobbles=PLAYS)
    lastfm_fake.fail_next("malformed")
    assert len((await lastfm.recent_tracks("rj")).rows) == 5
    lastfm_fake.fail_next("malformed", count=10)
    with pytest.raises(SourceUnavailable):
        await lastfm.recent_tracks("rj")


async def test_slow_answer_times_out_then_retry_succeeds(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("rj", scrobbles=PLAYS)
    lastfm_fake.fail_next("slow", delay=1.5)  # client timeout is 1 s in the fixture
    start = time.monotonic()
    assert len((await lastfm.recent_tracks("rj")).rows) == 5
    assert 1.0 <= time.monotonic() - start < 1.5


async def test_always_slow_becomes_source_unavailable(lastfm_fake: LastfmFake, http: aiohttp.ClientSession) -> None:
    lastfm_fake.add_user("rj", scrobbles=PLAYS)
    lastfm_fake.fail_next("slow", delay=1.0, count=3)
    client = LastfmClient(make_settings(**lastfm_fake.settings_overrides()), http, RateLimiter(100),
                          retry=FAST_RETRY, timeout_s=0.2)
    with pytest.raises(SourceUnavailable) as err:
        await client.recent_tracks("rj")
    assert "timed out" in (err.value.detail or "")


async def test_429_retry_after_is_honoured_without_blocking_other_users(
        lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("alice", scrobbles=PLAYS)
    lastfm_fake.add_user("bob", scrobbles=PLAYS)
    lastfm_fake.fail_next("429", retry_after=0.4, user="alice")
    done: dict[str, float] = {}
    start = time.monotonic()

    async def fetch(user: str) -> None:
        await lastfm.recent_tracks(user)
        done[user] = time.monotonic() - start

    alice = asyncio.create_task(fetch("alice"))
    await asyncio.sleep(0.05)  # alice has had her 429 and is waiting
    await fetch("bob")
    await alice
    assert done["alice"] >= 0.4
    assert done["bob"] < 0.3  # bob did not wait for alice's Retry-After


async def test_error_29_with_retry_after_header(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("rj", scrobbles=PLAYS)
    lastfm_fake.fail_next("error", code=29, status=429, retry_after=0.3)
    start = time.monotonic()
    await lastfm.user_info("rj")
    assert time.monotonic() - start >= 0.3


async def test_shared_limiter_caps_requests_across_users(lastfm_fake: LastfmFake, http: aiohttp.ClientSession) -> None:
    rate = 20.0
    limiter = RateLimiter(rate)  # one instance shared by all users, as in production
    client = LastfmClient(make_settings(**lastfm_fake.settings_overrides()), http, limiter, retry=FAST_RETRY)
    users = [f"user{i}" for i in range(4)]
    for u in users:
        lastfm_fake.add_user(u, scrobbles=PLAYS)
    await asyncio.gather(*(client.user_info(u) for u in users for _ in range(4)))
    stamps = sorted(t for t, _, _ in lastfm_fake.log)
    assert len(stamps) == 16
    assert stamps[-1] - stamps[0] >= 15 / rate * 0.9
    for i in range(len(stamps) - 5):  # never more than 5 requests within any 5/rate-second window
        assert stamps[i + 5] - stamps[i] >= 5 / rate * 0.9


async def test_top_lists(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("rj", scrobbles=[*PLAYS, (1700100000, "Artist 0", "Album 0", "Track 0")])
    artists = await lastfm.top_artists("rj", "7day")
    assert artists[0].name == "Artist 0" and artists[0].playcount == 3 and artists[0].rank == 1
    albums = await lastfm.top_albums("rj", "12month", limit=1)
    assert albums[0].kind is Kind.ALBUM and albums[0].artist == "Artist 0"
    tracks = await lastfm.top_tracks("rj")
    assert tracks[0].name == "Track 0" and tracks[0].playcount == 2
    with pytest.raises(ValueError):
        await lastfm.top_artists("rj", "1week")  # type: ignore[arg-type]


async def test_tags_and_similar(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.artist_tags["radiohead"] = [("alternative", 100), ("rock", 80)]
    lastfm_fake.track_tags[("radiohead", "creep")] = [("90s", 100)]
    lastfm_fake.similar["radiohead"] = [("Thom Yorke", 1.0), ("Muse", 0.5)]
    assert [t.name for t in await lastfm.artist_top_tags("Radiohead")] == ["alternative", "rock"]
    assert (await lastfm.track_top_tags("Radiohead", "Creep"))[0].count == 100
    similar = await lastfm.artist_similar("Radiohead", limit=1)
    assert similar.artist == "Radiohead"
    assert [(s.name, s.match) for s in similar.artists] == [("Thom Yorke", 1.0)]
    assert lastfm_fake.requests_for("artist.getSimilar")[-1][1]["limit"] == "1"
    with pytest.raises(NotFound):
        await lastfm.artist_top_tags("Nobody Band")


async def test_similar_unknown_empty_and_tracks(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.similar["lonely"] = []
    lastfm_fake.similar_tracks[("radiohead", "creep")] = [("Muse", "Unintended", 0.8), ("Blur", "Song 2", 0.25)]
    with pytest.raises(NotFound):  # error 6 arrives with HTTP 404
        await lastfm.artist_similar("Nobody Band")
    assert (await lastfm.artist_similar("Lonely")).artists == []
    tracks = await lastfm.track_similar("Radiohead", "Creep")
    assert [(t.artist, t.title, t.match) for t in tracks] == [("Muse", "Unintended", 0.8), ("Blur", "Song 2", 0.25)]
    assert lastfm_fake.requests_for("track.getSimilar")[-1][1]["limit"] == "100"
    with pytest.raises(NotFound):
        await lastfm.track_similar("Radiohead", "No Such Song")


async def test_web_auth_url_and_session(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    url = lastfm.auth_url("http://127.0.0.1:8080/oauth/lastfm?state=abc")
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{lastfm_fake.base_url}/api/auth/?")
    assert query == {"api_key": [lastfm_fake.api_key], "cb": ["http://127.0.0.1:8080/oauth/lastfm?state=abc"]}

    lastfm_fake.authorise_token("tok123", "RJ")
    session = await lastfm.get_session("tok123")
    assert session.name == "RJ" and len(session.key) == 32
    _, params = lastfm_fake.requests_for("auth.getSession")[0]
    assert "api_sig" in params and params["format"] == "json"

    with pytest.raises(AccountProblem) as err:  # tokens are single use
        await lastfm.get_session("tok123")
    assert err.value.reason == "lastfm_token_invalid"


def test_signature_matches_pylast() -> None:
    """Our md5 recipe must equal pylast's (the reference implementation of Last.fm's rule)."""
    import pylast

    network = pylast.LastFMNetwork(api_key="k3y", api_secret="s3cr3t")
    params = {"token": "abc", "method": "auth.getSession", "api_key": "k3y"}
    request = pylast._Request(network, "auth.getSession", {"token": "abc"})
    assert sign(params, "s3cr3t") == request._get_signature()
    assert sign({**params, "format": "json"}, "s3cr3t") == request._get_signature()  # format excluded
