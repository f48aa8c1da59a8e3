"""Users, guild memberships, settings and the privacy rules that decide who appears where."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import ArtistPlays, GuildMembership, User, UserSettings
from core.db.repositories._dialect import upsert_insert
from core.db.types import utcnow

#: `users.origin` of the base corpus (HetRec listeners imported to give a fresh server a model): they
#: feed the models and are never members, never shown, never counted.
BASE_ORIGIN = "hetrec"

_USERS = User.__table__.c  # Core columns for the per-interaction lookup (discord_identity says why)
# Built once (recommendations.py says why): the asker lookup of every interaction.
_MEMBERS = GuildMembership.__table__.c
_IDENTITY = (
    select(_USERS.id, _USERS.display_name, _MEMBERS.user_id, _MEMBERS.checked_at, _MEMBERS.left_at)
    .select_from(User.__table__.outerjoin(GuildMembership.__table__, and_(
        _MEMBERS.guild_id == bindparam("guild_id"), _MEMBERS.user_id == _USERS.id)))
    .where(_USERS.discord_id == bindparam("discord_id"))
)
#: A membership that has not ended: a row whose member left keeps only a choice to be hidden there.
_CURRENT = _MEMBERS.left_at.is_(None)
_SHOWN_OR_UNCHOSEN = or_(_MEMBERS.visible.is_(None), _MEMBERS.visible.is_(True))

SETTINGS_FIELDS = frozenset({
    "dm_enabled", "dm_weekday", "dm_minute", "timezone", "quiet_start_minute", "quiet_end_minute",
    "dm_closed_at", "privacy_level", "hide_username", "discovery", "preferences",
})


class DiscordIdentity(NamedTuple):
    """`UserRepository.discord_identity`: a member's row and their membership of the asked guild."""

    user_id: int
    display_name: str | None
    member: bool  # a membership row of the guild is stored (see `left_at`)
    checked_at: datetime | None  # when that membership was last confirmed (None: never, or none)
    left_at: datetime | None  # set: they had left, and the row only keeps their choice to be hidden


