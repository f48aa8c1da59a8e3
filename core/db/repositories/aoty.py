"""albumoftheyear.org facts stored in `aoty_albums`, and their link to our own `albums` rows.

AOTY has no API and fronts its site with Cloudflare, so every page we manage to read is kept for
days (`settings.aoty_cache_days`) and is what we serve from; the network is only asked when a row is
missing or stale. Rows are keyed by the page URL (absolute, as `AotyClient` returns it), because
several of our albums (a deluxe edition, a remaster) can resolve to the same AOTY page: the link
that counts is `albums.aoty_url`, and `aoty_albums.album_id` only remembers the first album linked.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Album, Artist
from core.db.models import AotyAlbum as AotyAlbumRow
from core.db.repositories._dialect import upsert_insert
from core.db.types import utcnow
from core.domain import AotyFacts

if TYPE_CHECKING:
    from core.sources.aoty_parse import AotyAlbum

MAX_URL = 500
MAX_TITLE = 500
MAX_NAME = 300


def facts_from_row(row: AotyAlbumRow) -> AotyFacts:
    """The user-facing subset of a stored row; mirrors `AotyAlbum.facts()` (genres already merged)."""
    return AotyFacts(critic_score=row.critic_score, critic_count=row.critic_count, user_score=row.user_score,
                     user_count=row.user_count, url=row.url, must_hear=bool(row.must_hear),
                     genres=tuple(str(g) for g in row.genres or ()))


class AotyRepository:
    """All SQL about `aoty_albums` and `albums.aoty_url`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def is_fresh(row: AotyAlbumRow, max_age_days: int, *, now: datetime | None = None) -> bool:
        """Whether a stored page is recent enough to serve without asking AOTY again.

        Scores move slowly (a few points over weeks), so days-old numbers are fine to show and the
        crawler stays polite.
        """
        return row.fetched_at >= (now or utcnow()) - timedelta(days=max_age_days)

    async def upsert(self, album: AotyAlbum, *, album_id: int | None = None) -> AotyAlbumRow:
        """Insert or refresh the row for `album.url`; returns the stored row.

        Primary and secondary genres are stored together in `genres` (primary first), which is what
        `AotyAlbum.facts()` shows; the distinction only matters for tag weights, written at fetch time.
        """
        values: dict[str, Any] = {
            "url": album.url[:MAX_URL], "artist_name": album.artist[:MAX_NAME], "title": album.title[:MAX_TITLE],
            "critic_score": album.critic_score, "critic_count": album.critic_count,
            "user_score": album.user_score, "user_count": album.user_count, "must_hear": album.must_hear,
            "release_date": album.release_date[:40] if album.release_date else None,
            "genres": list(album.genres + album.secondary_genres), "tags": list(album.tags),
            "similar": [{"url": r.url, "artist": r.artist, "title": r.title} for r in album.similar],
            "tracklist": [asdict(t) for t in album.tracks],
            "fetched_at": album.fetched_at,
        }
        update_values = {k: v for k, v in values.items() if k != "url"}
        stmt = upsert_insert(self.session, AotyAlbumRow).values(album_id=album_id, **values)
        stmt = stmt.on_conflict_do_update(index_elements=["url"], set_=update_values)
        await self.session.execute(stmt)
        if album_id is not None:  # keep the first album linked; never steal another album's link
            await self.session.execute(update(AotyAlbumRow).where(
                AotyAlbumRow.url == values["url"], AotyAlbumRow.album_id.is_(None)).values(album_id=album_id))
        row = await self.by_url(values["url"])
        assert row is not None
        await self.session.refresh(row)  # the ORM identity map may hold the pre-upsert version
        return row

    async def by_url(self, url: str) -> AotyAlbumRow | None:
        stmt = select(AotyAlbumRow).where(AotyAlbumRow.url == url[:MAX_URL])
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_album_id(self, album_id: int) -> AotyAlbumRow | None:
        """The AOTY row for one of our albums: through `albums.aoty_url` first, then the back link."""
        linked = select(AotyAlbumRow).join(Album, Album.aoty_url == AotyAlbumRow.url).where(Album.id == album_id)
        row = (await self.session.execute(linked)).scalars().first()
        if row is None:
            back = select(AotyAlbumRow).where(AotyAlbumRow.album_id == album_id).order_by(AotyAlbumRow.id).limit(1)
            row = (await self.session.execute(back)).scalars().first()
        return row

    async def link(self, album_id: int, url: str) -> None:
        """Point our album at an AOTY page (and the page back at the album if it has no link yet)."""
        await self.session.execute(update(Album).where(Album.id == album_id).values(aoty_url=url[:MAX_URL]))
        await self.session.execute(update(AotyAlbumRow).where(
            AotyAlbumRow.url == url[:MAX_URL], AotyAlbumRow.album_id.is_(None)).values(album_id=album_id))

    async def album_identity(self, album_id: int) -> tuple[str, str, str | None] | None:
        """(artist name, album title, linked AOTY url) of one of our albums: what `resolve` needs."""
        stmt = (select(Artist.name, Album.title, Album.aoty_url).join(Artist, Artist.id == Album.artist_id)
                .where(Album.id == album_id))
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1], row[2])
