"""Sonance's data model (SQLAlchemy 2 typed models), the same on SQLite and PostgreSQL.

Design notes:
- `users` holds Discord members *and* listeners from imported datasets (HetRec): the recommender
  learns from everyone, the bot only ever shows Discord members of the asking guild.
- Every table that says something about a person has a `user_id` (or `*_user_id`) foreign key to
  `users.id` with ``ON DELETE CASCADE``; `/forget` deletes by walking this metadata, so a new table
  is covered as soon as it follows the convention.
- Listens are unique per (user, played_at, track): re-syncing a page inserts nothing new.
  `artist_plays` is the per-user aggregate the recommender reads at artist level; it is fed both by
  sync (incremented only by listens that were actually new) and by imports of aggregated datasets.
- Secrets (`*_enc` columns) hold Fernet ciphertext only; see `core.crypto`.
- All times are UTC (`UTCDateTime`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from core.db.types import BigIntPK, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


def _user_fk(nullable: bool = False) -> Mapped[int]:
    return mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=nullable, index=True)


# --- people ------------------------------------------------------------------------------------


class User(Base):
    """A listener: a Discord member (discord_id set) or an imported dataset listener."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    discord_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    origin: Mapped[str] = mapped_column(String(16), default="discord")  # discord | hetrec | import
    external_ref: Mapped[str | None] = mapped_column(String(200), unique=True)  # e.g. "hetrec:2"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GuildMembership(Base):
    """A user's membership of a guild, with the per-guild visibility chosen in /privacy."""

    __tablename__ = "guild_memberships"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)
    visible: Mapped[bool | None] = mapped_column(Boolean)  # None: follow the user's global setting
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: When the member was last known to be in the guild (a command there, or Discord said so); None:
    #: never checked since this column came. Slash commands need no privileged intent, so Discord
    #: never tells the bot who leaves: `core.memberships.MembershipSweep` asks for the stalest rows.
    checked_at: Mapped[datetime | None] = mapped_column(index=True)
    #: Set when the member (or the bot) left the guild while the member was hidden there: the row
    #: then only keeps that choice, and counts as no membership until they use Sonance there again.
    left_at: Mapped[datetime | None] = mapped_column()


class UserSettings(Base):
    """Per-user preferences: weekly DM slot, time zone, quiet hours, privacy."""

    __tablename__ = "user_settings"
    __table_args__ = (
        CheckConstraint("dm_weekday BETWEEN 0 AND 6", name="dm_weekday_range"),
        CheckConstraint("dm_minute BETWEEN 0 AND 1439", name="dm_minute_range"),
        CheckConstraint("privacy_level IN ('public', 'guild', 'private')", name="privacy_level_values"),
    )

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    dm_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    dm_weekday: Mapped[int] = mapped_column(SmallInteger, default=4)  # Monday=0; default Friday
    dm_minute: Mapped[int] = mapped_column(SmallInteger, default=18 * 60)  # local minutes after midnight
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    quiet_start_minute: Mapped[int | None] = mapped_column(SmallInteger)
    quiet_end_minute: Mapped[int | None] = mapped_column(SmallInteger)
    dm_closed_at: Mapped[datetime | None] = mapped_column()  # Discord 50007: stop until /dm again
    privacy_level: Mapped[str] = mapped_column(String(16), default="public")
    hide_username: Mapped[bool] = mapped_column(Boolean, default=False)
    discovery: Mapped[float] = mapped_column(Float, default=0.3)
    preferences: Mapped[dict[str, Any] | None] = mapped_column()  # structured free-text feedback
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LinkedAccount(Base):
    """A Last.fm or Spotify account linked to a user, with its sync state and encrypted secrets."""

    __tablename__ = "linked_accounts"
    __table_args__ = (
        UniqueConstraint("user_id", "provider"),
        Index("ix_linked_accounts_provider_external_id", "provider", "external_id"),
        CheckConstraint("provider IN ('lastfm', 'spotify')", name="provider_values"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = _user_fk()
    provider: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(200))  # Last.fm username / Spotify user id
    username: Mapped[str | None] = mapped_column(String(200))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)  # web auth proved ownership
    access_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # Last.fm session key / Spotify token
    refresh_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_expires_at: Mapped[datetime | None] = mapped_column()
    scope: Mapped[str | None] = mapped_column(String(500))
    sync_cursor: Mapped[dict[str, Any] | None] = mapped_column()
    history_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    last_sync_at: Mapped[datetime | None] = mapped_column()
    last_sync_status: Mapped[str | None] = mapped_column(String(16))  # ok | running | error
    last_failure_reason: Mapped[str | None] = mapped_column(String(64))  # e.g. lastfm_private
    last_failure_message: Mapped[str | None] = mapped_column(String(500))
    last_listen_at: Mapped[datetime | None] = mapped_column()
    lock_owner: Mapped[str | None] = mapped_column(String(100))  # cross-process sync lock
    lock_expires_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- catalog -----------------------------------------------------------------------------------


