"""Weekly DMs end to end: /dm through the real bot, `WeeklyDigest` with the Discord delivery port, the
fake Discord's DM inbox (bob has DMs closed there: 50007), and the scheduler wiring of `bot.app`."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

from discord.ext import commands

from bot.app import build_jobs, scheduler_probe
from bot.dm_delivery import DiscordDmDelivery
from core.db.repositories import SchedulingRepository, UserRepository
from core.db.types import utcnow
from core.scheduler import SonanceScheduler
from core.services import Services
from core.weekly import WEEKDAYS, ServerMatesContent, WeeklyDigest
from tests.bot.world import GUILD_ID, MEMBERS
from tests.fakes.discord_server import FakeDiscord

FRIDAY_DUE = datetime(2026, 12, 4, 17, 2, tzinfo=UTC)  # Friday 18:02 in Berlin, 2026-W49


async def slash_dm(fake: FakeDiscord, user: str, **options: object) -> str:
    record = await fake.dispatch(fake.slash("dm", {"enabled": True, **options}, user=user, guild=GUILD_ID))
    return (await record.wait_final()).content or ""


async def test_weekly_dm_flow_with_closed_dms(live_bot: commands.Bot, fake: FakeDiscord,
                                              world_services: Services) -> None:
    for name in ("alice", "bob"):
        await slash_dm(fake, name, day="friday", time="18:00", timezone="Europe/Berlin")
    digest = WeeklyDigest(world_services, ServerMatesContent(world_services), DiscordDmDelivery(live_bot))
    ids = world_services.extras["world_ids"]

    report = await digest.run_due(FRIDAY_DUE)
    assert report.sent == [ids["alice"]] and report.dm_closed == [ids["bob"]]
    [dm] = fake.dms
    assert dm.recipient_id == MEMBERS["alice"].fake.id
    embed = dm.body["embeds"][0]
    assert embed["title"] == "Your weekly picks" and embed["description"]
    names = [f["name"].split(". ", 1)[1] for f in embed["fields"]]
    assert names and not set(names) & set(MEMBERS["alice"].artists)
    assert embed["footer"]["text"].endswith("turn these off with /dm")
    assert "components" not in dm.body or not dm.body["components"]  # no feedback buttons without rec ids
    assert len(fake.dm_failures) == 1  # bob's 50007
    async with world_services.session() as session:
        repo = SchedulingRepository(session)
        assert (await repo.dm_delivery(ids["bob"], "2026-W49")).status == "dm_closed"  # type: ignore[union-attr]
        assert (await UserRepository(session).settings(ids["bob"])).dm_closed_at == FRIDAY_DUE

    # the next tick and the next week: alice once more, bob never retried
    assert (await digest.run_due(FRIDAY_DUE + timedelta(minutes=5))).attempted == []
    next_week = await digest.run_due(FRIDAY_DUE + timedelta(days=7))
    assert next_week.sent == [ids["alice"]] and next_week.dm_closed == []
    assert len(fake.dms) == 2 and len(fake.dm_failures) == 1

    # bob opens his DMs and runs /dm again: eligible from the next slot on
    bob = fake.user("bob")
    fake.users[bob.id] = dataclasses.replace(bob, dms_open=True)  # a copy: the world's users are shared
    confirmation = await slash_dm(fake, "bob")
    assert "every **Friday** at **18:00** (Europe/Berlin)" in confirmation
    week_after = await digest.run_due(FRIDAY_DUE + timedelta(days=14))
    assert sorted(week_after.sent) == sorted([ids["alice"], ids["bob"]])
    assert [d.recipient_id for d in fake.dms[-2:]].count(bob.id) == 1
    fake.assert_clean()


async def test_app_wiring_runs_weekly_dms_under_the_scheduler(live_bot: commands.Bot, fake: FakeDiscord,
                                                              world_services: Services) -> None:
    """`build_jobs` gives the scheduler a weekly_dms job that delivers through the running bot."""
    now = utcnow() - timedelta(minutes=1)  # alice's slot: a minute ago, today (UTC)
    await slash_dm(fake, "alice", day=WEEKDAYS[now.weekday()], time=f"{now:%H:%M}", timezone="UTC")
    jobs = build_jobs(world_services, live_bot)
    assert jobs.weekly_dms is not None and jobs.retrain is not None  # nightly retrain of the recommender
    assert jobs.memberships is not None  # members who left a server leave its boards
    assert jobs.sync_active is None and jobs.sync_dormant is None  # no LASTFM_API_KEY in tests

    scheduler = SonanceScheduler(world_services, jobs, owner="test-app", lease_ttl_s=3, renew_every_s=0.5)
    probe = scheduler_probe(scheduler)
    assert await probe() == {"scheduler": "stopped", "jobs": 3}
    scheduler.start()
    try:
        for _ in range(100):
            if scheduler.is_leader:
                break
            await asyncio.sleep(0.05)
        assert await probe() == {"scheduler": "leader", "jobs": 3}
        await jobs.weekly_dms()  # what APScheduler calls every 5 minutes
    finally:
        await scheduler.stop()
    assert await probe() == {"scheduler": "stopped", "jobs": 3}
    assert [d.recipient_id for d in fake.dms] == [MEMBERS["alice"].fake.id]
    # content came from the recommender: each pick carries persistent 👍/👎 buttons
    assert any(c.startswith("sonance:fb:") for c in fake.dms[-1].custom_ids())
    fake.assert_clean()


def test_digest_embed_stays_within_discord_limits() -> None:
    from bot.dm_delivery import digest_embed
    from core.weekly import DigestContent, DigestItem
    from tests.fakes.discord_limits import validate_message_payload

    huge = DigestContent(tuple(DigestItem("n" * 300, "r" * 2000, "https://last.fm/" + "u" * 900)
                               for _ in range(12)), "recommender", opener="o" * 5000)
    embed = digest_embed(huge)
    assert validate_message_payload({"embeds": [embed.to_dict()]}) == []
    assert 1 <= len(embed.fields) <= 10
