"""From a Discord member to an `Asker`: the one lookup per interaction that services rely on.

Services take an `Asker` and never look the member up again (core/asker.py). The Discord adapter
(`bot.interactions.SonanceCog.who`) asks this directory once per interaction.

Two ways in, because two kinds of command exist:
- `resolve` is for using Sonance: it creates the member's row on first use and records that they
  belong to the guild. Slash commands need no privileged intents, so membership is learnt from use:
  a member appears on a guild's boards after using Sonance there (and while not hidden). Nor does
  Discord tell the bot who leaves: `core.memberships.MembershipSweep` asks it about memberships not
  confirmed for a day (a command refreshes its member's). When the bot leaves a guild,
  `forget_guild` drops all of its memberships.
- `known` is for the commands about what Sonance stores (/unlink, /forget, /export): it only reads,
  because asking what is stored about you must not itself store something about you.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.asker import Asker, Caller
from core.db.repositories import UserRepository
from core.db.types import utcnow

log = logging.getLogger(__name__)

#: A member's command refreshes their membership's `checked_at` when it is older than this (well
#: inside `core.memberships.RECHECK_AFTER`, so active members never cost the sweep a Discord request).
CHECK_REFRESH = timedelta(hours=12)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.services import Services

class AskerDirectory:
    """One per process (`services.askers`)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def resolve(self, discord_id: int, display_name: str | None, guild_id: int | None) -> Asker:
        """The member's `Asker`, creating their row on first use and recording the membership."""
        async with self.services.session() as session:
            return await self.resolve_in(session, Caller(discord_id, display_name, guild_id))

    async def resolve_in(self, session: AsyncSession, caller: Caller) -> Asker:
        """`resolve` inside a session the caller opened for its own work (one session per request
        instead of two). What it writes (a first-use row, a new display name, a membership) is
        committed here at once, so the member exists whatever the rest of the request does, exactly
        as with `resolve`'s own session."""
        users = UserRepository(session)
        found = await users.discord_identity(caller.discord_id, caller.guild_id)
        wrote = member = False
        checked_at: datetime | None = None
        left_at: datetime | None = None
        if found is None:
            user_id = await users.create_discord(caller.discord_id, caller.display_name)
            wrote = True
        else:
            user_id, stored_name, member, checked_at, left_at = found
            if caller.display_name and stored_name != caller.display_name:
                await users.rename(user_id, caller.display_name)
                wrote = True
        if caller.guild_id is not None and not member:
            # Written only when the lookup found none (the same statement tells): no write per command.
            await users.ensure_membership(caller.guild_id, user_id)
            wrote = True
        elif caller.guild_id is not None and (left_at is not None or checked_at is None
                                              or utcnow() - checked_at > CHECK_REFRESH):
            # Using Sonance there proves membership (a member who had left is back, their choice to
            # be hidden kept): the sweep need not ask Discord about them. At most one write per
            # CHECK_REFRESH per member and guild, not one per command.
            await users.mark_checked(caller.guild_id, [user_id])
            wrote = True
        if wrote:
            await session.commit()
        return Asker(user_id, caller.discord_id, caller.guild_id)

    async def resolve_and_whether_hidden(self, who: Asker | Caller) -> tuple[Asker, bool]:
        """The asker (resolved as `resolve` does, unless already an `Asker`) and whether they hide
        their listening in its guild, in one session: commands that show the asker's own taste
        answer a hidden member privately (`UserRepository.visible_member_ids`, the one privacy
        rule). Never hidden outside a guild: a DM is private already."""
        async with self.services.session() as session:
            asker = who if isinstance(who, Asker) else await self.resolve_in(session, who)
            if asker.guild_id is None:
                return asker, False
            visible = await UserRepository(session).is_visible(asker.guild_id, asker.user_id)
        return asker, not visible

    async def known(self, discord_id: int, guild_id: int | None) -> Asker | None:
        """The member's `Asker` when Sonance already stores them; None otherwise. Writes nothing."""
        async with self.services.session() as session:
            user = await UserRepository(session).by_discord_id(discord_id)
        return None if user is None else Asker(int(user.id), discord_id, guild_id)

    async def of_user(self, user_id: int) -> Asker | None:
        """The `Asker` of a stored member, for work that starts from a user row rather than an
        interaction (the weekly DM): None for a dataset listener or a row that is gone. No guild: a
        DM has none."""
        async with self.services.session() as session:
            user = await UserRepository(session).get(user_id)
        if user is None or user.discord_id is None:
            return None
        return Asker(user_id, int(user.discord_id))

    async def forget_absent_guilds(self, present: Collection[int], owned: Callable[[int], bool]) -> list[int]:
        """At connect: forget the guilds this process's shards serve (`owned`) that Discord no longer
        lists (`present`, every guild of those shards, unavailable ones included). The bot was
        removed from them while it was offline, so no GUILD_DELETE ever came; without this their
        members stayed counted among their servers. Returns the guilds forgotten."""
        async with self.services.session() as session:
            known = await UserRepository(session).member_guild_ids()
        gone = [g for g in known if owned(g) and g not in present]
        for guild_id in gone:
            await self.forget_guild(guild_id)
        return gone

    async def forget_guild(self, guild_id: int) -> int:
        """The bot left a guild (kicked, or the guild deleted): forget who belonged to it, so its
        boards do not come back with them if the bot is invited again, and weekly DMs stop counting
        it among a member's servers. Members rejoin by using Sonance there; a choice to be hidden
        there is kept (`UserRepository.remove_guild`). Returns memberships removed."""
        async with self.services.session() as session:
            removed = await UserRepository(session).remove_guild(guild_id)
        log.info("left guild %d: forgot %d memberships", guild_id, removed)
        return removed
