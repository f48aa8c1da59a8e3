"""The one path by which listens enter the database, for sync and imports alike.

A batch of raw plays (names as the source spelled them) is resolved to catalog rows by normalised
key (`core.matching`), so the same track from Last.fm and Spotify becomes one row, and then
inserted idempotently. Everything happens in the caller's transaction: a failed batch leaves
nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.repositories import CatalogRepository, ListenRepository
from core.db.repositories.bulk_ingest import pg_bulk_ingest, staged_row
from core.db.repositories.listens import NewListen
from core.matching import album_key, artist_key, track_key

MAX_NAME = 300
MAX_TITLE = 500


class RawListen(NamedTuple):
    """A play as a source reports it.

    A NamedTuple rather than a frozen dataclass: a long history creates millions of these, and
    tuple construction is several times cheaper than frozen-dataclass `__init__`.
    """

    artist: str
    track: str
    played_at: datetime
    source: str
    album: str | None = None
    artist_mbid: str | None = None
    track_mbid: str | None = None
    album_mbid: str | None = None
    track_url: str | None = None
    spotify_track_id: str | None = None


def _clean(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text[:limit] or None


@dataclass(frozen=True)
class IngestResult:
    received: int
    inserted: int
    skipped: int  # rows without usable names


async def ingest_listens(session: AsyncSession, user_id: int, plays: Sequence[RawListen]) -> IngestResult:
    """Resolve names to catalog rows and insert the listens that are new."""
    if session.get_bind().dialect.name == "postgresql":
        return await _ingest_postgresql(session, user_id, plays)
    catalog = CatalogRepository(session)
    usable: list[tuple[RawListen, str, str, str, str | None]] = []
    artists: dict[str, dict[str, object]] = {}
    for play in plays:
        artist = _clean(play.artist, MAX_NAME)
        track = _clean(play.track, MAX_TITLE)
        if not artist or not track:
            continue
        a_key = artist_key(artist)[:MAX_NAME]
        t_key = track_key(artist, track)[:MAX_TITLE]
        if not a_key or not t_key:
            continue
        album = _clean(play.album, MAX_TITLE)
        usable.append((play, a_key, t_key, track, album))
        artists.setdefault(a_key, {"name_key": a_key, "name": artist, "mbid": play.artist_mbid})
    if not usable:
        return IngestResult(len(plays), 0, len(plays))

    artist_ids = await catalog.ensure_artists(artists.values())
    albums: dict[tuple[int, str], dict[str, object]] = {}
    for play, a_key, _t_key, _track, album in usable:
        if album:
            key = album_key(play.artist, album)[:MAX_TITLE]
            if key:
                albums.setdefault((artist_ids[a_key], key), {"artist_id": artist_ids[a_key], "title_key": key,
                                                              "title": album, "mbid": play.album_mbid})
    album_ids = await catalog.ensure_albums(albums.values()) if albums else {}

    tracks: dict[tuple[int, str], dict[str, object]] = {}
    for play, a_key, t_key, track, album in usable:
        artist_id = artist_ids[a_key]
        album_id = album_ids.get((artist_id, album_key(play.artist, album)[:MAX_TITLE])) if album else None
        tracks.setdefault((artist_id, t_key), {
            "artist_id": artist_id, "title_key": t_key, "title": track, "album_id": album_id,
            "mbid": play.track_mbid, "lastfm_url": play.track_url, "spotify_id": play.spotify_track_id})
    track_ids = await catalog.ensure_tracks(tracks.values())

    listens = [NewListen(track_ids[(artist_ids[a_key], t_key)], artist_ids[a_key], play.played_at, play.source)
               for play, a_key, t_key, _track, _album in usable]
    inserted = await ListenRepository(session).add_listens(user_id, listens)
    return IngestResult(len(plays), inserted, len(plays) - len(usable))


async def _ingest_postgresql(session: AsyncSession, user_id: int, plays: Sequence[RawListen]) -> IngestResult:
    """Same resolution rules, executed set-based through COPY (see `bulk_ingest`)."""
    staged = []
    for play in plays:
        artist = _clean(play.artist, MAX_NAME)
        track = _clean(play.track, MAX_TITLE)
        if not artist or not track:
            continue
        a_key = artist_key(artist)[:MAX_NAME]
        t_key = track_key(artist, track)[:MAX_TITLE]
        if not a_key or not t_key:
            continue
        album = _clean(play.album, MAX_TITLE)
        al_key = (album_key(play.artist, album)[:MAX_TITLE] or None) if album else None
        staged.append(staged_row(a_key, artist, play.artist_mbid, al_key, album if al_key else None,
                                 play.album_mbid, t_key, track, play.track_mbid, play.track_url,
                                 play.spotify_track_id, play.played_at, play.source))
    inserted = await pg_bulk_ingest(session, user_id, staged)
    return IngestResult(len(plays), inserted, len(plays) - len(staged))
