"""`WeeklyDigest.run_due` against the real database with recording ports and a fake clock."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from core.asker import Asker
from core.db.repositories import SchedulingRepository, UserRepository
from core.services import Services, build_services
from core.weekly import (
    DeliveryOutcome,
    DeliveryStatus,
    DigestContent,
    ServerMatesContent,
    WeeklyDigest,
    WeeklySettings,
)
from tests.bot.world import GUILD_ID, MEMBERS

FRIDAY_DUE = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)  # Friday 18:00 in Berlin, 2026-W49
SLOT = "2026-W49"


class Mailbox:
    """The deliver port: records every DM and answers with a per-recipient outcome."""

    def __init__(self, outcomes: dict[int, DeliveryStatus] | None = None, delay: float = 0.0) -> None:
        self.outcomes = outcomes or {}
        self.delay = delay
        self.calls: list[tuple[int, DigestContent]] = []

    async def __call__(self, discord_id: int, content: DigestContent) -> DeliveryOutcome:
        self.calls.append((discord_id, content))
        await asyncio.sleep(self.delay)
        return DeliveryOutcome(self.outcomes.get(discord_id, "sent"))

    def recipients(self) -> Counter[int]:
        return Counter(d for d, _ in self.calls)


def did(name: str) -> int:
    return MEMBERS[name].fake.id


async def enable(services: Services, *names: str, day: str = "friday", time: str = "18:00",
                 tz: str = "Europe/Berlin", quiet: tuple[str, str] | None = None) -> None:
    ids = services.extras["world_ids"]
    for name in names:
        await WeeklySettings(services).configure(Asker(ids[name], did(name)), enabled=True, day=day, time=time, timezone=tz,
                                                 quiet_start=quiet[0] if quiet else None,
                                                 quiet_end=quiet[1] if quiet else None)


async def status(services: Services, name: str, slot: str = SLOT) -> str | None:
    async with services.session() as session:
        row = await SchedulingRepository(session).dm_delivery(services.extras["world_ids"][name], slot)
        return row.status if row else None


async def test_one_dm_per_due_user_and_never_twice(world_services: Services) -> None:
    await enable(world_services, "alice", "carol")
    await enable(world_services, "dave", day="saturday")  # not due on Friday
    mail = Mailbox()
    digest = WeeklyDigest(world_services, ServerMatesContent(world_services), mail)

    assert (await digest.run_due(FRIDAY_DUE - timedelta(minutes=1))).attempted == []
    report = await digest.run_due(FRIDAY_DUE + timedelta(minutes=2))
    assert sorted(report.sent) == sorted([world_services.extras["world_ids"][n] for n in ("alice", "carol")])
    assert mail.recipients() == Counter({did("alice"): 1, did("carol"): 1})
    assert await status(world_services, "alice") == "sent" and await status(world_services, "dave") is None

    again = await digest.run_due(FRIDAY_DUE + timedelta(minutes=7))  # the next 5-minute tick
    assert again.attempted == [] and len(mail.calls) == 2
    # a restarted process (new digest, new owner) does not resend either
    restarted = WeeklyDigest(world_services, ServerMatesContent(world_services), mail)
    assert (await restarted.run_due(FRIDAY_DUE + timedelta(minutes=12))).attempted == []
    assert len(mail.calls) == 2


async def test_content_is_server_mates_artists_the_user_does_not_play(world_services: Services) -> None:
    await enable(world_services, "alice")
    ids = world_services.extras["world_ids"]
    async with world_services.session() as session:  # dave hides in the guild: his artists must not leak
        await UserRepository(session).set_guild_visibility(GUILD_ID, ids["dave"], False)
    mail = Mailbox()
    await WeeklyDigest(world_services, ServerMatesContent(world_services), mail).run_due(FRIDAY_DUE)
    [(recipient, content)] = mail.calls
    names = [item.name for item in content.items]
    assert recipient == did("alice") and content.source == "server-mates"
    assert names and not set(names) & set(MEMBERS["alice"].artists)
    assert not set(names) & set(MEMBERS["dave"].artists)
    assert set(names) <= set(MEMBERS["bob"].artists) | set(MEMBERS["carol"].artists)
    assert content.items[0].reason.startswith("1 server-mate play")
    assert content.opener  # from the explainer (template here: no model configured)
    assert content.top_artists[0] == "Radiohead"


async def test_dm_closed_stops_until_dm_again(world_services: Services) -> None:
    await enable(world_services, "alice", "bob")
    mail = Mailbox({did("bob"): "dm_closed"})
    digest = WeeklyDigest(world_services, ServerMatesContent(world_services), mail)
    report = await digest.run_due(FRIDAY_DUE)
    bob = world_services.extras["world_ids"]["bob"]
    assert report.dm_closed == [bob]
    assert await status(world_services, "bob") == "dm_closed"
    async with world_services.session() as session:
        assert (await UserRepository(session).settings(bob)).dm_closed_at == FRIDAY_DUE

    next_week = await digest.run_due(FRIDAY_DUE + timedelta(days=7))
    assert bob not in next_week.attempted and mail.recipients()[did("bob")] == 1
    assert mail.recipients()[did("alice")] == 2

    await WeeklySettings(world_services).configure(Asker(bob, did("bob")), enabled=True)  # bob runs /dm again
    mail.outcomes.clear()
    week_after = await digest.run_due(FRIDAY_DUE + timedelta(days=14))
    assert bob in week_after.sent and await status(world_services, "bob", "2026-W51") == "sent"


async def test_failures_are_recorded_and_not_retried_that_week(world_services: Services) -> None:
    await enable(world_services, "alice", "carol", "erin")

    async def deliver(discord_id: int, content: DigestContent) -> DeliveryOutcome:
        if discord_id == did("carol"):
            raise RuntimeError("boom")
        return DeliveryOutcome("failed", "http 500 0") if discord_id == did("alice") else DeliveryOutcome("sent")

    digest = WeeklyDigest(world_services, ServerMatesContent(world_services), deliver)
    report = await digest.run_due(FRIDAY_DUE)
    ids = world_services.extras["world_ids"]
    assert sorted(report.failed) == sorted([ids["alice"], ids["carol"], ids["erin"]])  # erin: nothing to say
    async with world_services.session() as session:
        repo = SchedulingRepository(session)
        assert (await repo.dm_delivery(ids["carol"], SLOT)).error == "RuntimeError"  # type: ignore[union-attr]
        assert (await repo.dm_delivery(ids["erin"], SLOT)).error == "no_content"  # type: ignore[union-attr]
    assert (await digest.run_due(FRIDAY_DUE + timedelta(minutes=5))).attempted == []  # no retry storm
    assert len((await digest.run_due(FRIDAY_DUE + timedelta(days=7))).failed) == 3  # but next week, again


async def test_two_digests_in_two_processes_send_one_dm_per_slot(world_services: Services) -> None:
    await enable(world_services, "alice", "carol", "bob")
    other = await build_services(world_services.settings, upgrade_schema=False)  # a second bot process
    try:
        mail = Mailbox(delay=0.05)
        first = WeeklyDigest(world_services, ServerMatesContent(world_services), mail, owner="process-a")
        second = WeeklyDigest(other, ServerMatesContent(other), mail, owner="process-b")
        reports = await asyncio.gather(*(d.run_due(FRIDAY_DUE + timedelta(minutes=1))
                                         for d in (first, second, first, second)))
    finally:
        await other.close()
    assert mail.recipients() == Counter({did("alice"): 1, did("carol"): 1, did("bob"): 1})
    assert sum(len(r.sent) for r in reports) == 3


async def test_quiet_hours_postpone_and_deliver_after(world_services: Services) -> None:
    await enable(world_services, "alice", time="23:00", quiet=("22:00", "07:00"))
    await enable(world_services, "carol", time="21:58", quiet=("22:00", "07:00"))
    mail = Mailbox()
    digest = WeeklyDigest(world_services, ServerMatesContent(world_services), mail)
    friday_2258_berlin = datetime(2026, 12, 4, 21, 58, tzinfo=UTC)
    # carol's slot came at 21:58 but the job ran at 22:03 local: inside quiet hours, so it waits
    report = await digest.run_due(friday_2258_berlin - timedelta(minutes=55))  # 22:03 Berlin
    assert report.attempted == [] and report.postponed == [world_services.extras["world_ids"]["carol"]]
    assert (await digest.run_due(friday_2258_berlin)).attempted == []  # alice's 23:00 is quiet too
    saturday_0701_berlin = datetime(2026, 12, 5, 6, 1, tzinfo=UTC)
    morning = await digest.run_due(saturday_0701_berlin)
    assert len(morning.sent) == 2 and mail.recipients() == Counter({did("alice"): 1, did("carol"): 1})
    assert await status(world_services, "alice") == "sent"  # still this week's slot key


class ChangingMindContent:
    """The real content port, plus a member's command landing while the run builds the first DM
    (the run lists its candidates once, then works for up to a minute per member)."""

    def __init__(self, services: Services, during_first: object) -> None:
        self.inner = ServerMatesContent(services)
        self.during_first = during_first
        self.built: list[int] = []

    async def __call__(self, user_id: int) -> DigestContent:
        if not self.built:
            await self.during_first(user_id)  # type: ignore[operator]
        self.built.append(user_id)
        return await self.inner(user_id)


async def test_a_member_who_turns_dms_off_during_the_run_gets_no_dm(world_services: Services) -> None:
    """/dm off must win over a run that listed the member a moment before."""
    await enable(world_services, "alice", "carol")
    ids = world_services.extras["world_ids"]
    names = {ids["alice"]: "alice", ids["carol"]: "carol"}

    async def both_turn_dms_off(first: int) -> None:
        for name in names.values():  # the other member before their DM, the first one before delivery
            await WeeklySettings(world_services).configure(Asker(ids[name], did(name)), enabled=False)

    mail = Mailbox()
    report = await WeeklyDigest(world_services, ChangingMindContent(world_services, both_turn_dms_off), mail,
                                concurrency=1).run_due(FRIDAY_DUE + timedelta(minutes=1))

    assert mail.calls == [] and report.sent == []
    assert sorted(report.skipped) == sorted(names)
    for name in names.values():  # nothing recorded as sent, and the slot is free if they turn DMs on again
        assert await status(world_services, name) is None
    await enable(world_services, "carol")
    again = await WeeklyDigest(world_services, ServerMatesContent(world_services), mail).run_due(
        FRIDAY_DUE + timedelta(minutes=6))
    assert again.sent == [ids["carol"]] and mail.recipients() == Counter({did("carol"): 1})


async def test_a_member_forgotten_during_the_run_is_skipped_and_the_others_still_get_theirs(
        world_services: Services) -> None:
    await enable(world_services, "alice", "carol", "bob")
    ids = world_services.extras["world_ids"]

    async def someone_else_forgets(first: int) -> None:
        gone = next(n for n in ("alice", "carol", "bob") if ids[n] != first)
        await world_services.accounts.forget(Asker(ids[gone], did(gone), GUILD_ID))
        names.discard(gone)

    names = {"alice", "carol", "bob"}
    mail = Mailbox()
    report = await WeeklyDigest(world_services, ChangingMindContent(world_services, someone_else_forgets), mail,
                                concurrency=1).run_due(FRIDAY_DUE + timedelta(minutes=1))

    assert len(report.skipped) == 1 and report.failed == []
    assert mail.recipients() == Counter({did(n): 1 for n in names})
