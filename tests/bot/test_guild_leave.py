"""The bot leaving a guild (kicked, or the guild deleted) forgets who belonged to it."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from core.db.models import GuildMembership
from core.db.repositories import UserRepository
from core.services import Services
from tests.bot.world import GUILD_ID, OTHER_GUILD_ID
from tests.fakes.discord_server import FakeDiscord


async def memberships(services: Services, guild_id: int) -> int:
    async with services.session() as s:
        return int((await s.execute(select(func.count()).select_from(GuildMembership)
                                    .where(GuildMembership.guild_id == guild_id))).scalar_one())


async def test_a_guild_that_removes_the_bot_loses_its_memberships_and_only_its_own(
        sonance: FakeDiscord, world_services: Services) -> None:
    ids = world_services.extras["world_ids"]
    async with world_services.session() as s:  # alice also uses Sonance in the other guild
        await UserRepository(s).ensure_membership(OTHER_GUILD_ID, ids["alice"])
    members_here = await memberships(world_services, GUILD_ID)
    assert members_here > 1 and await memberships(world_services, OTHER_GUILD_ID) == 1

    await sonance.remove_bot_from_guild(GUILD_ID)
    for _ in range(100):  # the gateway event reaches the bot asynchronously
        if await memberships(world_services, GUILD_ID) == 0:
            break
        await asyncio.sleep(0.05)

    assert await memberships(world_services, GUILD_ID) == 0
    assert await memberships(world_services, OTHER_GUILD_ID) == 1  # alice's other server is untouched
    async with world_services.session() as s:
        assert await UserRepository(s).visible_member_ids(OTHER_GUILD_ID) == [ids["alice"]]
