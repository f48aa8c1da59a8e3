"""`ingest_listens` on a real database: the per-run `CatalogIds` memory changes speed, never results.

Both halves run on SQLite and on PostgreSQL (whose catalog path uses `unnest` arrays and whose
listens go through COPY), so the two engines are held to the same stored outcome.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core.db.models import Album, Artist, ArtistPlays, Listen, Track
from core.db.repositories import CatalogRepository, UserRepository
from core.matching import artist_key, track_key
from core.services import Services
from core.sync.ingest import CatalogIds, RawListen, ingest_listens

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

# Tricky spellings: variants that must become one track, a play without usable names, albums that
# differ between plays of one track, a duplicate play, and names with stray whitespace.
SPELLINGS = [
    ("Radiohead", "Creep", "Pablo Honey"),
    ("radiohead", "Creep - Remastered 2011", "Pablo Honey"),
    ("Radiohead ", "Creep (Live)", None),
    ("The Beatles", "Let It Be", "Let It Be"),
    ("Beatles", "Let It Be - Remastered 2009", "Let It Be (Remastered)"),
    ("Björk", "Jóga", "Homogenic"),
    ("Bjork", "Joga", None),
    ("   ", "Nameless", None),
    ("Daft Punk", "One More Time (feat. Romanthony)", "Discovery"),
    ("Daft Punk", "One More Time", "Discovery"),
]


def _plays(offset_s: int = 0) -> list[RawListen]:
    plays = [RawListen(artist=a, track=t, album=al, played_at=T0 + timedelta(seconds=offset_s + 60 * i),
                       source="lastfm") for i, (a, t, al) in enumerate(SPELLINGS * 3)]
    return [*plays, plays[0]]  # the same play twice in one batch


async def _state(services: Services, user_id: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    async with services.session() as s:
        listens = (await s.execute(
            select(Artist.name_key, Track.title_key, Listen.played_at, Listen.source)
            .join(Track, Track.id == Listen.track_id).join(Artist, Artist.id == Track.artist_id)
            .where(Listen.user_id == user_id).order_by(Listen.played_at))).all()
        plays = (await s.execute(
            select(Artist.name_key, ArtistPlays.plays, ArtistPlays.last_played_at)
            .join(Artist, Artist.id == ArtistPlays.artist_id)
            .where(ArtistPlays.user_id == user_id).order_by(Artist.name_key))).all()
    return [tuple(r) for r in listens], [tuple(r) for r in plays]


async def _catalog(services: Services) -> set[tuple[object, ...]]:
    async with services.session() as s:
        tracks = (await s.execute(select(Track.artist_id, Track.title_key, Track.album_id, Track.title))).all()
        albums = (await s.execute(select(Album.artist_id, Album.title_key))).all()
    return {("track", *t) for t in tracks} | {("album", *a) for a in albums}


async def test_remembered_ids_store_exactly_what_fresh_resolution_stores(services: Services) -> None:
    async with services.session() as s:
        users = await UserRepository(s).ensure_dataset_users("t", ["t:fresh", "t:remembered"])
    fresh, remembered = users["t:fresh"], users["t:remembered"]
    plays = _plays()
    batches = [plays[i:i + 7] for i in range(0, len(plays), 7)]

    for batch in batches:  # no memory: every batch resolves every spelling
        async with services.session() as s:
            first = await ingest_listens(s, fresh, batch)
    catalog = await _catalog(services)

    known = CatalogIds()
    results = []
    for batch in batches:
        async with services.session() as s:
            results.append(await ingest_listens(s, remembered, batch, known))
    assert await _catalog(services) == catalog  # nothing new created, nothing changed
    assert await _state(services, remembered) == await _state(services, fresh)
    assert sum(r.inserted for r in results) == len(plays) - 1 - 3  # the duplicate and the 3 nameless plays
    assert first.skipped == sum(1 for p in batches[-1] if not p.artist.strip())
    assert ("   ", "Nameless", None) in known.ids and known.ids[("   ", "Nameless", None)] is None

    # Re-ingesting with the warm memory adds nothing (idempotent), and the variants are one track each.
    async with services.session() as s:
        again = await ingest_listens(s, remembered, plays, known)
    assert again.inserted == 0
    listens, artist_plays = await _state(services, remembered)
    assert {(a, t) for a, t, *_ in listens} == {
        (artist_key(a), track_key(a, t)) for a, t in [("Radiohead", "Creep"), ("The Beatles", "Let It Be"),
                                                     ("Björk", "Jóga"), ("Daft Punk", "One More Time")]}
    assert sum(p for _, p, _ in artist_plays) == len(listens)


async def test_a_full_memory_starts_over_without_losing_plays(services: Services) -> None:
    async with services.session() as s:
        user = (await UserRepository(s).ensure_dataset_users("t", ["t:small"]))["t:small"]
    known = CatalogIds(limit=2)
    inserted = 0
    stale = ("Nobody", "Nothing", None)
    for n in range(3):
        async with services.session() as s:
            inserted += (await ingest_listens(s, user, _plays(offset_s=10_000 * n), known)).inserted
        assert stale not in known.ids  # from the second batch on: it had outgrown its limit, so it started over
        known.ids[stale] = (10**9, 10**9)  # a marker no catalog row has
    assert inserted == 3 * (len(SPELLINGS) * 3 - 3)
    assert set(known.ids) == {*SPELLINGS, stale}  # refilled with the last batch's spellings (+ the marker)


async def test_concurrent_writers_get_the_same_catalog_ids(services: Services) -> None:
    """Two sessions creating overlapping artists and tracks at once (the raced path of get-or-create)."""
    names = [f"band {i}" for i in range(300)]

    async def writer(offset: int) -> tuple[dict[str, int], dict[tuple[int, str], int]]:
        async with services.session() as s:
            catalog = CatalogRepository(s)
            mine = names[offset:offset + 200]
            artists = await catalog.ensure_artists({"name_key": n, "name": n.title()} for n in mine)
            await asyncio.sleep(0.05)  # hold the transaction open while the other writer runs
            tracks = await catalog.ensure_tracks({"artist_id": artists[n], "title_key": "song", "title": "Song"}
                                                 for n in mine)
            return artists, tracks

    (a1, t1), (a2, t2) = await asyncio.gather(writer(0), writer(100))
    overlap = names[100:200]
    assert all(a1[n] == a2[n] for n in overlap)
    assert all(t1[(a1[n], "song")] == t2[(a2[n], "song")] for n in overlap)
    async with services.session() as s:
        assert len((await s.execute(select(Artist.id))).all()) == 300
        assert len((await s.execute(select(Track.id))).all()) == 300


async def test_one_scrobble_at_minute_and_at_second_precision_is_stored_once(services: Services) -> None:
    """Last.fm's CSV exports stamp scrobbles to the minute, its API to the second: a member imported
    from a CSV who then links Last.fm (or the other way round) must not have every play counted twice."""
    async with services.session() as s:
        csv_first = (await UserRepository(s).get_or_create_discord(901, "csv-first")).id
        api_first = (await UserRepository(s).get_or_create_discord(902, "api-first")).id
    at_minute = RawListen(artist="Radiohead", track="Airbag", album="OK Computer",
                          played_at=datetime(2026, 11, 4, 12, 34, tzinfo=UTC), source="import")
    at_second = RawListen(artist="Radiohead", track="Airbag", album="OK Computer",
                          played_at=datetime(2026, 11, 4, 12, 34, 27, tzinfo=UTC), source="lastfm")
    next_minute = RawListen(artist="Radiohead", track="Airbag", album="OK Computer",  # a real replay
                            played_at=datetime(2026, 11, 4, 12, 35, 27, tzinfo=UTC), source="lastfm")
    for user_id, batches in ((csv_first, ([at_minute], [at_second, next_minute])),
                             (api_first, ([at_second, next_minute], [at_minute]))):
        for batch in batches:
            async with services.session() as s:
                await ingest_listens(s, user_id, batch)
        listens, plays = await _state(services, user_id)
        assert len(listens) == 2, listens
        assert [p[1] for p in plays] == [2]