class Artist(Base):
    __tablename__ = "artists"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(300))
    name_key: Mapped[str] = mapped_column(String(300), unique=True)  # normalised for matching
    lastfm_url: Mapped[str | None] = mapped_column(String(500))
    mbid: Mapped[str | None] = mapped_column(String(36), index=True)
    spotify_id: Mapped[str | None] = mapped_column(String(64), index=True)
    image_url: Mapped[str | None] = mapped_column(String(500))
    external_ref: Mapped[str | None] = mapped_column(String(100), unique=True)  # e.g. "hetrec:51"
    # Global audience on Last.fm (artist.getInfo stats.listeners): the base of any popularity claim.
    lastfm_listeners: Mapped[int | None] = mapped_column(BigInteger)
    listeners_checked_at: Mapped[datetime | None] = mapped_column()  # also set when Last.fm had none


class Album(Base):
    __tablename__ = "albums"
    __table_args__ = (UniqueConstraint("artist_id", "title_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    artist_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("artists.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    title_key: Mapped[str] = mapped_column(String(500))
    lastfm_url: Mapped[str | None] = mapped_column(String(500))
    mbid: Mapped[str | None] = mapped_column(String(36), index=True)
    spotify_id: Mapped[str | None] = mapped_column(String(64), index=True)
    aoty_url: Mapped[str | None] = mapped_column(String(500), index=True)
    image_url: Mapped[str | None] = mapped_column(String(500))
    release_year: Mapped[int | None] = mapped_column(SmallInteger)
    image_checked_at: Mapped[datetime | None] = mapped_column()  # last cover look-up, found or not


class Track(Base):
    __tablename__ = "tracks"
    __table_args__ = (UniqueConstraint("artist_id", "title_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    artist_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("artists.id", ondelete="CASCADE"), index=True)
    album_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("albums.id", ondelete="SET NULL"),
                                                 index=True)
    title: Mapped[str] = mapped_column(String(500))
    title_key: Mapped[str] = mapped_column(String(500))
    lastfm_url: Mapped[str | None] = mapped_column(String(500))
    mbid: Mapped[str | None] = mapped_column(String(36), index=True)
    spotify_id: Mapped[str | None] = mapped_column(String(64), index=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)  # lower-cased, trimmed


class ItemTag(Base):
    """How strongly a tag applies to an artist, album or track, per source (lastfm, aoty_genre…)."""

    __tablename__ = "item_tags"
    __table_args__ = (
        CheckConstraint("item_kind IN ('artist', 'album', 'track')", name="item_kind_values"),
        Index("ix_item_tags_tag_id", "tag_id"),
    )

    item_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tag_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)


class AotyAlbum(Base):
    """albumoftheyear.org facts about an album page, cached for days (see `fetched_at`)."""

    __tablename__ = "aoty_albums"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(500), unique=True)
    album_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("albums.id", ondelete="SET NULL"),
                                                 index=True)
    artist_name: Mapped[str] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(String(500))
    critic_score: Mapped[float | None] = mapped_column(Float)
    critic_count: Mapped[int | None] = mapped_column(Integer)
    user_score: Mapped[float | None] = mapped_column(Float)
    user_count: Mapped[int | None] = mapped_column(Integer)
    must_hear: Mapped[bool] = mapped_column(Boolean, default=False)
    release_date: Mapped[str | None] = mapped_column(String(40))
    genres: Mapped[list[Any]] = mapped_column(default=list)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    similar: Mapped[list[Any]] = mapped_column(default=list)  # [{"url", "artist", "title"}]
    tracklist: Mapped[list[Any]] = mapped_column(default=list)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class _SimilarityEdge:
    """What an edge of one of Last.fm's similarity graphs holds besides its two ends: how similar
    (Last.fm's `match`, in (0, 1]) and when it was fetched. Both graphs are the same kind of fact,
    so one definition serves `SimilarArtist` and `SimilarTrack`."""

    @declared_attr.directive
    def __table_args__(cls) -> tuple[CheckConstraint]:
        # built per table: a constraint object belongs to exactly one table
        return (CheckConstraint("match > 0 AND match <= 1", name="match_range"),)

    match: Mapped[float] = mapped_column(Float, sort_order=1)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow, sort_order=1)


def _edge_end(table: str, *, index: bool | None = None) -> Mapped[int]:
    """One end of a similarity edge: part of the primary key, and gone with the item it names."""
    return mapped_column(BigInteger, ForeignKey(f"{table}.id", ondelete="CASCADE"), primary_key=True, index=index)


class SimilarArtist(_SimilarityEdge, Base):
    """One edge of Last.fm's similar-artist graph (`artist.getSimilar`): a catalogue fact.

    Not personal data: Last.fm computes it from all its listeners, and nothing here says who plays
    what. An artist's edges are replaced together (`SimilarGraphRepository.replace_edges`).
    """

    __tablename__ = "similar_artists"

    artist_id: Mapped[int] = _edge_end("artists")
    similar_artist_id: Mapped[int] = _edge_end("artists", index=True)


