"""Last.fm's similar-artist / similar-track graphs: what to ask next, and atomic per-item replacement.

Why it looks like this:
- "What to ask next" reads only the server's own listeners' plays (not the base corpus): 17,000
  HetRec artists must not swallow the Last.fm budget that the server's own catalogue needs, and
  most-played first means a partial run already covers what matters most.
- An item's edges and its `similar_fetches` row are written in the caller's one transaction, after
  deleting the old edges: a reader sees the old list or the new one, never half of each. The fetch
  row is written first, so two writers of one item take turns and the last list wins whole.
- A miss (error 6, an empty list) is a `similar_fetches` row without edges, so it is not asked again
  before the refresh interval, exactly like a hit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Artist, ArtistPlays, Listen, SimilarArtist, SimilarFetch, SimilarTrack, Track, User
from core.db.repositories._dialect import chunks, upsert_insert
from core.db.repositories.users import BASE_ORIGIN
from core.db.types import utcnow

BATCH = 500
ItemKind = Literal["artist", "track"]
FetchStatus = Literal["ok", "empty", "not_found"]


@dataclass(frozen=True)
class DueArtist:
    id: int
    name: str
    mbid: str | None


@dataclass(frozen=True)
class DueTrack:
    id: int
    artist: str
    title: str
    mbid: str | None


@dataclass(frozen=True)
class FetchState:
    status: FetchStatus
    edges: int
    fetched_at: datetime


def own_listener() -> Any:
    """The SQL condition "this listener is the server's own" (a member, or someone imported on
    purpose), as opposed to the base corpus, whose 17,000 artists must not spend the Last.fm budget."""
    return User.origin != BASE_ORIGIN


class SimilarGraphRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- what to ask next ------------------------------------------------------------------------

    def _not_fresh(self, kind: ItemKind, item_id: Any, stale_before: datetime) -> Any:
        fresh = (select(SimilarFetch.item_id)
                 .where(SimilarFetch.item_kind == kind, SimilarFetch.item_id == item_id,
                        SimilarFetch.fetched_at >= stale_before).exists())
        return ~fresh

    async def artists_due(self, stale_before: datetime, *, limit: int,
                          skip: Iterable[int] = ()) -> list[DueArtist]:
        """Artists the server's own listeners play whose graph was never fetched or is older than
        `stale_before`, most-played first. `skip`: ids this run already tried (and failed) on."""
        plays = func.sum(ArtistPlays.plays).label("plays")
        stmt = (select(Artist.id, Artist.name, Artist.mbid, plays)
                .join(ArtistPlays, ArtistPlays.artist_id == Artist.id)
                .join(User, User.id == ArtistPlays.user_id)
                .where(own_listener(), ArtistPlays.plays > 0, self._not_fresh("artist", Artist.id, stale_before))
                .group_by(Artist.id, Artist.name, Artist.mbid)
                .order_by(plays.desc(), Artist.id).limit(limit))
        skipped = list(skip)
        if skipped:
            stmt = stmt.where(Artist.id.not_in(skipped))
        return [DueArtist(i, n, m) for i, n, m, _ in (await self.session.execute(stmt)).all()]

    async def tracks_due(self, stale_before: datetime, *, limit: int, skip: Iterable[int] = ()) -> list[DueTrack]:
        """Tracks the server's own listeners have played, most-played first, whose similar list is missing or stale."""
        plays = func.count(Listen.id).label("plays")
        stmt = (select(Track.id, Artist.name, Track.title, Track.mbid, plays)
                .join(Listen, Listen.track_id == Track.id)
                .join(User, User.id == Listen.user_id)
                .join(Artist, Artist.id == Track.artist_id)
                .where(own_listener(), self._not_fresh("track", Track.id, stale_before))
                .group_by(Track.id, Artist.name, Track.title, Track.mbid)
                .order_by(plays.desc(), Track.id).limit(limit))
        skipped = list(skip)
        if skipped:
            stmt = stmt.where(Track.id.not_in(skipped))
        return [DueTrack(i, a, t, m) for i, a, t, m, _ in (await self.session.execute(stmt)).all()]

    async def fetch_state(self, kind: ItemKind, item_id: int) -> FetchState | None:
        row = await self.session.get(SimilarFetch, (kind, item_id))
        return None if row is None else FetchState(row.status, row.edges, row.fetched_at)  # type: ignore[arg-type]

    async def coverage(self, kind: ItemKind = "artist") -> dict[str, int]:
        """Fetch outcomes by status (for logs, the CLI and tests)."""
        stmt = (select(SimilarFetch.status, func.count()).where(SimilarFetch.item_kind == kind)
                .group_by(SimilarFetch.status))
        return {status: int(n) for status, n in (await self.session.execute(stmt)).all()}

    # --- writing -----------------------------------------------------------------------------------

    async def _replace(self, model: Any, source_col: str, target_col: str, kind: ItemKind, item_id: int,
                       edges: Mapping[int, float], status: FetchStatus, now: datetime) -> int:
        rows = [{source_col: item_id, target_col: other, "match": float(match), "fetched_at": now}
                for other, match in edges.items() if other != item_id and 0.0 < match <= 1.0]
        # The fetch row first: its upsert locks it until commit, so a second writer of this item waits
        # here, and its DELETE (a new snapshot under READ COMMITTED) then sees and removes our edges.
        # Deleting first, it would miss our uncommitted rows and store the union of both lists.
        insert = upsert_insert(self.session, SimilarFetch)
        await self.session.execute(insert.values(item_kind=kind, item_id=item_id, status=status, edges=len(rows),
                                                 fetched_at=now).on_conflict_do_update(
            index_elements=["item_kind", "item_id"],
            set_={"status": status, "edges": len(rows), "fetched_at": now}))
        await self.session.execute(delete(model).where(getattr(model, source_col) == item_id))
        for batch in chunks(rows, BATCH):
            await self.session.execute(upsert_insert(self.session, model).on_conflict_do_nothing(), batch)
        return len(rows)

    async def replace_artist_edges(self, artist_id: int, edges: Mapping[int, float], status: FetchStatus,
                                   now: datetime | None = None) -> int:
        """Replace one artist's similar list and record the fetch; returns the edges stored.

        Self-loops and matches outside (0, 1] are dropped (Last.fm sends "0" for far neighbours)."""
        return await self._replace(SimilarArtist, "artist_id", "similar_artist_id", "artist", artist_id, edges,
                                   status, now or utcnow())

    async def replace_track_edges(self, track_id: int, edges: Mapping[int, float], status: FetchStatus,
                                  now: datetime | None = None) -> int:
        return await self._replace(SimilarTrack, "track_id", "similar_track_id", "track", track_id, edges,
                                   status, now or utcnow())

    # --- reading -----------------------------------------------------------------------------------

    async def _graph(self, source: Any, target: Any, match: Any) -> dict[int, dict[int, float]]:
        out: dict[int, dict[int, float]] = {}
        for a, b, m in (await self.session.execute(select(source, target, match))).all():
            out.setdefault(int(a), {})[int(b)] = float(m)
        return out

    async def artist_graph(self) -> dict[int, dict[int, float]]:
        """artist id -> {similar artist id: match}: the recommender's graph input."""
        return await self._graph(SimilarArtist.artist_id, SimilarArtist.similar_artist_id, SimilarArtist.match)

    async def track_graph(self) -> dict[int, dict[int, float]]:
        """track id -> {similar track id: match} (track.getSimilar)."""
        return await self._graph(SimilarTrack.track_id, SimilarTrack.similar_track_id, SimilarTrack.match)

    async def artist_neighbours(self, artist_id: int, limit: int = 100) -> list[tuple[Artist, float]]:
        """An artist's stored similar artists, best match first."""
        stmt = (select(Artist, SimilarArtist.match)
                .join(SimilarArtist, and_(SimilarArtist.similar_artist_id == Artist.id,
                                          SimilarArtist.artist_id == artist_id))
                .order_by(SimilarArtist.match.desc(), Artist.id).limit(limit))
        return [(a, float(m)) for a, m in (await self.session.execute(stmt)).all()]

    async def artist_ids_by_mbid(self, mbids: Iterable[str]) -> dict[str, int]:
        """mbid -> artist id, for the mbids we hold (the lowest id wins if two rows share one)."""
        out: dict[str, int] = {}
        for batch in chunks(sorted({m for m in mbids if m}), BATCH):
            stmt = select(Artist.mbid, Artist.id).where(Artist.mbid.in_(batch)).order_by(Artist.id.desc())
            out.update({m: i for m, i in (await self.session.execute(stmt)).all() if m})
        return out
