"""Facts public sources give about catalogue items: global listener counts and cover art.

Kept apart from `CatalogRepository` (identity: names, keys, tags) because these facts age and are
refreshed on a schedule: each row records when it was last checked, found or not, so a refresh run
spends its request budget on what is missing or stale, most-played first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Album, Artist, ArtistPlays, Listen, PlaylistItem, Track
from core.db.types import utcnow

#: Bind-parameter batches stay well under SQLite's and PostgreSQL's limits.
BATCH = 500


class PublicFactsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def artists_to_count(self, *, stale_before: datetime, limit: int) -> list[tuple[int, str, str | None]]:
        """(id, name, mbid) of artists whose global listeners are unknown or older than
        `stale_before`, most-played (over all users) first: those are the ones people are shown."""
        plays = (select(ArtistPlays.artist_id, func.sum(ArtistPlays.plays).label("plays"))
                 .group_by(ArtistPlays.artist_id).subquery())
        stmt = (select(Artist.id, Artist.name, Artist.mbid).outerjoin(plays, plays.c.artist_id == Artist.id)
                .where(or_(Artist.listeners_checked_at.is_(None), Artist.listeners_checked_at < stale_before))
                .order_by(func.coalesce(plays.c.plays, 0).desc(), Artist.id).limit(limit))
        return [(r[0], r[1], r[2]) for r in (await self.session.execute(stmt)).all()]

    async def save_listeners(self, counts: Mapping[int, int | None]) -> None:
        """Store global listeners per artist id (None = Last.fm had no number: checked, unknown)."""
        now = utcnow()
        for artist_id, listeners in counts.items():
            await self.session.execute(update(Artist).where(Artist.id == artist_id)
                                       .values(lastfm_listeners=listeners, listeners_checked_at=now))

    async def listeners(self, artist_ids: Iterable[int]) -> dict[int, int]:
        """Global listeners of the given artists, where known."""
        ids = list(dict.fromkeys(artist_ids))
        out: dict[int, int] = {}
        for start in range(0, len(ids), BATCH):
            stmt = select(Artist.id, Artist.lastfm_listeners).where(
                Artist.id.in_(ids[start:start + BATCH]), Artist.lastfm_listeners.is_not(None))
            out.update({r[0]: int(r[1]) for r in (await self.session.execute(stmt)).all()})
        return out

    async def albums_without_cover(self, *, stale_before: datetime, limit: int
                                   ) -> list[tuple[int, str, str, str | None]]:
        """(album id, artist name, album title, mbid) of albums with no cover that were not looked up
        since `stale_before`, most-listened first (then the ones in playlists)."""
        listens = (select(Track.album_id, func.count(Listen.id).label("n")).join(Listen, Listen.track_id == Track.id)
                   .where(Track.album_id.is_not(None)).group_by(Track.album_id).subquery())
        listed = (select(Track.album_id, func.count(PlaylistItem.track_id).label("n"))
                  .join(PlaylistItem, PlaylistItem.track_id == Track.id)
                  .where(Track.album_id.is_not(None)).group_by(Track.album_id).subquery())
        stmt = (select(Album.id, Artist.name, Album.title, Album.mbid).join(Artist, Artist.id == Album.artist_id)
                .outerjoin(listens, listens.c.album_id == Album.id).outerjoin(listed, listed.c.album_id == Album.id)
                .where(Album.image_url.is_(None),
                       or_(Album.image_checked_at.is_(None), Album.image_checked_at < stale_before))
                .order_by(func.coalesce(listens.c.n, 0).desc(), func.coalesce(listed.c.n, 0).desc(), Album.id)
                .limit(limit))
        return [(r[0], r[1], r[2], r[3]) for r in (await self.session.execute(stmt)).all()]

    async def save_covers(self, covers: Mapping[int, str | None]) -> None:
        """Store cover URLs per album id (None = none found; only the look-up time is recorded).

        A cover already set (e.g. from AOTY) is never replaced by a miss."""
        now = utcnow()
        for album_id, url in covers.items():
            values: dict[str, object] = {"image_checked_at": now}
            if url:
                values["image_url"] = url[:500]
            await self.session.execute(update(Album).where(Album.id == album_id).values(**values))

    async def set_cover_if_missing(self, album_id: int, url: str | None) -> None:
        """Use a cover from another source (AOTY) when Last.fm gave none yet."""
        if not url:
            return
        await self.session.execute(update(Album).where(Album.id == album_id, Album.image_url.is_(None))
                                   .values(image_url=url[:500], image_checked_at=utcnow()))

    async def track_covers(self, track_ids: Iterable[int]) -> dict[int, str]:
        """track id -> its album's cover URL, for tracks whose album has one."""
        ids = list(dict.fromkeys(track_ids))
        out: dict[int, str] = {}
        for start in range(0, len(ids), BATCH):
            stmt = (select(Track.id, Album.image_url).join(Album, Album.id == Track.album_id)
                    .where(Track.id.in_(ids[start:start + BATCH]), Album.image_url.is_not(None)))
            out.update({r[0]: r[1] for r in (await self.session.execute(stmt)).all() if r[1]})
        return out

    async def listener_cover(self, user_id: int, artist_names: Iterable[str]) -> str | None:
        """A cover for a listener's top list: of the first of `artist_names` (best first) that has
        one, the album with a known cover this listener played most."""
        for name in artist_names:
            stmt = (select(Album.image_url).join(Track, Track.album_id == Album.id)
                    .join(Listen, Listen.track_id == Track.id).join(Artist, Artist.id == Album.artist_id)
                    .where(Listen.user_id == user_id, Artist.name == name, Album.image_url.is_not(None))
                    .group_by(Album.id, Album.image_url).order_by(func.count(Listen.id).desc(), Album.id).limit(1))
            found = (await self.session.execute(stmt)).scalar_one_or_none()
            if found:
                return str(found)
        return None
