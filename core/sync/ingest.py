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


class _Resolved(NamedTuple):
    """A play with cleaned names and its catalog keys (album fields None when it has no album)."""

    play: RawListen
    artist: str
    artist_key: str
    track: str
    track_key: str
    album: str | None
    album_key: str | None


def _resolve(plays: Sequence[RawListen]) -> list[_Resolved]:
    """Clean names and compute keys once; plays without a usable artist or track are dropped."""
    out: list[_Resolved] = []
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
        al_key = (album_key(artist, album)[:MAX_TITLE] or None) if album else None
        out.append(_Resolved(play, artist, a_key, track, t_key, album if al_key else None, al_key))
    return out


async def ingest_listens(session: AsyncSession, user_id: int, plays: Sequence[RawListen]) -> IngestResult:
    """Resolve names to catalog rows and insert the listens that are new."""
    usable = _resolve(plays)
    if not usable:
        return IngestResult(len(plays), 0, len(plays))
    if session.get_bind().dialect.name == "postgresql":
        inserted = await pg_bulk_ingest(session, user_id, [
            staged_row(r.artist_key, r.artist, r.play.artist_mbid, r.album_key, r.album, r.play.album_mbid,
                       r.track_key, r.track, r.play.track_mbid, r.play.track_url, r.play.spotify_track_id,
                       r.play.played_at, r.play.source) for r in usable])
    else:
        inserted = await _ingest_portable(session, user_id, usable)
    return IngestResult(len(plays), inserted, len(plays) - len(usable))


async def _ingest_portable(session: AsyncSession, user_id: int, usable: list[_Resolved]) -> int:
    """Get-or-create artists, albums and tracks by key, then insert the new listens (any engine).
    PostgreSQL takes the set-based COPY path in `bulk_ingest` with the same rules."""
    catalog = CatalogRepository(session)
    artist_ids = await catalog.ensure_artists(
        {r.artist_key: {"name_key": r.artist_key, "name": r.artist, "mbid": r.play.artist_mbid}
         for r in reversed(usable)}.values())
    albums = {(artist_ids[r.artist_key], r.album_key): {
        "artist_id": artist_ids[r.artist_key], "title_key": r.album_key, "title": r.album, "mbid": r.play.album_mbid}
        for r in reversed(usable) if r.album_key}
    album_ids = await catalog.ensure_albums(albums.values()) if albums else {}
    tracks = {(artist_ids[r.artist_key], r.track_key): {
        "artist_id": artist_ids[r.artist_key], "title_key": r.track_key, "title": r.track,
        "album_id": album_ids.get((artist_ids[r.artist_key], r.album_key)) if r.album_key else None,
        "mbid": r.play.track_mbid, "lastfm_url": r.play.track_url, "spotify_id": r.play.spotify_track_id}
        for r in reversed(usable)}
    track_ids = await catalog.ensure_tracks(tracks.values())
    listens = [NewListen(track_ids[(artist_ids[r.artist_key], r.track_key)], artist_ids[r.artist_key],
                         r.play.played_at, r.play.source) for r in usable]
    return await ListenRepository(session).add_listens(user_id, listens)
