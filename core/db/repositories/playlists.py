"""Playlists, their items, and the catalogue reads that playlist building needs.

Why a repository of its own: a playlist is built from *tracks* (most-played tracks of chosen
artists over every listener, minus what the asker wore out), stored as rows, and read back months
later for exports; every one of those statements lives here, as all SQL does (README, "Architecture").
Imported by module path (not re-exported from the package `__init__`, which other teams own).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Album, Artist, Listen, Playlist, PlaylistItem, Track
from core.db.repositories._dialect import chunks

BATCH = 500


@dataclass(frozen=True)
class TrackRow:
    """A catalogue track with what every playlist format and export needs."""

    track_id: int
    artist_id: int
    artist: str
    title: str
    album: str | None
    duration_ms: int | None
    spotify_id: str | None
    lastfm_url: str | None
    plays: int = 0  # listens over all users (ranking only)


@dataclass(frozen=True)
class StoredItem:
    position: int
    track: TrackRow
    reason: str | None


def _track_columns() -> tuple[Any, ...]:
    return (Track.id, Track.artist_id, Artist.name, Track.title, Album.title, Track.duration_ms,
            Track.spotify_id, Track.lastfm_url)


class PlaylistRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- catalogue reads for building --------------------------------------------------------
    async def top_tracks(self, artist_ids: Sequence[int], *, per_artist: int = 5) -> dict[int, list[TrackRow]]:
        """artist id -> its tracks, most listened (over all users) first, at most `per_artist` each.

        Tracks nobody listened to yet (e.g. only known from an import) still count, after the
        played ones, so an artist with catalogue tracks is never left out.
        """
        out: dict[int, list[TrackRow]] = {}
        plays = func.count(Listen.id).label("plays")
        for batch in chunks(sorted(set(artist_ids)), BATCH):
            stmt = (select(*_track_columns(), plays)
                    .join(Artist, Artist.id == Track.artist_id)
                    .outerjoin(Album, Album.id == Track.album_id)
                    .outerjoin(Listen, Listen.track_id == Track.id)
                    .where(Track.artist_id.in_(batch))
                    .group_by(*_track_columns())
                    .order_by(Track.artist_id, plays.desc(), Track.title_key))
            for row in (await self.session.execute(stmt)).all():
                found = out.setdefault(int(row[1]), [])
                if len(found) < per_artist:
                    found.append(_row(row, int(row[8])))
        return out

    async def user_track_plays(self, user_id: int, artist_ids: Iterable[int] | None = None) -> dict[int, int]:
        """track id -> how many times `user_id` played it (only tracks they played)."""
        stmt = (select(Listen.track_id, func.count(Listen.id)).where(Listen.user_id == user_id)
                .group_by(Listen.track_id))
        if artist_ids is not None:
            stmt = stmt.join(Track, Track.id == Listen.track_id).where(Track.artist_id.in_(list(artist_ids)))
        return {int(t): int(n) for t, n in (await self.session.execute(stmt)).all()}

    async def track_by_keys(self, artist_id: int, title_key: str) -> TrackRow | None:
        stmt = (select(*_track_columns()).join(Artist, Artist.id == Track.artist_id)
                .outerjoin(Album, Album.id == Track.album_id)
                .where(Track.artist_id == artist_id, Track.title_key == title_key))
        row = (await self.session.execute(stmt)).first()
        return _row(row) if row is not None else None

    async def set_track_spotify_ids(self, ids: dict[int, str]) -> int:
        """Remember Spotify ids found by search (only where none is stored), for the next export."""
        updated = 0
        for track_id, spotify_id in ids.items():
            result = await self.session.execute(
                update(Track).where(Track.id == track_id, Track.spotify_id.is_(None)).values(spotify_id=spotify_id)
                .execution_options(synchronize_session=False))
            updated += int(result.rowcount or 0)
        return updated

    # --- playlists ------------------------------------------------------------------------------
    async def create(self, *, user_id: int, name: str, origin: str, items: Sequence[tuple[int, str | None]],
                     description: str | None = None, seed: str | None = None,
                     partner_user_id: int | None = None) -> Playlist:
        """Store a playlist and its ordered items (position 0..n-1) in the caller's transaction."""
        playlist = Playlist(user_id=user_id, partner_user_id=partner_user_id, name=name[:200],
                            description=description[:500] if description else None, origin=origin,
                            seed=seed[:300] if seed else None)
        self.session.add(playlist)
        await self.session.flush()
        self.session.add_all(PlaylistItem(playlist_id=playlist.id, position=i, track_id=track_id,
                                          reason=reason[:300] if reason else None)
                             for i, (track_id, reason) in enumerate(items))
        await self.session.flush()
        return playlist

    async def get(self, playlist_id: int) -> Playlist | None:
        return await self.session.get(Playlist, playlist_id)

    async def items(self, playlist_id: int) -> list[StoredItem]:
        stmt = (select(PlaylistItem.position, PlaylistItem.reason, *_track_columns())
                .join(Track, Track.id == PlaylistItem.track_id)
                .join(Artist, Artist.id == Track.artist_id)
                .outerjoin(Album, Album.id == Track.album_id)
                .where(PlaylistItem.playlist_id == playlist_id)
                .order_by(PlaylistItem.position))
        return [StoredItem(int(r[0]), _row(r[2:]), r[1]) for r in (await self.session.execute(stmt)).all()]

    async def set_spotify_playlist_id(self, playlist_id: int, spotify_playlist_id: str | None,
                                      *, expected: str | None = None) -> bool:
        """Compare-and-set: store `spotify_playlist_id` only if the column still holds `expected`
        (None: empty). True when this call changed it, so exactly one export can claim a playlist."""
        column = Playlist.spotify_playlist_id
        current = column.is_(None) if expected is None else column == expected
        result = await self.session.execute(update(Playlist).where(Playlist.id == playlist_id, current)
                                            .values(spotify_playlist_id=spotify_playlist_id and spotify_playlist_id[:64]))
        return result.rowcount == 1


async def release_unfinished_exports(session: AsyncSession, user_id: int) -> int:
    """Give back every Spotify export claim of the user's playlists (a running one, or one that
    remembers a playlist created but not filled): their Spotify account changed or went away, and
    the playlist a claim names belongs to the old account, which the new one may not write to
    (Spotify answers 403). Finished exports keep their link. Returns claims released."""
    result = await session.execute(update(Playlist).where(Playlist.user_id == user_id,
                                                          Playlist.spotify_playlist_id.like("pending:%"))
                                   .values(spotify_playlist_id=None))
    return int(result.rowcount or 0)


def _row(row: Sequence[Any], plays: int = 0) -> TrackRow:
    track_id, artist_id, artist, title, album, duration, spotify_id, url = row[:8]
    return TrackRow(int(track_id), int(artist_id), str(artist), str(title), album, duration, spotify_id, url, plays)
