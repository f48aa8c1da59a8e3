"""The one path by which listens enter the database, for sync and imports alike.

A batch of raw plays (names as the source spelled them) is resolved to catalog rows by normalised
key (`core.matching`), so the same track from Last.fm and Spotify becomes one row, and then
inserted idempotently. Everything happens in the caller's transaction: a failed batch leaves
nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from core.cleaning import clean_name, clean_token
from core.db.repositories import CatalogRepository, ListenRepository
from core.db.repositories.listens import NewListen
from core.matching import album_key, artist_key, track_key

log = logging.getLogger(__name__)

# Column sizes in core/db/models.py: Artist.name, Track/Album.title, *.mbid, Track.lastfm_url, *.spotify_id.
MAX_NAME = 300
MAX_TITLE = 500
MAX_MBID = 36
MAX_URL = 500
MAX_SPOTIFY_ID = 64
#: How many skipped plays one log line names (the count is always complete).
LOGGED_POSITIONS = 5


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
    position: int | None = None  # line or entry number in an import file; None for API syncs


def catalog_keys(artist: str, track: str) -> tuple[str, str, str, str] | None:
    """(artist, track, artist_key, track_key) exactly as `ingest_listens` stores them, or None when
    the names are unusable. Other writers that look tracks up by key (Spotify ids) use this too."""
    clean_artist = clean_name(artist, MAX_NAME)
    clean_track = clean_name(track, MAX_TITLE)
    if not clean_artist or not clean_track:
        return None
    a_key = artist_key(clean_artist)[:MAX_NAME]
    t_key = track_key(clean_artist, clean_track)[:MAX_TITLE]
    if not a_key or not t_key:
        return None
    return clean_artist, clean_track, a_key, t_key


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
    """Clean names and compute keys once; plays without a usable artist or track are dropped.

    This is THE cleaning step for every source (Last.fm and Spotify sync, every importer): what
    comes out fits its column on both engines (`core.cleaning`).
    """
    out: list[_Resolved] = []
    for play in plays:
        keys = catalog_keys(play.artist, play.track)
        if keys is None:
            continue
        artist, track, a_key, t_key = keys
        album = clean_name(play.album, MAX_TITLE)
        al_key = (album_key(artist, album)[:MAX_TITLE] or None) if album else None
        out.append(_Resolved(play, artist, a_key, track, t_key, album if al_key else None, al_key))
    return out


def _where(play: RawListen) -> str:
    at = f"{play.source} play at {play.played_at.isoformat()}"
    return at if play.position is None else f"{at} (position {play.position})"


def _log_skipped(user_id: int, account_id: int | None, skipped: list[RawListen]) -> None:
    """One line per batch: how many plays had no storable names, and where the first ones were."""
    where = ", ".join(_where(p) for p in skipped[:LOGGED_POSITIONS])
    more = f" and {len(skipped) - LOGGED_POSITIONS} more" if len(skipped) > LOGGED_POSITIONS else ""
    log.warning("skipped %d plays without a usable artist or track name (%s%s)", len(skipped), where, more,
                extra={"user_id": user_id, **({"account_id": account_id} if account_id is not None else {})})


class CatalogIds:
    """What the catalog already said about raw names: (artist, track, album) as the source spelled
    them -> (artist_id, track_id), or None when the play has no usable names.

    Why: a listening history repeats itself (a 1,000,000-play history has ~100k distinct tracks),
    and resolving a play costs name cleaning, key normalisation and catalog round trips. Only the
    first sighting of a spelling pays; later ones are a dict lookup. The ids are exactly what
    resolution would return again (catalog rows are never renamed), so the stored result does not
    change. One instance per sync run; bounded, because a process syncs many users.
    """

    def __init__(self, limit: int = 500_000) -> None:
        self.limit = limit
        self.ids: dict[tuple[str, str, str | None], tuple[int, int] | None] = {}

    def make_room(self) -> None:
        if len(self.ids) > self.limit:
            self.ids.clear()


async def ingest_listens(session: AsyncSession, user_id: int, plays: Sequence[RawListen],
                         known: CatalogIds | None = None, *, account_id: int | None = None) -> IngestResult:
    """Resolve names to catalog rows (creating missing ones) and insert the listens that are new.

    Pass the same `known` for every batch of one sync so repeated spellings skip resolution. A play
    whose names are empty once cleaned is skipped, counted in `skipped` and logged (with
    `account_id` when the caller names it); it never fails the batch.
    """
    known = known if known is not None else CatalogIds()
    known.make_room()
    ids = known.ids
    misses: dict[tuple[str, str, str | None], RawListen] = {}
    for play in plays:
        key = (play.artist, play.track, play.album)
        if key not in ids and key not in misses:
            misses[key] = play
    if misses:
        await _resolve_catalog(session, list(misses.values()), ids)
    rows = []
    skipped: list[RawListen] = []
    for play in plays:
        hit = ids[(play.artist, play.track, play.album)]
        if hit is not None:
            rows.append(NewListen(hit[1], hit[0], play.played_at, play.source))
        else:
            skipped.append(play)
    if skipped:
        _log_skipped(user_id, account_id, skipped)
    inserted = await ListenRepository(session).add_listens(user_id, rows)
    return IngestResult(len(plays), inserted, len(plays) - len(rows))


async def _resolve_catalog(session: AsyncSession, plays: list[RawListen],
                           ids: dict[tuple[str, str, str | None], tuple[int, int] | None]) -> None:
    """Get-or-create the artists, albums and tracks of `plays` (one spelling each) and record each
    spelling's (artist_id, track_id) in `ids`; the first play of a new track names its album."""
    usable = _resolve(plays)
    for play in plays:
        ids[(play.artist, play.track, play.album)] = None
    if not usable:
        return
    catalog = CatalogRepository(session)
    artist_ids = await catalog.ensure_artists(
        {r.artist_key: {"name_key": r.artist_key, "name": r.artist,
                        "mbid": clean_token(r.play.artist_mbid, MAX_MBID)}
         for r in reversed(usable)}.values())
    albums = {(artist_ids[r.artist_key], r.album_key): {
        "artist_id": artist_ids[r.artist_key], "title_key": r.album_key, "title": r.album,
        "mbid": clean_token(r.play.album_mbid, MAX_MBID)}
        for r in reversed(usable) if r.album_key}
    album_ids = await catalog.ensure_albums(albums.values()) if albums else {}
    tracks = {(artist_ids[r.artist_key], r.track_key): {
        "artist_id": artist_ids[r.artist_key], "title_key": r.track_key, "title": r.track,
        "album_id": album_ids.get((artist_ids[r.artist_key], r.album_key)) if r.album_key else None,
        "mbid": clean_token(r.play.track_mbid, MAX_MBID), "lastfm_url": clean_token(r.play.track_url, MAX_URL),
        "spotify_id": clean_token(r.play.spotify_track_id, MAX_SPOTIFY_ID)}
        for r in reversed(usable)}
    track_ids = await catalog.ensure_tracks(tracks.values())
    for r in usable:
        artist_id = artist_ids[r.artist_key]
        ids[(r.play.artist, r.play.track, r.play.album)] = (artist_id, track_ids[(artist_id, r.track_key)])