class SimilarFetch(Base):
    """When an artist's similar list was last asked of Last.fm, and what came back.

    Why a row per artist and not only the edges: an artist Last.fm does not know (error 6) or knows
    without neighbours has no edges, yet must not be asked again before the refresh interval.
    """

    __tablename__ = "similar_fetches"
    __table_args__ = (
        CheckConstraint("item_kind IN ('artist', 'track')", name="item_kind_values"),
        CheckConstraint("status IN ('ok', 'empty', 'not_found')", name="status_values"),
    )

    item_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    edges: Mapped[int] = mapped_column(Integer, default=0)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class SimilarTrack(_SimilarityEdge, Base):
    """One edge of Last.fm's similar-track graph (`track.getSimilar`); a catalogue fact like
    `SimilarArtist`."""

    __tablename__ = "similar_tracks"

    track_id: Mapped[int] = _edge_end("tracks")
    similar_track_id: Mapped[int] = _edge_end("tracks", index=True)


# --- listening ---------------------------------------------------------------------------------


class Listen(Base):
    """One play. Unique per (user, played_at, track) so that re-syncing is idempotent."""

    __tablename__ = "listens"
    __table_args__ = (
        UniqueConstraint("user_id", "played_at", "track_id"),
        Index("ix_listens_track_id", "track_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    track_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tracks.id", ondelete="CASCADE"))
    played_at: Mapped[datetime] = mapped_column()
    source: Mapped[str] = mapped_column(String(16))  # lastfm | spotify | import


class ArtistPlays(Base):
    """Per-user play count of an artist: the recommender's artist-level input."""

    __tablename__ = "artist_plays"

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    artist_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("artists.id", ondelete="CASCADE"),
                                           primary_key=True, index=True)
    plays: Mapped[int] = mapped_column(BigInteger, default=0)
    last_played_at: Mapped[datetime | None] = mapped_column()


class Feedback(Base):
    """A thumbs up (+1) or down (-1) on an item; the latest opinion per item wins."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("user_id", "item_kind", "item_id"),
        CheckConstraint("value IN (-1, 1)", name="value_sign"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    item_kind: Mapped[str] = mapped_column(String(8))
    item_id: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecommendationShown(Base):
    """What was shown to whom, when, in which context; the feedback buttons point at these rows."""

    __tablename__ = "recommendations_shown"
    __table_args__ = (Index("ix_recommendations_shown_user_id_shown_at", "user_id", "shown_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    item_kind: Mapped[str] = mapped_column(String(8))
    item_id: Mapped[int] = mapped_column(BigInteger)
    context: Mapped[str] = mapped_column(String(16))  # command | dm | playlist | similar
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    rank: Mapped[int] = mapped_column(SmallInteger, default=0)
    score: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[dict[str, Any] | None] = mapped_column()
    model_version: Mapped[str | None] = mapped_column(String(64))
    shown_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- playlists ---------------------------------------------------------------------------------


class Playlist(Base):
    __tablename__ = "playlists"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = _user_fk()
    partner_user_id: Mapped[int | None] = _user_fk(nullable=True)  # for blends
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(500))
    origin: Mapped[str] = mapped_column(String(16))  # recommendations | seed | blend
    seed: Mapped[str | None] = mapped_column(String(300))
    spotify_playlist_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlaylistItem(Base):
    __tablename__ = "playlist_items"

    playlist_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("playlists.id", ondelete="CASCADE"),
                                             primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str | None] = mapped_column(String(300))


# --- scheduling --------------------------------------------------------------------------------


class DmDelivery(Base):
    """One row per user per weekly slot: inserting it *claims* the slot, so a DM goes out once even
    across restarts or with several bot processes."""

    __tablename__ = "dm_deliveries"
    __table_args__ = (UniqueConstraint("user_id", "slot"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    slot: Mapped[str] = mapped_column(String(32))  # ISO week, e.g. "2026-W48"
    status: Mapped[str] = mapped_column(String(16), default="claimed")  # claimed | sent | failed | dm_closed
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(String(300))


class Lease(Base):
    """A named, expiring lock (scheduler leadership, one-off jobs) shared through the database."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column()


class OAuthNonce(Base):
    """Single-use OAuth `state` nonces: a nonce can be consumed once, before it expires."""

    __tablename__ = "oauth_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ModelArtifact(Base):
    """A trained model stored on disk; `active` marks the one the bot serves."""

    __tablename__ = "model_artifacts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # hybrid | compat
    granularity: Mapped[str] = mapped_column(String(8), default="artist")
    version: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(Text)
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    n_users: Mapped[int] = mapped_column(Integer, default=0)
    n_items: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=False)


#: Tables that hold nothing about a person; every other table must reach `users` (checked in tests).
USERLESS_TABLES = frozenset({
    "artists", "albums", "tracks", "tags", "item_tags", "aoty_albums", "leases", "oauth_nonces",
    "model_artifacts", "similar_artists", "similar_fetches", "similar_tracks",
})
