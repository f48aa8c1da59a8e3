"""AOTY facts (cache -> database -> crawler), Last.fm tag enrichment, and Last.fm global listener
counts and album covers (artist.getInfo, album.getInfo), against the local fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from core.config import Settings
from core.db.models import Album, Artist, ItemTag, Tag
from core.db.models import AotyAlbum as AotyAlbumRow
from core.db.repositories import AotyRepository, CatalogRepository, UserRepository
from core.services import Services
from core.sources.http import RetryPolicy
from core.sources.lastfm import LastfmClient
from core.sources.lastfm_models import largest_image
from core.sync.enrichment import AOTY_NAMESPACE, AotyFactsService, LastfmPublicFacts, LastfmTagEnrichment
from core.sync.ingest import RawListen, ingest_listens
from tests.conftest import make_settings
from tests.fakes.aoty_server import TEST_ALBUM_PATH, AotyFake
from tests.fakes.lastfm_server import LastfmFake

ALBUM_PATH = TEST_ALBUM_PATH
FAST_RETRY = RetryPolicy(attempts=3, base_delay_s=0.02, max_delay_s=0.05, max_retry_after_s=5.0)


@pytest.fixture
async def aoty_fake() -> AsyncIterator[AotyFake]:
    async with AotyFake() as fake:
        fake.add_test_album()
        yield fake


@pytest.fixture
async def lastfm_fake() -> AsyncIterator[LastfmFake]:
    async with LastfmFake() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, tmp_path: Path, aoty_fake: AotyFake, lastfm_fake: LastfmFake) -> Settings:
    """The shared `services` fixture, pointed at the fakes (overrides conftest's `settings`)."""
    return make_settings(database_url, tmp_path, AOTY_BASE_URL=aoty_fake.base_url, AOTY_MIN_INTERVAL_S=0.01,
                         **lastfm_fake.settings_overrides())


@pytest.fixture
async def started(services: Services) -> Services:
    await services.start_clients()
    assert services.http is not None and services.limiters is not None
    services.lastfm = LastfmClient(services.settings, services.http, services.limiters.lastfm, retry=FAST_RETRY,
                                   timeout_s=2)
    return services


async def listen(services: Services, plays: list[tuple[str, str | None, str]], discord_id: int = 5001) -> None:
    """Plays (artist, album, track) through the real ingest path, one minute apart."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(discord_id, f"u{discord_id}")
        await ingest_listens(s, user.id, [
            RawListen(artist=a, album=al, track=t, played_at=start + timedelta(minutes=i), source="lastfm")
            for i, (a, al, t) in enumerate(plays)])


async def album_id(services: Services, title: str) -> int:
    async with services.session() as s:
        return int((await s.execute(select(Album.id).where(Album.title == title))).scalar_one())


async def album_tags(services: Services, album: int) -> dict[tuple[str, str], float]:
    async with services.session() as s:
        rows = await s.execute(select(ItemTag.source, Tag.name, ItemTag.weight).join(Tag, Tag.id == ItemTag.tag_id)
                               .where(ItemTag.item_kind == "album", ItemTag.item_id == album))
        return {(source, name): weight for source, name, weight in rows}


def fetches(fake: AotyFake, path: str = ALBUM_PATH) -> int:
    """Requests for `path` (search requests carry their query string in the log)."""
    return sum(p == path or p.startswith(path + "?") for p in fake.paths())


# ------------------------------------------------------------------------------------------ AOTY


async def test_facts_fetched_once_then_served_from_cache_and_database(started: Services, aoty_fake: AotyFake) -> None:
    await listen(started, [("Test Band", "Double Feature", "Opening")])
    album = await album_id(started, "Double Feature")
    service = AotyFactsService(started)

    facts = await service.album_facts(album)
    assert facts is not None and facts.critic_score == pytest.approx(83.6) and facts.must_hear
    assert facts.url == f"{aoty_fake.base_url}{ALBUM_PATH}"
    assert facts.genres == ("Indie Rock", "Post-Punk", "Shoegaze")
    assert await service.album_facts(album) == facts  # cache
    await started.cache.delete_namespace(AOTY_NAMESPACE)
    assert await AotyFactsService(started).album_facts(album) == facts  # database row, still fresh
    assert fetches(aoty_fake) == 1 and fetches(aoty_fake, "/search/albums/") == 1

    async with started.session() as s:
        assert (await s.execute(select(Album.aoty_url).where(Album.id == album))).scalar_one() == facts.url
        row = await AotyRepository(s).by_album_id(album)
        assert row is not None and row.album_id == album and len(row.tracklist) == 3
    tags = await album_tags(started, album)
    assert tags == {("aoty_genre", "indie rock"): 100.0, ("aoty_genre", "post-punk"): 100.0,
                    ("aoty_genre", "shoegaze"): 60.0, ("aoty_tag", "melancholic"): 50.0,
                    ("aoty_tag", "guitar"): 50.0}


async def test_concurrent_requests_for_one_album_fetch_once(started: Services, aoty_fake: AotyFake) -> None:
    import asyncio

    await listen(started, [("Test Band", "Double Feature", "Opening")])
    album = await album_id(started, "Double Feature")
    service = AotyFactsService(started)
    results = await asyncio.gather(*(service.album_facts(album) for _ in range(3)))
    assert results[0] is not None and results.count(results[0]) == 3
    assert fetches(aoty_fake) == 1 and not service._locks


async def test_challenge_without_stored_row_is_none_and_stores_nothing(started: Services,
                                                                       aoty_fake: AotyFake) -> None:
    await listen(started, [("Test Band", "Double Feature", "Opening")])
    album = await album_id(started, "Double Feature")
    aoty_fake.challenge = "403"
    service = AotyFactsService(started)

    assert await service.album_facts(album) is None
    async with started.session() as s:
        assert (await s.execute(select(func.count()).select_from(AotyAlbumRow))).scalar_one() == 0
        assert (await s.execute(select(Album.aoty_url).where(Album.id == album))).scalar_one() is None
    assert await album_tags(started, album) == {}
    requests = len(aoty_fake.log)
    assert await service.paused()
    assert await service.album_facts(album) is None
    assert len(aoty_fake.log) == requests, "a challenged crawler rests instead of knocking again"


async def test_challenge_with_stale_row_serves_the_stale_facts(started: Services, aoty_fake: AotyFake) -> None:
    await listen(started, [("Test Band", "Double Feature", "Opening")])
    album = await album_id(started, "Double Feature")
    facts = await AotyFactsService(started).album_facts(album)
    assert facts is not None
    async with started.session() as s:  # the stored page is now older than AOTY_CACHE_DAYS
        await s.execute(update(AotyAlbumRow).values(fetched_at=datetime.now(UTC) - timedelta(days=30)))
    await started.cache.delete_namespace(AOTY_NAMESPACE)
    aoty_fake.challenge = "header"

    assert await AotyFactsService(started).album_facts(album) == facts
    assert fetches(aoty_fake) == 2  # the refresh was attempted (and challenged)
    assert await album_tags(started, album), "stored genres are kept"


async def test_unknown_album_is_none_and_the_miss_is_remembered(started: Services, aoty_fake: AotyFake) -> None:
    await listen(started, [("Nobody", "Unheard Of", "Track")])
    album = await album_id(started, "Unheard Of")
    service = AotyFactsService(started)
    assert await service.album_facts(album) is None
    searches = fetches(aoty_fake, "/search/albums/")
    assert searches == 2  # title, then "artist title"
    assert await service.album_facts(album) is None
    assert fetches(aoty_fake, "/search/albums/") == searches


# --------------------------------------------------------------------------------------- Last.fm


async def tags_of(services: Services) -> dict[str, dict[str, float]]:
    async with services.session() as s:
        names = dict((await s.execute(select(Artist.id, Artist.name))).all())
        return {names[i]: tags for i, tags in (await CatalogRepository(s).item_tags("artist")).items()}


async def test_lastfm_tags_for_untagged_artists_only(started: Services, lastfm_fake: LastfmFake) -> None:
    await listen(started, [("Loud", None, f"L{i}") for i in range(5)] + [("Quiet", None, "Q1"),
                 ("Tagged", None, "T1"), ("Ghost", None, "G1")] + [("Empty", None, "E1")])
    lastfm_fake.artist_tags.update({
        "loud": [("noise rock", 100), ("Shoegaze", 40), ("seen live", 0)],
        "quiet": [("ambient", 100)], "tagged": [("should not be asked", 100)], "empty": []})
    async with started.session() as s:  # "Tagged" already has Last.fm tags
        catalog = CatalogRepository(s)
        tagged_id = (await s.execute(select(Artist.id).where(Artist.name == "Tagged"))).scalar_one()
        ids = await catalog.ensure_tags(["post-rock"])
        await catalog.set_item_tags("artist", "lastfm", {tagged_id: {ids["post-rock"]: 77.0}})

    report = await LastfmTagEnrichment(started).enrich_artist_tags(limit=50)
    assert (report.considered, report.tagged, report.empty, report.not_found, report.stopped) == (4, 2, 1, 1, False)
    asked = [p["artist"] for _, p in lastfm_fake.requests_for("artist.getTopTags")]
    assert asked[0] == "Loud", "most-played first"
    assert sorted(asked) == ["Empty", "Ghost", "Loud", "Quiet"]
    assert await tags_of(started) == {"Loud": {"noise rock": 100.0, "shoegaze": 40.0}, "Quiet": {"ambient": 100.0},
                                      "Tagged": {"post-rock": 77.0}}

    again = await LastfmTagEnrichment(started).enrich_artist_tags(limit=50)
    assert again.considered == 0, "tagged artists and remembered misses are not asked again"
    assert len(lastfm_fake.requests_for("artist.getTopTags")) == 4


async def test_lastfm_outage_stops_enrichment_and_keeps_what_was_stored(started: Services,
                                                                        lastfm_fake: LastfmFake) -> None:
    await listen(started, [("First", None, f"F{i}") for i in range(3)] + [("Second", None, "S1")])
    lastfm_fake.artist_tags.update({"first": [("jazz", 90)], "second": [("funk", 80)]})
    lastfm_fake.fail_next("error", code=11, count=10, method="artist.getTopTags", after=1)

    report = await LastfmTagEnrichment(started, concurrency=1).enrich_artist_tags(limit=10)
    assert report.stopped and report.reason == "lastfm_unavailable" and report.tagged == 1
    assert await tags_of(started) == {"First": {"jazz": 90.0}}

    lastfm_fake.failures.clear()
    resumed = await LastfmTagEnrichment(started).enrich_artist_tags(limit=10)
    assert resumed.tagged == 1 and (await tags_of(started))["Second"] == {"funk": 80.0}


# ------------------------------------------------------------- Last.fm listeners and covers

COVER = "https://lastfm.freetls.fastly.net/i/u/SIZE/d1a5c2.png"


async def listeners_of(services: Services) -> dict[str, int | None]:
    async with services.session() as s:
        return dict((await s.execute(select(Artist.name, Artist.lastfm_listeners))).all())


async def covers_of(services: Services) -> dict[str, str | None]:
    async with services.session() as s:
        return dict((await s.execute(select(Album.title, Album.image_url))).all())


def test_largest_image_skips_empty_sizes_and_the_star_placeholder() -> None:
    sizes = [{"size": "small", "#text": "https://x/34s/a.png"}, {"size": "large", "#text": "https://x/174s/a.png"},
             {"size": "extralarge", "#text": ""}]
    assert largest_image(sizes) == "https://x/174s/a.png"
    assert largest_image([{"size": "mega", "#text": ""}]) is None
    assert largest_image([{"size": "mega", "#text": "https://x/300x300/2a96cbd8b46e442fc41c2b86b821562f.png"}]) is None
    assert largest_image([{"size": "mega", "#text": "http://insecure/a.png"}]) is None
    assert largest_image("") is None and largest_image(None) is None


async def test_global_listeners_are_read_stored_and_refreshed_when_stale(started: Services,
                                                                          lastfm_fake: LastfmFake) -> None:
    await listen(started, [("Portishead", None, f"P{i}") for i in range(3)] + [("Tiny Band", None, "T1"),
                 ("Nobody Knows", None, "N1")])
    lastfm_fake.artist_stats.update({"portishead": (2_270_431, 126_000_000), "tiny band": (812, 4_000)})
    facts = LastfmPublicFacts(started)

    report = await facts.refresh_listeners(limit=10)
    assert (report.considered, report.found, report.missing, report.stopped) == (3, 2, 1, False)
    assert await listeners_of(started) == {"Portishead": 2_270_431, "Tiny Band": 812, "Nobody Knows": None}
    assert next(p["artist"] for _, p in lastfm_fake.requests_for("artist.getInfo")) == "Portishead"

    again = await facts.refresh_listeners(limit=10)
    assert again.considered == 0, "fresh counts (and fresh misses) are not asked again"
    async with started.session() as s:  # a month later the counts are stale and read again
        await s.execute(update(Artist).values(listeners_checked_at=datetime.now(UTC) - timedelta(days=31)))
    lastfm_fake.artist_stats["portishead"] = (2_300_000, 127_000_000)
    assert (await facts.refresh_listeners(limit=10)).considered == 3
    assert (await listeners_of(started))["Portishead"] == 2_300_000


async def test_an_outage_stops_the_run_and_keeps_what_was_read(started: Services, lastfm_fake: LastfmFake) -> None:
    await listen(started, [("First", None, f"F{i}") for i in range(3)] + [("Second", None, "S1")])
    lastfm_fake.artist_stats.update({"first": (10_000, 1), "second": (20_000, 1)})
    lastfm_fake.fail_next("error", code=11, count=10, method="artist.getInfo", after=1)
    report = await LastfmPublicFacts(started, concurrency=1).refresh_listeners(limit=10)
    assert report.stopped and report.reason == "lastfm_unavailable"
    assert await listeners_of(started) == {"First": 10_000, "Second": None}
    lastfm_fake.failures.clear()
    assert (await LastfmPublicFacts(started).refresh_listeners(limit=10)).found == 1
    assert (await listeners_of(started))["Second"] == 20_000


async def test_album_covers_largest_image_misses_remembered_none_broken(started: Services,
                                                                       lastfm_fake: LastfmFake) -> None:
    await listen(started, [("Portishead", "Dummy", "Sour Times"), ("Portishead", "Dummy", "Roads"),
                           ("Tiny Band", "Demo Tape", "One"), ("Tiny Band", "Unknown EP", "Two")])
    lastfm_fake.album_covers.update({("portishead", "dummy"): COVER, ("tiny band", "demo tape"): ""})
    facts = LastfmPublicFacts(started)

    report = await facts.enrich_album_covers(limit=10)
    assert (report.considered, report.found, report.missing) == (3, 1, 2)
    assert await covers_of(started) == {"Dummy": COVER.replace("SIZE", "300x300"), "Demo Tape": None,
                                        "Unknown EP": None}
    assert next(p["album"] for _, p in lastfm_fake.requests_for("album.getInfo")) == "Dummy", "most played first"
    assert (await facts.enrich_album_covers(limit=10)).considered == 0, "misses are retried later, not every run"


async def test_an_aoty_cover_fills_an_album_without_one(started: Services, aoty_fake: AotyFake) -> None:
    await listen(started, [("Test Band", "Double Feature", "Opening")])
    async with started.session() as s:
        album = (await s.execute(select(Album.id).where(Album.title == "Double Feature"))).scalar_one()
    assert await AotyFactsService(started).album_facts(album) is not None
    cover = (await covers_of(started))["Double Feature"]
    assert cover is not None and cover.startswith("https://")
