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


async def test_a_guild_that_removes_the_bot_loses_its_memberships_but_keeps_choices_to_hide(
        sonance: FakeDiscord, world_services: Services) -> None:
    ids = world_services.extras["world_ids"]
    async with world_services.session() as s:
        users = UserRepository(s)
        await users.ensure_membership(OTHER_GUILD_ID, ids["alice"])  # alice also uses Sonance elsewhere
        await users.set_guild_visibility(GUILD_ID, ids["bob"], False)  # bob chose to be hidden here
    members_here = await memberships(world_services, GUILD_ID)
    assert members_here > 2 and await memberships(world_services, OTHER_GUILD_ID) == 1

    await sonance.remove_bot_from_guild(GUILD_ID)
    for _ in range(100):  # the gateway event reaches the bot asynchronously
        if await memberships(world_services, GUILD_ID) == 1:
            break
        await asyncio.sleep(0.05)

    # only bob's choice to be hidden stays: invited back, the bot must not show him until he chooses
    assert await memberships(world_services, GUILD_ID) == 1
    async with world_services.session() as s:
        users = UserRepository(s)
        assert await users.visible_member_ids(GUILD_ID) == []
        await users.ensure_membership(GUILD_ID, ids["bob"])  # bob uses Sonance there again
        assert await users.visible_member_ids(GUILD_ID) == []
        assert await users.visible_member_ids(OTHER_GUILD_ID) == [ids["alice"]]  # untouched


async def test_a_guild_that_removed_the_bot_while_it_was_offline_is_forgotten_at_connect(
        fake: FakeDiscord, world_services: Services) -> None:
    """No GUILD_DELETE reaches a bot that is not running; READY then simply does not list the guild."""
    from bot.client import create_bot
    from tests.fakes.discord_server import running_bot

    ids = world_services.extras["world_ids"]
    async with world_services.session() as s:
        users = UserRepository(s)
        await users.ensure_membership(OTHER_GUILD_ID, ids["alice"])
        await users.set_guild_visibility(OTHER_GUILD_ID, ids["bob"], False)
    assert await memberships(world_services, GUILD_ID) > 2
    fake.guilds.pop(OTHER_GUILD_ID)  # kicked while the bot was offline

    async with running_bot(create_bot(world_services, guild_ready_timeout=0.05), fake):
        for _ in range(100):  # on_ready runs the check asynchronously
            async with world_services.session() as s:
                if await UserRepository(s).guild_ids(ids["alice"]) == [GUILD_ID]:
                    break
            await asyncio.sleep(0.05)
    async with world_services.session() as s:
        users = UserRepository(s)
        assert await users.guild_ids(ids["alice"]) == [GUILD_ID]  # forgotten where the bot is gone…
        assert OTHER_GUILD_ID not in await users.guild_ids(ids["bob"])  # …bob's hidden choice kept aside
        assert await users.member_guild_ids() == [GUILD_ID]  # …and the guild it is still in untouched
    assert await memberships(world_services, GUILD_ID) > 2
