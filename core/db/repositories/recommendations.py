"""What the recommender serves and hears back: shown items, thumbs up/down, item-level plays and names.

Why a repository of its own: the serving layer needs, at request time and in a handful of queries,
everything that makes a list personal *now* (per-album/track play aggregates, feedback, what was
shown inside the no-repeat window), and every SQL statement lives in this package (README, "Architecture").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, cast, func, insert, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import (
    Album,
    AotyAlbum,
    Artist,
    ArtistPlays,
    Feedback,
    Listen,
    RecommendationShown,
    Tag,
    Track,
    UserSettings,
)
from core.db.repositories._dialect import chunks, upsert_insert
from core.db.types import utcnow

BATCH = 500


@dataclass(frozen=True)
class ItemPlayRow:
    """Plays of one item (artist, album or track) by one user, with the item's artist for caps."""

    user_id: int
    item_id: int
    plays: int
    last_played_at: datetime | None
    artist_id: int


@dataclass(frozen=True)
class ItemInfo:
    """Display facts of a catalogue item: name, its artist (albums/tracks), links and cover art."""

    item_id: int
    name: str
    artist: str | None
    url: str | None
    image_url: str | None
    listeners: int | None = None  # the (item's) artist's global listeners on Last.fm, when known


@dataclass
class Steering:
    """A member's votes (item id -> ±1), items shown inside the repeat window, and /tune settings
    (None when never set)."""

    votes: dict[int, int]
    shown: set[int]
    discovery: float | None = None
    preferences: dict[str, Any] | None = None


@dataclass(frozen=True)
class ShownRow:
    id: int
    user_id: int
    item_kind: str
    item_id: int
    context: str
    evidence: dict[str, Any] | None
    model_version: str | None
    shown_at: datetime


# The reads on the /recommend path select from the Core tables (`Model.__table__.c`), not the ORM
# attributes: the rows are plain tuples either way, but an ORM-flavoured statement goes through the
# ORM's compile and loading steps, ~0.15 ms of CPU more per statement (measured on SQLite).
_PLAYS = ArtistPlays.__table__.c
_ARTISTS = Artist.__table__.c
_FEEDBACK = Feedback.__table__.c
_SHOWN = RecommendationShown.__table__.c
_SETTINGS = UserSettings.__table__.c

# The statements of every /recommend, built once with bound parameters. Why: building a select
# (coercing each clause) and deriving its cache key cost ~0.1 ms of CPU per statement, every time;
# a statement object built once keeps its cache key (SQLAlchemy memoizes it), so each execution
# only binds values (measured: ~35 % less CPU per statement on SQLite).
_ARTIST_PLAYS = select(_PLAYS.user_id, _PLAYS.artist_id, _PLAYS.plays, _PLAYS.last_played_at,
                       _PLAYS.artist_id).where(_PLAYS.plays > 0)
_ARTIST_PLAYS_OF = _ARTIST_PLAYS.where(_PLAYS.user_id == bindparam("user_id"))
_ARTIST_INFO = select(_ARTISTS.id, _ARTISTS.name, _ARTISTS.lastfm_url, _ARTISTS.image_url,
                      _ARTISTS.lastfm_listeners).where(_ARTISTS.id.in_(bindparam("ids", expanding=True)))
_FEEDBACK_OF = select(_FEEDBACK.item_id, _FEEDBACK.value).where(
    _FEEDBACK.user_id == bindparam("user_id"), _FEEDBACK.item_kind == bindparam("item_kind"))
#: Everything a new list steers by, in one statement instead of three: the member's /tune settings
#: (the row with no item: discovery, preferences; none when never set, and nothing is created), their
#: votes (value ±1) and, as value 0, what they were shown since a time. The settings come first so
#: that their column types (JSON preferences) are the result's. PostgreSQL wants the NULLs typed, and
#: shown items grouped rather than DISTINCT (json has no equality operator).
_NO_ITEM, _NO_VOTE = cast(null(), _FEEDBACK.item_id.type), cast(null(), _FEEDBACK.value.type)
_NO_DISCOVERY, _NO_PREFERENCES = cast(null(), _SETTINGS.discovery.type), cast(null(), _SETTINGS.preferences.type)
_STEERING = union_all(
    select(_NO_ITEM, _NO_VOTE, _SETTINGS.discovery, _SETTINGS.preferences).where(
        _SETTINGS.user_id == bindparam("user_id")),
    select(_FEEDBACK.item_id, _FEEDBACK.value, _NO_DISCOVERY, _NO_PREFERENCES).where(
        _FEEDBACK.user_id == bindparam("user_id"), _FEEDBACK.item_kind == bindparam("item_kind")),
    select(_SHOWN.item_id, literal(0), _NO_DISCOVERY, _NO_PREFERENCES).where(
        _SHOWN.user_id == bindparam("user_id"), _SHOWN.item_kind == bindparam("item_kind"),
        _SHOWN.shown_at >= bindparam("since")).group_by(_SHOWN.item_id))
