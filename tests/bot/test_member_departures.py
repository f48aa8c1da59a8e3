"""A member who leaves a server leaves its boards: the sweep asks Discord, and the real bot's REST
client gets Discord's real answers from the local fake (200, 404 Unknown Member, 404 Unknown Guild
for a guild the bot left while offline, 500 during an outage).

The bot asks for no privileged intent, so Discord tells it nothing when a member leaves; before the
sweep, /whoknows and /leaderboard kept showing members who had left the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from discord.ext import commands
from sqlalchemy import update

from bot.client import create_bot
from bot.membership_probe import discord_membership_probe
from core.db.models import GuildMembership
from core.db.repositories import UserRepository
from core.db.types import utcnow
from core.memberships import RECHECK_AFTER, MembershipSweep, Presence
from core.services import Services
from tests.bot.driving import run
from tests.bot.world import GUILD_ID, MEMBERS, OTHER_GUILD_ID
from tests.fakes.discord_server import FakeDiscord, running_bot


@pytest.fixture
async def bot(fake: FakeDiscord, world_services: Services) -> AsyncIterator[commands.Bot]:
    client = create_bot(world_services, guild_ready_timeout=0.05)
    async with running_bot(client, fake):
        yield client


async def all_due(services: Services) -> None:
    """As right after the migration: no membership confirmed yet."""
    async with services.session() as s:
        await s.execute(update(GuildMembership).values(checked_at=None))


async def whoknows_lines(fake: FakeDiscord, user: str) -> list[str]:
    record = await fake.dispatch(fake.slash("whoknows", {"artist": "Radiohead"}, user=user, guild=GUILD_ID))
    final = await record.wait_final(timeout=30)
    return str(final.body["embeds"][0]["description"]).split("\n")


async def test_a_member_who_left_disappears_from_whoknows_and_the_leaderboard(
        fake: FakeDiscord, bot: commands.Bot, world_services: Services) -> None:
    ids = world_services.extras["world_ids"]
    async with world_services.session() as s:
        users = UserRepository(s)
        await users.ensure_membership(OTHER_GUILD_ID, ids["bob"])  # bob stays in the other server
        await users.set_guild_visibility(GUILD_ID, ids["dave"], False)  # dave chose to be hidden here
    await all_due(world_services)
    assert "🥇 **Bob**: 12 plays" in await whoknows_lines(fake, "alice")
    _, board = await run(fake, "leaderboard", "alice")
    assert board.embeds[0]["footer"]["text"].startswith("3 members ranked")  # alice, bob, carol

    await fake.member_leaves(GUILD_ID, MEMBERS["bob"].fake.id)
    await fake.member_leaves(GUILD_ID, MEMBERS["dave"].fake.id)
    report = await MembershipSweep(world_services, discord_membership_probe(bot)).run()

    assert report.departed == 2 and report.unanswered == 0 and not report.stopped  # bob, and hidden dave
    assert report.confirmed == report.asked - 2  # everyone else is still there
    lines = await whoknows_lines(fake, "alice")
    assert not any("Bob" in line for line in lines)
    assert lines[:2] == ["🥇 **Alice**: 12 plays", "🥈 **Carol**: 6 plays"]
    _, board = await run(fake, "leaderboard", "carol")  # another asker: not a cached answer
    assert board.embeds[0]["footer"]["text"].startswith("2 members ranked")
    async with world_services.session() as s:
        users = UserRepository(s)
        assert ids["bob"] in await users.visible_member_ids(OTHER_GUILD_ID)  # only this server forgot him
        memberships = {m.guild_id: m.visible for m in await users.memberships(ids["dave"])}
        assert memberships[GUILD_ID] is False  # a hidden member who left keeps the choice…
        assert GUILD_ID not in await users.guild_ids(ids["dave"])  # …but the server is no longer theirs
        assert await users.memberships_to_check(utcnow() - RECHECK_AFTER, limit=100) == []
    fake.assert_clean()


async def test_a_guild_the_bot_left_while_offline_is_set_aside_not_emptied(
        fake: FakeDiscord, bot: commands.Bot, world_services: Services) -> None:
    ids = world_services.extras["world_ids"]
    async with world_services.session() as s:
        for name in ("alice", "bob"):
            await UserRepository(s).ensure_membership(OTHER_GUILD_ID, ids[name])
    await all_due(world_services)
    fake.guilds.pop(OTHER_GUILD_ID)  # kicked while the bot was offline: no GUILD_DELETE ever came

    sweep = MembershipSweep(world_services, discord_membership_probe(bot))
    report = await sweep.run()
    assert report.guilds_refused == 1 and report.departed == 0
    lookups = [r for r in fake.requests if r.path.startswith(f"/guilds/{OTHER_GUILD_ID}/members/")]
    assert len(lookups) == 1  # one refusal sets the whole guild aside for a day
    async with world_services.session() as s:
        users = UserRepository(s)
        assert sorted(await users.visible_member_ids(OTHER_GUILD_ID)) == sorted([ids["alice"], ids["bob"]])
        assert await users.memberships_to_check(utcnow() - RECHECK_AFTER, limit=100) == []
        later = await users.memberships_to_check(utcnow() + RECHECK_AFTER + timedelta(minutes=1), limit=100)
    assert {r.guild_id for r in later} == {GUILD_ID, OTHER_GUILD_ID}  # asked again after a day


async def test_an_outage_of_discord_forgets_nobody(
        fake: FakeDiscord, bot: commands.Bot, world_services: Services) -> None:
    await all_due(world_services)
    async with world_services.session() as s:
        before = await UserRepository(s).visible_member_ids(GUILD_ID)
    fake.member_lookup_outage = True

    report = await MembershipSweep(world_services, discord_membership_probe(bot, timeout_s=0.5)).run()

    assert report.stopped and report.unanswered == 3 and report.asked == 3
    async with world_services.session() as s:
        users = UserRepository(s)
        assert await users.visible_member_ids(GUILD_ID) == before
        assert len(await users.memberships_to_check(utcnow() - RECHECK_AFTER, limit=100)) == len(before)


async def test_a_global_rate_limit_during_a_lookup_does_not_stall_the_bot(
        fake: FakeDiscord, bot: commands.Bot) -> None:
    """discord.py clears its global rate-limit event while it sleeps out a global 429 and sets it
    again only after the sleep: a lookup cancelled in that sleep (a timeout, a scheduler step-down)
    would block every later REST call of the process, weekly DMs included. The probe never cancels
    the request; it answers "unknown" and lets it finish."""
    alice, bob = MEMBERS["alice"].fake.id, MEMBERS["bob"].fake.id
    probe = discord_membership_probe(bot, timeout_s=0.3)
    fake.member_lookup_rate_limit = (1.0, True)

    assert await probe(GUILD_ID, alice) is Presence.UNKNOWN  # still sleeping out the limit
    assert await probe(GUILD_ID, bob) is Presence.UNKNOWN  # no second request piles up meanwhile
    fake.member_lookup_rate_limit = None
    await asyncio.sleep(1.5)  # the limit's time has passed; the first request retried and finished

    assert await probe(GUILD_ID, bob) is Presence.MEMBER
    user = await asyncio.wait_for(bot.fetch_user(alice), 5)  # any other REST call goes through too
    assert user.id == alice
    lookups = [r for r in fake.requests if r.path.startswith(f"/guilds/{GUILD_ID}/members/")]
    assert [r.status for r in lookups] == [429, 200, 200]  # alice's retried once; bob's asked once
