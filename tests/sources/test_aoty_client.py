"""The polite AOTY crawler against the local fake: robots.txt, spacing, challenges, 429, resolve."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from core.errors import NotFound, SourceUnavailable
from core.sources.aoty import AotyChallenged, AotyClient, RobotsDisallowed
from core.sources.aoty_parse import AotyParseError
from core.sources.http import RetryPolicy, SerialGate
from tests.fakes.aoty_server import AotyFake
from tests.sources.conftest import make_settings

OWN = Path(__file__).parent / "fixtures" / "aoty"
INTERVAL = 0.05
ALBUM = "/album/1001-test-band-double-feature.php"


@pytest.fixture
async def aoty_fake() -> AsyncIterator[AotyFake]:
    async with AotyFake() as fake:
        fake.pages[ALBUM] = (OWN / "album_multidisc.html").read_text()
        fake.pages["/album/3-broken.php"] = (OWN / "album_malformed.html").read_text()
        fake.searches["rumours"] = (OWN / "search_albums_small.html").read_text()
        yield fake


def make_client(fake: AotyFake, http: aiohttp.ClientSession, **retry: float) -> AotyClient:
    settings = make_settings(AOTY_BASE_URL=fake.base_url, AOTY_MIN_INTERVAL_S=INTERVAL)
    policy = RetryPolicy(attempts=int(retry.get("attempts", 3)), base_delay_s=0.02, max_delay_s=0.05,
                         max_retry_after_s=5)
    return AotyClient(settings, http, SerialGate(settings.aoty_min_interval_s), retry=policy, timeout_s=1.0)


@pytest.fixture
def aoty(aoty_fake: AotyFake, http: aiohttp.ClientSession) -> AotyClient:
    return make_client(aoty_fake, http)


async def test_fetch_album_reads_robots_first_and_identifies_itself(aoty: AotyClient, aoty_fake: AotyFake) -> None:
    album = await aoty.fetch_album(ALBUM)
    assert album.title == "Double Feature (Deluxe Edition)" and album.url == aoty.url(ALBUM)
    assert aoty_fake.paths() == ["/robots.txt", ALBUM]
    assert all(ua.startswith("Sonance/") for ua in aoty_fake.user_agents)
    await aoty.fetch_album(ALBUM)
    assert aoty_fake.paths().count("/robots.txt") == 1  # cached


async def test_one_request_at_a_time_with_min_spacing(aoty: AotyClient, aoty_fake: AotyFake) -> None:
    await asyncio.gather(*(aoty.fetch_album(ALBUM) for _ in range(4)))
    assert aoty_fake.max_in_flight == 1
    spans = sorted((s, e) for s, e, _ in aoty_fake.log)
    assert len(spans) == 5
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start - end >= INTERVAL * 0.9


async def test_robots_disallow_is_obeyed(aoty: AotyClient, aoty_fake: AotyFake) -> None:
    aoty_fake.pages["/user/someone/"] = "<html></html>"
    with pytest.raises(RobotsDisallowed):
        await aoty.get_page("/user/someone/")
    assert "/user/someone/" not in aoty_fake.paths()


async def test_robots_crawl_delay_and_agent_specific_rules(aoty_fake: AotyFake, http: aiohttp.ClientSession) -> None:
    aoty_fake.robots_txt = "User-agent: Sonance\nDisallow: /album/\nCrawl-delay: 1\n\nUser-agent: *\nDisallow:\n"
    client = make_client(aoty_fake, http)
    with pytest.raises(RobotsDisallowed):
        await client.fetch_album(ALBUM)
    assert client._gate.min_interval_s == 1.0  # robotparser reads whole seconds


async def test_robots_5xx_means_stay_away(aoty_fake: AotyFake, http: aiohttp.ClientSession) -> None:
    aoty_fake.fail_next("http", status=503, path="/robots.txt", count=5)
    with pytest.raises(SourceUnavailable):
        await make_client(aoty_fake, http).fetch_album(ALBUM)
    assert ALBUM not in aoty_fake.paths()


async def test_missing_robots_means_no_rules(aoty_fake: AotyFake, http: aiohttp.ClientSession) -> None:
    aoty_fake.robots_txt = None
    assert (await make_client(aoty_fake, http).fetch_album(ALBUM)).artist == "Test Band"


@pytest.mark.parametrize("mode", ["403", "header"])
async def test_cloudflare_challenge_is_source_unavailable(aoty: AotyClient, aoty_fake: AotyFake, mode: str) -> None:
    aoty_fake.challenge = mode
    with pytest.raises(AotyChallenged) as err:
        await aoty.fetch_album(ALBUM)
    assert isinstance(err.value, SourceUnavailable) and err.value.source == "aoty"
    assert aoty_fake.paths().count(ALBUM) == 1  # a challenge is not hammered with retries


async def test_429_honours_retry_after_for_the_whole_crawler(aoty: AotyClient, aoty_fake: AotyFake) -> None:
    aoty_fake.fail_next("429", retry_after=0.3, path=ALBUM)
    start = time.monotonic()
    album = await aoty.fetch_album(ALBUM)
    assert album.artist == "Test Band"
    starts = [s for s, _, p in aoty_fake.log if p == ALBUM]
    assert len(starts) == 2 and starts[1] - starts[0] >= 0.3
    assert time.monotonic() - start >= 0.3


async def test_persistent_429_is_source_unavailable(aoty: AotyClient, aoty_fake: AotyFake) -> None:
    aoty_fake.fail_next("429", retry_after=0.01, path=ALBUM, count=10)
    with pytest.raises(SourceUnavailable) as err:
        await aoty.fetch_album(ALBUM)
    assert "429" in (err.value.detail or "")


async def test_5xx_then_success(aoty: AotyClient, aoty_fake: AotyFake) -> None:
    aoty_fake.fail_next("http", status=502, path=ALBUM)
    assert (await aoty.fetch_album(ALBUM)).title.startswith("Double Feature")


async def test_slow_page_times_out(aoty_fake: AotyFake, http: aiohttp.ClientSession) -> None:
    client = make_client(aoty_fake, http, attempts=2)
    aoty_fake.fail_next("slow", delay=1.3, path=ALBUM, count=2)
    with pytest.raises(SourceUnavailable) as err:
        await client.fetch_album(ALBUM)
    assert "timed out" in (err.value.detail or "")


async def test_missing_and_malformed_pages(aoty: AotyClient) -> None:
    with pytest.raises(NotFound):
        await aoty.fetch_album("/album/404-nothing.php")
    with pytest.raises(AotyParseError):
        await aoty.fetch_album("/album/3-broken.php")


async def test_resolve_artist_album_to_page(aoty: AotyClient, aoty_fake: AotyFake) -> None:
    ref = await aoty.resolve("Fleetwood Mac", "Rumours (Super Deluxe)")
    assert ref is not None and ref.url == aoty.url("/album/60-fleetwood-mac-rumours.php")
    assert "/search/albums/?q=Rumours" in aoty_fake.paths()  # decorations stripped from the query
    assert await aoty.resolve("Nobody", "Unknown Album") is None