class MembershipToCheck(NamedTuple):
    guild_id: int
    user_id: int
    discord_id: int


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_or_create_discord(self, discord_id: int, display_name: str | None = None) -> User:
        user = await self.by_discord_id(discord_id)
        if user is None:
            await self._insert_discord(discord_id, display_name)
            user = await self.by_discord_id(discord_id)
            assert user is not None
        elif display_name and user.display_name != display_name:
            user.display_name = display_name
        return user

    async def discord_identity(self, discord_id: int, guild_id: int | None = None) -> DiscordIdentity | None:
        """The stored row of a Discord user and their membership of `guild_id`, or None: the asker
        lookup of every interaction, in one statement.

        Why not `by_discord_id`: that loads an ORM `User` into the session (identity map, change
        tracking) for two columns; a Core select of them is cheaper on every command. The membership
        flag and its `checked_at` let the caller skip the membership write when it is fresh.
        """
        row = (await self.session.execute(_IDENTITY, {"discord_id": discord_id, "guild_id": guild_id})).first()
        return None if row is None else DiscordIdentity(int(row[0]), row[1], row[2] is not None, row[3], row[4])

    async def create_discord(self, discord_id: int, display_name: str | None) -> int:
        """The row id of a Discord user, inserting the row if none exists (safe against a concurrent
        first use: ON CONFLICT DO NOTHING, then read back)."""
        await self._insert_discord(discord_id, display_name)
        found = await self.discord_identity(discord_id)
        assert found is not None
        return found.user_id

    async def _insert_discord(self, discord_id: int, display_name: str | None) -> None:
        # ON CONFLICT DO NOTHING: two first requests of one member at once must not collide
        await self.session.execute(
            upsert_insert(self.session, User)
            .values(discord_id=discord_id, display_name=display_name, origin="discord")
            .on_conflict_do_nothing(index_elements=["discord_id"])
        )

    async def rename(self, user_id: int, display_name: str) -> None:
        """Store the member's current Discord display name."""
        await self.session.execute(update(User.__table__).where(_USERS.id == user_id)
                                   .values(display_name=display_name))

    async def by_discord_id(self, discord_id: int) -> User | None:
        return (await self.session.execute(select(User).where(User.discord_id == discord_id))).scalar_one_or_none()

    async def get(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def privacy_level(self, user_id: int) -> str:
        """The user's global privacy level ("public" when they never chose), without creating settings.

        Why: a read-only check for people who are not (yet) recorded in a guild, where
        `visible_member_ids` cannot speak for them.
        """
        level = (await self.session.execute(
            select(UserSettings.privacy_level).where(UserSettings.user_id == user_id))).scalar_one_or_none()
        return level or "public"

    async def by_external_refs(self, refs: list[str]) -> dict[str, int]:
        rows = await self.session.execute(select(User.external_ref, User.id).where(User.external_ref.in_(refs)))
        return {ref: uid for ref, uid in rows if ref is not None}

    async def listener_counts(self) -> dict[str, int]:
        """How many members (Discord users) and dataset listeners, by origin, have any artist plays.

        Why: "is this database near-empty?" (the base corpus is imported below a threshold of member
        listeners) and "is the base corpus here?" are both answered from this one query.
        """
        has_plays = select(ArtistPlays.user_id).where(ArtistPlays.user_id == User.id, ArtistPlays.plays > 0).exists()
        kind = case((User.discord_id.is_not(None), "members"), else_=User.origin)
        stmt = select(kind, func.count()).where(has_plays).group_by(kind)
        return {str(k): int(n) for k, n in (await self.session.execute(stmt)).all()}

    async def ensure_dataset_users(self, origin: str, refs: list[str]) -> dict[str, int]:
        """Create (idempotently) listeners imported from a dataset; returns external_ref -> id."""
        if refs:
            await self.session.execute(
                upsert_insert(self.session, User)
                .values([{"origin": origin, "external_ref": ref, "display_name": ref[:100]}  # column: String(100)
                         for ref in refs])
                .on_conflict_do_nothing(index_elements=["external_ref"])
            )
        return await self.by_external_refs(refs)

    # --- guild membership & privacy ---------------------------------------------------------------

    async def ensure_membership(self, guild_id: int, user_id: int) -> None:
        """Record that the member is in the guild (they just used Sonance there: checked now)."""
        await self.session.execute(
            upsert_insert(self.session, GuildMembership)
            .values(guild_id=guild_id, user_id=user_id, checked_at=utcnow())
            .on_conflict_do_nothing(index_elements=["guild_id", "user_id"])
        )

    async def mark_checked(self, guild_id: int, user_ids: list[int] | None = None) -> int:
        """Note that these members (every current member of the guild when None) were just found
        in it, or, for a guild Discord would not answer about, just asked about; a member found
        again is no longer one who left. Returns rows touched."""
        stmt = update(GuildMembership.__table__).where(_MEMBERS.guild_id == guild_id)
        if user_ids is not None:
            stmt = stmt.where(_MEMBERS.user_id.in_(user_ids)).values(checked_at=utcnow(), left_at=None)
        else:
            stmt = stmt.where(_CURRENT).values(checked_at=utcnow())
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def memberships_to_check(self, checked_before: datetime, limit: int) -> list[MembershipToCheck]:
        """Current memberships of Discord users whose last check is older than `checked_before`
        (never checked first). Hidden ones too: a member who left must leave the guild's list of
        their servers (weekly DMs' server-mates) even if nobody could see them there."""
        stmt = (select(_MEMBERS.guild_id, _MEMBERS.user_id, _USERS.discord_id)
                .join(User.__table__, _USERS.id == _MEMBERS.user_id)
                .where(_USERS.discord_id.is_not(None), _CURRENT)
                .where(or_(_MEMBERS.checked_at.is_(None), _MEMBERS.checked_at < checked_before))
                .order_by(_MEMBERS.checked_at.asc().nulls_first(), _MEMBERS.guild_id, _MEMBERS.user_id)
                .limit(limit))
        return [MembershipToCheck(int(g), int(u), int(d)) for g, u, d in (await self.session.execute(stmt)).all()]

    async def end_membership(self, guild_id: int, user_id: int, *, unless_checked_since: datetime) -> bool:
        """A membership Discord says has ended (`_end`), unless it was confirmed since
        `unless_checked_since` (the member used Sonance there after Discord was asked). Returns
        whether it ended."""
        return bool(await self._end(_MEMBERS.guild_id == guild_id, _MEMBERS.user_id == user_id,
                                    or_(_MEMBERS.checked_at.is_(None), _MEMBERS.checked_at < unless_checked_since)))

    async def _end(self, *where: Any) -> int:
        """End the current memberships matching `where`: forgotten, except a choice to be hidden
        there, which stays as a row marked `left_at` (were the member, or the bot, to come back,
        they must not reappear until they choose again). Returns memberships ended."""
        removed = await self.session.execute(delete(GuildMembership.__table__).where(*where, _CURRENT, _SHOWN_OR_UNCHOSEN))
        hidden = await self.session.execute(update(GuildMembership.__table__).where(*where, _CURRENT)
                                            .values(left_at=utcnow()))
        return int(removed.rowcount or 0) + int(hidden.rowcount or 0)

    async def remove_membership(self, guild_id: int, user_id: int) -> None:
        membership = await self.session.get(GuildMembership, (guild_id, user_id))
        if membership is not None:
            await self.session.delete(membership)

    async def remove_guild(self, guild_id: int) -> int:
        """End every membership of a guild the bot left (`_end`: were the bot invited back, say
        kicked and re-added to fix its permissions, hidden members stay hidden); returns how many."""
        return await self._end(_MEMBERS.guild_id == guild_id)

    async def set_guild_visibility(self, guild_id: int, user_id: int, visible: bool | None) -> None:
        await self.ensure_membership(guild_id, user_id)
        membership = await self.session.get(GuildMembership, (guild_id, user_id))
        assert membership is not None
        membership.visible = visible

    @staticmethod
    def _visible_members(guild_id: int) -> Any:
        """Members of `guild_id` who may appear on its leaderboards and lists (the one privacy rule).

        Visible when the per-guild choice says so, or when there is none and the global level is
        "public" (the default when a user never chose). "private" hides everywhere unless a guild
        was explicitly opened; "guild" shows only where explicitly opened.
        """
        level = UserSettings.privacy_level
        return (
            select(GuildMembership.user_id)
            .join(User, User.id == GuildMembership.user_id)
            .outerjoin(UserSettings, UserSettings.user_id == GuildMembership.user_id)
            .where(GuildMembership.guild_id == guild_id, _CURRENT)
            .where(User.discord_id.is_not(None))  # dataset/base listeners are never members
            .where(or_(
                GuildMembership.visible.is_(True),
                and_(GuildMembership.visible.is_(None), or_(level.is_(None), level == "public")),
            ))
        )

    async def visible_member_ids(self, guild_id: int) -> list[int]:
        """Members of `guild_id` who may appear on its leaderboards and lists (`_visible_members`)."""
        stmt = self._visible_members(guild_id).order_by(GuildMembership.user_id)
        return list((await self.session.execute(stmt)).scalars())

    async def is_visible(self, guild_id: int, user_id: int) -> bool:
        """Whether one member is among `visible_member_ids(guild_id)`, without reading the others
        (the busiest commands ask this about the asker alone)."""
        stmt = self._visible_members(guild_id).where(GuildMembership.user_id == user_id).limit(1)
        return (await self.session.execute(stmt)).first() is not None

    async def memberships(self, user_id: int) -> list[GuildMembership]:
        """Every guild the user is known in, with its per-guild visibility choice."""
        stmt = select(GuildMembership).where(GuildMembership.user_id == user_id).order_by(GuildMembership.guild_id)
        return list((await self.session.execute(stmt)).scalars())

    async def clear_guild_visibility(self, user_id: int, *, keep_guild_id: int | None = None) -> int:
        """Drop per-guild choices (back to following the global level), except in `keep_guild_id`.

        Why: an "everywhere" privacy choice must win over older per-server exceptions, otherwise a
        user who hides everywhere would stay visible where they once opened a server.
        """
        stmt = (update(GuildMembership).where(GuildMembership.user_id == user_id, _CURRENT)
                .where(GuildMembership.visible.is_not(None)).values(visible=None)
                .execution_options(synchronize_session=False))
        # A server they left keeps nothing but the choice being dropped: the row goes with it.
        departed = delete(GuildMembership).where(GuildMembership.user_id == user_id, ~_CURRENT)
        if keep_guild_id is not None:
            stmt = stmt.where(GuildMembership.guild_id != keep_guild_id)
            departed = departed.where(GuildMembership.guild_id != keep_guild_id)
        result = await self.session.execute(stmt)
        gone = await self.session.execute(departed.execution_options(synchronize_session=False))
        return int(result.rowcount or 0) + int(gone.rowcount or 0)

    async def guild_ids(self, user_id: int) -> list[int]:
        """Guilds where `user_id` is known to be a member (learnt from use or sync)."""
        stmt = (select(GuildMembership.guild_id).where(GuildMembership.user_id == user_id, _CURRENT)
                .order_by(GuildMembership.guild_id))
        return list((await self.session.execute(stmt)).scalars())

    async def member_guild_ids(self) -> list[int]:
        """Every guild with a current membership (the guilds Sonance believes it serves)."""
        stmt = select(GuildMembership.guild_id).where(_CURRENT).distinct().order_by(GuildMembership.guild_id)
        return list((await self.session.execute(stmt)).scalars())

    async def is_member(self, guild_id: int, user_id: int) -> bool:
        membership = await self.session.get(GuildMembership, (guild_id, user_id))
        return membership is not None and membership.left_at is None

    # --- settings ---------------------------------------------------------------------------------

    async def settings(self, user_id: int) -> UserSettings:
        current = await self.session.get(UserSettings, user_id)
        if current is None:
            # INSERT .. ON CONFLICT DO NOTHING: two first requests of one user at once must not race
            # into a duplicate-key error (get, add, flush did under load)
            await self.session.execute(upsert_insert(self.session, UserSettings).values(user_id=user_id)
                                       .on_conflict_do_nothing(index_elements=["user_id"]))
            current = await self.session.get(UserSettings, user_id)
            assert current is not None
        return current

    async def update_settings(self, user_id: int, **changes: Any) -> UserSettings:
        unknown = set(changes) - SETTINGS_FIELDS
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        current = await self.settings(user_id)
        for name, value in changes.items():
            setattr(current, name, value)
        await self.session.flush()
        return current

    async def display_names(self, user_ids: list[int]) -> dict[int, str]:
        """Names safe to show: "a listener" for users who hide their username."""
        rows = await self.session.execute(
            select(User.id, User.display_name, UserSettings.hide_username)
            .outerjoin(UserSettings, UserSettings.user_id == User.id)
            .where(User.id.in_(user_ids))
        )
        return {uid: ("a listener" if hide else (name or "a listener")) for uid, name, hide in rows}
