"""Which memberships the sweep asks Discord about, and what a command proves by itself.

On both engines (SQLite by default, PostgreSQL with SONANCE_TEST_DATABASE_URL), through
`UserRepository` and `AskerDirectory`; the answers of the real Discord REST API are exercised end
to end in tests/bot/test_member_departures.py.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from core.db.models import GuildMembership
from core.db.repositories import UserRepository
from core.db.types import utcnow
from core.identity import CHECK_REFRESH
from core.memberships import RECHECK_AFTER, MembershipSweep, Presence
from core.services import Services

GUILD, OTHER = 1_000, 2_000


async def set_checked(services: Services, guild_id: int, user_id: int, ago: timedelta | None) -> None:
    async with services.session() as s:
        await s.execute(update(GuildMembership).where(GuildMembership.guild_id == guild_id,
                                                      GuildMembership.user_id == user_id)
                        .values(checked_at=None if ago is None else utcnow() - ago))


async def checked_at(services: Services, guild_id: int, user_id: int):  # type: ignore[no-untyped-def]
    async with services.session() as s:
        return (await s.execute(select(GuildMembership.checked_at).where(
            GuildMembership.guild_id == guild_id, GuildMembership.user_id == user_id))).scalar_one_or_none()


async def members(services: Services, *discord_ids: int) -> list[int]:
    async with services.session() as s:
        users = UserRepository(s)
        return [(await users.get_or_create_discord(d, f"user {d}")).id for d in discord_ids]


async def test_due_memberships_are_current_ones_never_or_long_ago_checked_oldest_first(services: Services) -> None:
    fresh, never, old, older, hidden = await members(services, 1, 2, 3, 4, 5)
    async with services.session() as s:
        users = UserRepository(s)
        for user_id in (fresh, never, old, older, hidden):
            await users.ensure_membership(GUILD, user_id)
        await users.set_guild_visibility(GUILD, hidden, False)
        listener = (await users.ensure_dataset_users("hetrec", ["hetrec:9"]))["hetrec:9"]
        await users.ensure_membership(GUILD, listener)  # a stray row of a dataset listener
    await set_checked(services, GUILD, never, None)
    await set_checked(services, GUILD, old, RECHECK_AFTER + timedelta(hours=1))
    await set_checked(services, GUILD, older, RECHECK_AFTER + timedelta(hours=5))
    await set_checked(services, GUILD, hidden, RECHECK_AFTER + timedelta(hours=3))
    await set_checked(services, GUILD, listener, None)

    async with services.session() as s:
        due = await UserRepository(s).memberships_to_check(utcnow() - RECHECK_AFTER, limit=10)
        # hidden members too: a server they left must leave their weekly DM's server-mates
        assert [(r.user_id, r.discord_id) for r in due] == [(never, 2), (older, 4), (hidden, 5), (old, 3)]
        assert len(await UserRepository(s).memberships_to_check(utcnow() - RECHECK_AFTER, limit=2)) == 2


async def test_a_command_in_the_guild_confirms_its_member_at_most_twice_a_day(services: Services) -> None:
    asker = await services.askers.resolve(7, "Seven", GUILD)
    first = await checked_at(services, GUILD, asker.user_id)
    assert first is not None and utcnow() - first < timedelta(minutes=1)  # a first use records it as checked

    await set_checked(services, GUILD, asker.user_id, CHECK_REFRESH - timedelta(minutes=5))
    kept = await checked_at(services, GUILD, asker.user_id)
    await services.askers.resolve(7, "Seven", GUILD)
    assert await checked_at(services, GUILD, asker.user_id) == kept  # fresh enough: no write

    await set_checked(services, GUILD, asker.user_id, CHECK_REFRESH + timedelta(minutes=5))
    await services.askers.resolve(7, "Seven", GUILD)
    refreshed = await checked_at(services, GUILD, asker.user_id)
    assert refreshed is not None and utcnow() - refreshed < timedelta(minutes=1)

    await set_checked(services, GUILD, asker.user_id, None)  # unchecked since the migration
    await services.askers.resolve(7, "Seven", OTHER)  # another guild's command proves nothing here
    assert await checked_at(services, GUILD, asker.user_id) is None
    await services.askers.resolve(7, "Seven", GUILD)
    assert await checked_at(services, GUILD, asker.user_id) is not None


async def test_the_sweep_applies_each_answer_and_stops_when_discord_keeps_failing(services: Services) -> None:
    ids = await members(services, 11, 12, 13, 14, 15, 16)
    async with services.session() as s:
        users = UserRepository(s)
        for user_id in ids:
            await users.ensure_membership(GUILD, user_id)
    for user_id in ids:
        await set_checked(services, GUILD, user_id, None)
    answers = {12: Presence.GONE, 13: Presence.MEMBER}
    asked: list[int] = []

    async def probe(guild_id: int, discord_id: int) -> Presence:
        asked.append(discord_id)
        if discord_id == 16:
            raise RuntimeError("Session is closed")  # a probe's own failure ends nothing
        return answers.get(discord_id, Presence.UNKNOWN)

    report = await MembershipSweep(services, probe).run(limit=10)
    # 11 fails, then answers, then 14, 15, 16 fail in a row: Discord is down, the run ends
    assert asked == [11, 12, 13, 14, 15, 16]
    assert (report.confirmed, report.departed, report.unanswered, report.stopped) == (1, 1, 4, True)
    async with services.session() as s:
        users = UserRepository(s)
        assert set(await users.visible_member_ids(GUILD)) == set(ids) - {ids[1]}
        due = await users.memberships_to_check(utcnow() - RECHECK_AFTER, limit=10)
    assert [r.discord_id for r in due] == [11, 14, 15, 16]  # unanswered ones stay due


async def test_a_command_while_discord_is_asked_beats_a_stale_unknown_member(services: Services) -> None:
    """Discord said "Unknown Member" for a member who rejoined and used Sonance before the answer
    was applied: the command is the later, stronger proof, and their membership stays."""
    [user_id] = await members(services, 21)
    async with services.session() as s:
        await UserRepository(s).ensure_membership(GUILD, user_id)
    await set_checked(services, GUILD, user_id, None)

    async def probe(guild_id: int, discord_id: int) -> Presence:
        await services.askers.resolve(discord_id, "Twenty-one", guild_id)  # they are back, meanwhile
        return Presence.GONE

    report = await MembershipSweep(services, probe).run()
    assert report.departed == 0
    async with services.session() as s:
        assert await UserRepository(s).visible_member_ids(GUILD) == [user_id]


async def test_a_hidden_member_who_left_keeps_the_choice_but_not_the_membership(services: Services) -> None:
    [user_id] = await members(services, 31)
    async with services.session() as s:
        users = UserRepository(s)
        await users.set_guild_visibility(GUILD, user_id, False)
        await users.ensure_membership(OTHER, user_id)
    await set_checked(services, GUILD, user_id, None)

    async def probe(guild_id: int, discord_id: int) -> Presence:
        return Presence.GONE if guild_id == GUILD else Presence.MEMBER

    assert (await MembershipSweep(services, probe).run()).departed == 1
    async with services.session() as s:
        users = UserRepository(s)
        assert await users.guild_ids(user_id) == [OTHER]  # no longer among their servers
        assert not await users.is_member(GUILD, user_id)
        assert [(m.guild_id, m.visible) for m in await users.memberships(user_id)] == [(GUILD, False), (OTHER, None)]
        await users.clear_guild_visibility(user_id)  # "/privacy public everywhere", asked elsewhere
        assert user_id not in await users.visible_member_ids(GUILD)  # not shown where they left

    await services.askers.resolve(31, "Thirty-one", GUILD)  # back, and using Sonance there again
    async with services.session() as s:
        users = UserRepository(s)
        assert await users.guild_ids(user_id) == [GUILD, OTHER]
        assert user_id in await users.visible_member_ids(GUILD)  # the choice they made since applies