_RECORD_SHOWN = insert(RecommendationShown.__table__).returning(_SHOWN.id, _SHOWN.rank)


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates (MAX) bypass the column type on SQLite and come back naive: re-attach UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class RecommendationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- plays at every granularity -----------------------------------------------------------
    def _plays_stmt(self, kind: str) -> Any:
        if kind == "artist":
            return _ARTIST_PLAYS
        column = Track.album_id if kind == "album" else Track.id
        stmt = (select(Listen.user_id, column, func.count(Listen.id), func.max(Listen.played_at), Track.artist_id)
                .join(Track, Track.id == Listen.track_id)
                .group_by(Listen.user_id, column, Track.artist_id))
        if kind == "album":
            stmt = stmt.where(Track.album_id.is_not(None))
        return stmt

    async def item_plays(self, kind: str, user_id: int | None = None) -> list[ItemPlayRow]:
        """(user, item, plays, last played, artist) for artists (stored counts) or albums/tracks
        (aggregated from individual listens); all users when `user_id` is None (training input)."""
        if kind == "artist" and user_id is not None:
            rows = (await self.session.execute(_ARTIST_PLAYS_OF, {"user_id": user_id})).all()
        else:
            stmt = self._plays_stmt(kind)
            if user_id is not None:
                stmt = stmt.where(Listen.user_id == user_id)
            rows = (await self.session.execute(stmt)).all()
        return [ItemPlayRow(int(u), int(i), int(p), _aware(t), int(a)) for u, i, p, t, a in rows]

    async def has_item_plays(self, kind: str) -> bool:
        stmt = self._plays_stmt(kind).limit(1)
        return (await self.session.execute(stmt)).first() is not None

    # --- names, links and facts -----------------------------------------------------------------
    async def item_info(self, kind: str, ids: Iterable[int]) -> dict[int, ItemInfo]:
        wanted = sorted(set(ids))
        out: dict[int, ItemInfo] = {}
        for batch in chunks(wanted, BATCH):
            if kind == "artist":
                rows = (await self.session.execute(_ARTIST_INFO, {"ids": list(batch)})).all()
                out.update({i: ItemInfo(i, n, None, u, img, lis) for i, n, u, img, lis in rows})
            elif kind == "album":
                stmt = (select(Album.id, Album.title, Artist.name, Album.lastfm_url, Album.image_url,
                               Artist.lastfm_listeners)
                        .join(Artist, Artist.id == Album.artist_id).where(Album.id.in_(batch)))
                out.update({i: ItemInfo(i, t, a, u, img, lis)
                            for i, t, a, u, img, lis in (await self.session.execute(stmt)).all()})
            else:
                stmt = (select(Track.id, Track.title, Artist.name, Track.lastfm_url, Album.image_url,
                               Artist.lastfm_listeners)
                        .join(Artist, Artist.id == Track.artist_id).outerjoin(Album, Album.id == Track.album_id)
                        .where(Track.id.in_(batch)))
                out.update({i: ItemInfo(i, t, a, u, img, lis)
                            for i, t, a, u, img, lis in (await self.session.execute(stmt)).all()})
        return out

    async def aoty_for_albums(self, album_ids: Iterable[int]) -> dict[int, AotyAlbum]:
        """The AOTY page matched to each album, when one was fetched."""
        out: dict[int, AotyAlbum] = {}
        for batch in chunks(sorted(set(album_ids)), BATCH):
            stmt = select(AotyAlbum).where(AotyAlbum.album_id.in_(batch))
            out.update({a.album_id: a for a in (await self.session.execute(stmt)).scalars() if a.album_id})
        return out

    async def album_tags_from_aoty(self) -> dict[int, dict[str, float]]:
        """Album id -> {genre: 1} from matched AOTY pages (the curated genre source for albums)."""
        stmt = select(AotyAlbum.album_id, AotyAlbum.genres).where(AotyAlbum.album_id.is_not(None))
        return {int(a): {str(g): 1.0 for g in (genres or [])} for a, genres in (await self.session.execute(stmt)).all()}

    async def search_tags(self, prefix: str, limit: int = 25) -> list[str]:
        """Autocomplete over known tag names (stored lower-cased)."""
        stmt = (select(Tag.name).where(Tag.name.startswith(prefix.strip().lower(), autoescape=True))
                .order_by(func.length(Tag.name), Tag.name).limit(limit))
        return list((await self.session.execute(stmt)).scalars())

    async def tag_names(self, limit: int = 500) -> list[str]:
        stmt = select(Tag.name).order_by(Tag.name).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    # --- feedback ---------------------------------------------------------------------------------
    async def set_feedback(self, user_id: int, item_kind: str, item_id: int, value: int) -> None:
        """Upsert the user's vote on an item (±1); a new vote replaces the old one."""
        if value not in (-1, 1):
            raise ValueError("feedback value must be +1 or -1")
        insert = upsert_insert(self.session, Feedback).values(
            user_id=user_id, item_kind=item_kind, item_id=item_id, value=value, created_at=utcnow())
        await self.session.execute(insert.on_conflict_do_update(
            index_elements=["user_id", "item_kind", "item_id"],
            set_={"value": insert.excluded.value, "created_at": insert.excluded.created_at}))

    async def feedback(self, user_id: int, item_kind: str) -> dict[int, int]:
        """Item id -> vote for one user and granularity."""
        rows = await self.session.execute(_FEEDBACK_OF, {"user_id": user_id, "item_kind": item_kind})
        return {int(i): int(v) for i, v in rows.all()}

    # --- shown ------------------------------------------------------------------------------------
    async def record_shown(self, user_id: int, item_kind: str, rows: Sequence[dict[str, Any]], *, context: str,
                           guild_id: int | None, model_version: str | None) -> list[int]:
        """Insert one row per shown item (in rank order) and return their ids (the buttons' keys)."""
        if not rows:
            return []
        now = utcnow()
        # One multi-row INSERT … RETURNING (id, rank) on the Core table, ids put in order by rank here.
        # Why not `returning(..., sort_by_parameter_order=True)` on the ORM entity: on SQLite that
        # falls back to one INSERT per row, each costing four aiosqlite thread round trips: 1.7 ms of
        # CPU for ten rows on every /recommend, against 0.7 ms for the single statement (measured).
        params = [{"user_id": user_id, "item_kind": item_kind, "item_id": row["item_id"], "context": context,
                   "guild_id": guild_id, "rank": rank, "score": row.get("score"), "evidence": row.get("evidence"),
                   "model_version": model_version, "shown_at": now} for rank, row in enumerate(rows)]
        by_rank = {int(rank): int(i) for i, rank in (await self.session.execute(_RECORD_SHOWN, params)).all()}
        return [by_rank[rank] for rank in range(len(rows))]

    async def steering(self, user_id: int, item_kind: str, since: datetime) -> Steering:
        """What a new list steers by (votes, recently shown, the /tune settings) for one user and
        granularity, read in one statement (`_STEERING`) without creating a settings row."""
        found = Steering({}, set())
        rows = await self.session.execute(_STEERING, {"user_id": user_id, "item_kind": item_kind, "since": since})
        for item_id, value, discovery, preferences in rows.all():
            if item_id is None:
                found.discovery, found.preferences = discovery, preferences
            elif value:
                found.votes[int(item_id)] = int(value)
            else:
                found.shown.add(int(item_id))
        return found

    async def shown(self, shown_id: int) -> ShownRow | None:
        row = await self.session.get(RecommendationShown, shown_id)
        if row is None:
            return None
        return ShownRow(row.id, row.user_id, row.item_kind, row.item_id, row.context, row.evidence,
                        row.model_version, row.shown_at)
