"""Listens and the per-user artist play counts derived from them.

`add_listens` is the idempotency point of the whole sync engine: listens are inserted with
ON CONFLICT DO NOTHING on (user, played_at, track) and only the rows actually inserted (RETURNING)
increment `artist_plays`, so re-running a page changes nothing. One play stamped at two precisions
(Last.fm's CSV exports to the minute, its API to the second) is one play too: see `_without_minute_twins`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Artist, ArtistPlays, Listen, Track
from core.db.repositories._dialect import chunks, upsert_insert
from core.db.repositories.bulk_ingest import pg_copy_listens

BATCH = 1000


class NewListen(NamedTuple):
    """A resolved play to insert (a NamedTuple: sync builds millions, and COPY takes tuples as-is)."""

    track_id: int
    artist_id: int
    played_at: datetime
    source: str


@dataclass(frozen=True)
class PlayRow:
    user_id: int
    artist_id: int
    plays: int
    last_played_at: datetime | None


@dataclass(frozen=True)
class ArtistReach:
    """An artist's reach among a group of listeners: how many of them play it, and how much."""

    artist_id: int
    name: str
    url: str | None
    listeners: int
    plays: int


class ListenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_listens(self, user_id: int, listens: Sequence[NewListen]) -> int:
        """Insert listens that are not stored yet; returns how many were new.

        PostgreSQL takes the COPY path in `bulk_ingest` (same rules, one statement per batch).
        """
        listens = await self._without_minute_twins(user_id, listens)
        if self.session.get_bind().dialect.name == "postgresql":
            return await pg_copy_listens(self.session, user_id, listens)
        artist_of = {lst.track_id: lst.artist_id for lst in listens}
        new_by_artist: dict[int, list[datetime]] = defaultdict(list)
        inserted = 0
        for batch in chunks(list(listens), BATCH):
            stmt = (upsert_insert(self.session, Listen)
                    .on_conflict_do_nothing(index_elements=["user_id", "played_at", "track_id"])
                    .returning(Listen.track_id, Listen.played_at))
            params = [{"user_id": user_id, "track_id": x.track_id, "played_at": x.played_at, "source": x.source}
                      for x in batch]
            for track_id, played_at in (await self.session.execute(stmt, params)).all():
                new_by_artist[artist_of[track_id]].append(played_at)
                inserted += 1
        if new_by_artist:
            await self._bump_artist_plays(user_id, new_by_artist)
        return inserted

    async def _without_minute_twins(self, user_id: int, listens: Sequence[NewListen]) -> Sequence[NewListen]:
        """Leave out plays already stored at the other precision: same track, same UTC minute, one of
        the two stamped on the minute exactly (a CSV export's "04 Dec 2026 12:34" and the API's
        12:34:27 are one scrobble). Two real plays of one track within one minute do not happen.
        One indexed range read per batch, on the (user, played_at, track) key."""
        if not listens:
            return listens
        minutes = [_minute(x.played_at) for x in listens]
        stmt = (select(Listen.track_id, Listen.played_at)
                .where(Listen.user_id == user_id, Listen.played_at >= min(minutes),
                       Listen.played_at < max(minutes) + timedelta(minutes=1),
                       Listen.track_id.in_({x.track_id for x in listens})))
        stored: dict[tuple[int, datetime], list[datetime]] = defaultdict(list)
        for track_id, played_at in (await self.session.execute(stmt)).all():
            at = _utc(played_at)
            stored[(track_id, _minute(at))].append(at)
        if not stored:
            return listens
        kept = []
        for x, minute in zip(listens, minutes, strict=True):
            at = _utc(x.played_at)
            twin = any(other != at and (_on_the_minute(other) or _on_the_minute(at))
                       for other in stored.get((x.track_id, minute), ()))
            if not twin:
                kept.append(x)
        return kept

    async def _bump_artist_plays(self, user_id: int, new_by_artist: dict[int, list[datetime]]) -> None:
        rows = [{"user_id": user_id, "artist_id": a, "plays": len(times), "last_played_at": max(times)}
                for a, times in new_by_artist.items()]
        for batch in chunks(rows, BATCH):
            insert = upsert_insert(self.session, ArtistPlays)
            excluded = insert.excluded
            await self.session.execute(insert.on_conflict_do_update(
                index_elements=["user_id", "artist_id"],
                set_={"plays": ArtistPlays.plays + excluded.plays,
                      "last_played_at": func.coalesce(
                          _greatest(self.session, ArtistPlays.last_played_at, excluded.last_played_at),
                          excluded.last_played_at)},
            ), batch)

    async def set_artist_plays(self, rows: Sequence[PlayRow]) -> int:
        """Store aggregated play counts from an import; re-importing replaces, never doubles."""
        payload = [{"user_id": r.user_id, "artist_id": r.artist_id, "plays": r.plays,
                    "last_played_at": r.last_played_at} for r in rows]
        for batch in chunks(payload, BATCH):
            insert = upsert_insert(self.session, ArtistPlays)
            await self.session.execute(insert.on_conflict_do_update(
                index_elements=["user_id", "artist_id"],
                set_={"plays": insert.excluded.plays, "last_played_at": insert.excluded.last_played_at}), batch)
        return len(payload)

    async def all_artist_plays(self) -> list[PlayRow]:
        """Every (user, artist, plays, last played) row: the training input at artist level."""
        rows = await self.session.execute(select(ArtistPlays.user_id, ArtistPlays.artist_id, ArtistPlays.plays,
                                                 ArtistPlays.last_played_at))
        return [PlayRow(*row) for row in rows.all()]

    async def plays_fingerprint(self) -> tuple[int, int, str | None]:
        """(rows, total plays, newest last-played) of all per-artist play counts.

        Why: one cheap aggregate that changes whenever listens are added, imported or forgotten, so
        an in-memory artifact built from `all_artist_plays` (the compatibility space) can tell it is
        stale without reloading everything.
        """
        stmt = select(func.count(), func.coalesce(func.sum(ArtistPlays.plays), 0), func.max(ArtistPlays.last_played_at))
        rows, plays, newest = (await self.session.execute(stmt)).one()
        return int(rows), int(plays), None if newest is None else str(newest)

    async def users_with_plays(self, user_ids: Sequence[int]) -> set[int]:
        """Which of `user_ids` have any per-artist plays (a history to compare)."""
        out: set[int] = set()
        for batch in chunks(sorted(set(user_ids)), BATCH):
            stmt = (select(ArtistPlays.user_id).where(ArtistPlays.user_id.in_(batch), ArtistPlays.plays > 0)
                    .distinct())
            out.update((await self.session.execute(stmt)).scalars())
        return out

    async def user_artist_plays(self, user_id: int) -> list[PlayRow]:
        rows = await self.session.execute(
            select(ArtistPlays.user_id, ArtistPlays.artist_id, ArtistPlays.plays, ArtistPlays.last_played_at)
            .where(ArtistPlays.user_id == user_id))
        return [PlayRow(*row) for row in rows.all()]

    async def count_listens(self, user_id: int) -> int:
        stmt = select(func.count()).select_from(Listen).where(Listen.user_id == user_id)
        return int((await self.session.execute(stmt)).scalar_one())

    async def count_artists(self, user_id: int) -> int:
        """Distinct artists the user has played (from the per-artist play counts)."""
        stmt = (select(func.count()).select_from(ArtistPlays)
                .where(ArtistPlays.user_id == user_id, ArtistPlays.plays > 0))
        return int((await self.session.execute(stmt)).scalar_one())

    async def total_plays(self, user_id: int) -> int:
        stmt = select(func.coalesce(func.sum(ArtistPlays.plays), 0)).where(ArtistPlays.user_id == user_id)
        return int((await self.session.execute(stmt)).scalar_one())

    async def latest_played_at(self, user_id: int, source: str | None = None) -> datetime | None:
        stmt = select(func.max(Listen.played_at)).where(Listen.user_id == user_id)
        if source:
            stmt = stmt.where(Listen.source == source)
        value = (await self.session.execute(stmt)).scalar_one()
        if value is not None and value.tzinfo is None:  # func.max bypasses the column type on SQLite
            from datetime import UTC
            value = value.replace(tzinfo=UTC)
        return value

    async def top_artists(self, user_id: int, since: datetime | None, limit: int = 10) -> list[tuple[str, int]]:
        """A user's most played artists, all time (from play counts) or since a date (from listens)."""
        if since is None:
            stmt = (select(Artist.name, ArtistPlays.plays).join(Artist, Artist.id == ArtistPlays.artist_id)
                    .where(ArtistPlays.user_id == user_id).order_by(ArtistPlays.plays.desc(), Artist.name)
                    .limit(limit))
        else:
            plays = func.count(Listen.id).label("plays")
            stmt = (select(Artist.name, plays).select_from(Listen).join(Track, Track.id == Listen.track_id)
                    .join(Artist, Artist.id == Track.artist_id)
                    .where(Listen.user_id == user_id, Listen.played_at >= since)
                    .group_by(Artist.id, Artist.name).order_by(plays.desc(), Artist.name).limit(limit))
        return [(name, int(n)) for name, n in (await self.session.execute(stmt)).all()]

    async def who_knows(self, artist_id: int, user_ids: Sequence[int], limit: int = 15) -> list[tuple[int, int]]:
        """(user id, plays) of the given users who listen to `artist_id`, most plays first."""
        if not user_ids:
            return []
        stmt = (select(ArtistPlays.user_id, ArtistPlays.plays)
                .where(ArtistPlays.artist_id == artist_id, ArtistPlays.user_id.in_(list(user_ids)),
                       ArtistPlays.plays > 0)
                .order_by(ArtistPlays.plays.desc(), ArtistPlays.user_id).limit(limit))
        return [(u, int(p)) for u, p in (await self.session.execute(stmt)).all()]

    async def artists_played_by(self, user_ids: Sequence[int], exclude_artist_ids: Sequence[int] = (),
                                limit: int = 10) -> list[ArtistReach]:
        """Artists the given users play, most shared first (then most played), minus exclusions."""
        if not user_ids:
            return []
        listeners = func.count(ArtistPlays.user_id).label("listeners")
        plays = func.sum(ArtistPlays.plays).label("plays")
        stmt = (select(Artist.id, Artist.name, Artist.lastfm_url, listeners, plays)
                .join(Artist, Artist.id == ArtistPlays.artist_id)
                .where(ArtistPlays.user_id.in_(list(user_ids)), ArtistPlays.plays > 0)
                .group_by(Artist.id, Artist.name, Artist.lastfm_url)
                .order_by(listeners.desc(), plays.desc(), Artist.name).limit(limit))
        if exclude_artist_ids:
            stmt = stmt.where(ArtistPlays.artist_id.not_in(list(exclude_artist_ids)))
        return [ArtistReach(a, n, u, int(c), int(p)) for a, n, u, c, p in (await self.session.execute(stmt)).all()]


def _greatest(session: AsyncSession, a, b):  # type: ignore[no-untyped-def]
    """GREATEST on PostgreSQL, MAX(a, b) on SQLite (both return NULL if either side is NULL)."""
    name = session.get_bind().dialect.name
    return func.greatest(a, b) if name == "postgresql" else func.max(a, b)


def _utc(moment: datetime) -> datetime:
    """Stored times come back naive on SQLite (they are UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _minute(moment: datetime) -> datetime:
    return _utc(moment).replace(second=0, microsecond=0)


def _on_the_minute(moment: datetime) -> bool:
    return moment.second == 0 and moment.microsecond == 0
