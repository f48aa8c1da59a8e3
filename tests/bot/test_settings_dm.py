"""/dm end to end: settings stored (checked in the DB), bad input refused, the confirmation's timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.db.models import UserSettings
from core.db.repositories import UserRepository
from core.services import Services
from core.weekly import CATCH_UP
from tests.bot.world import GUILD_ID
from tests.fakes.discord_server import FakeDiscord


async def answer(fake: FakeDiscord, payload: dict[str, Any]) -> dict[str, Any]:
    record = await fake.dispatch(payload)
    return (await record.wait_final()).body


async def settings_of(services: Services, user_id: int) -> UserSettings | None:
    async with services.session() as session:
        return await session.get(UserSettings, user_id)


def expected_next(weekday: int, minute: int, tz: str, now: datetime) -> datetime | None:
    """Independent of core.weekly: this or next week's local slot; None when it is due right now."""
    local_now = now.astimezone(ZoneInfo(tz))
    monday = local_now.date() - timedelta(days=local_now.weekday())
    for week in (0, 1):
        day = monday + timedelta(days=weekday + 7 * week)
        slot = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=ZoneInfo(tz))
        if slot > now:
            return slot
        if now < slot + CATCH_UP:
            return None
    raise AssertionError("unreachable")


async def test_dm_stores_settings_and_confirms_next_delivery(sonance: FakeDiscord, world_services: Services) -> None:
    alice = world_services.extras["world_ids"]["alice"]
    before = datetime.now(UTC)
    body = await answer(sonance, sonance.slash("dm", {
        "enabled": True, "day": "monday", "time": "08:30", "timezone": "Europe/Berlin",
        "quiet_start": "22:00", "quiet_end": "07:00"}, user="alice", guild=GUILD_ID))
    assert body["flags"] & 64  # ephemeral
    content = body["content"]
    assert "every **Monday** at **08:30** (Europe/Berlin)" in content
    assert "Quiet hours: 22:00–07:00" in content
    expected = expected_next(0, 8 * 60 + 30, "Europe/Berlin", before)
    if expected is not None:
        assert f"<t:{int(expected.timestamp())}:F>" in content
        assert f"**{expected:%A %d %B, %H:%M}** Europe/Berlin" in content
    else:
        assert "due now" in content

    stored = await settings_of(world_services, alice)
    assert stored is not None
    assert (stored.dm_enabled, stored.dm_weekday, stored.dm_minute, stored.timezone) == (True, 0, 510, "Europe/Berlin")
    assert (stored.quiet_start_minute, stored.quiet_end_minute, stored.dm_closed_at) == (1320, 420, None)

    # Changing one thing keeps the rest; turning off is confirmed as off
    body = await answer(sonance, sonance.slash("dm", {"enabled": False}, user="alice", guild=GUILD_ID))
    assert "**off**" in body["content"]
    stored = await settings_of(world_services, alice)
    assert stored is not None and not stored.dm_enabled and stored.timezone == "Europe/Berlin"
    sonance.assert_clean()


async def test_dm_refuses_garbage_and_stores_nothing(sonance: FakeDiscord, world_services: Services) -> None:
    carol = world_services.extras["world_ids"]["carol"]
    cases = [
        ({"enabled": True, "time": "25:00"}, "isn't a valid time"),
        ({"enabled": True, "time": "6pm"}, "isn't a valid time"),
        ({"enabled": True, "timezone": "Mars/Olympus_Mons"}, "isn't a time zone I know"),
        ({"enabled": True, "timezone": "Europe"}, "isn't a time zone I know"),
        ({"enabled": True, "quiet_start": "23:00"}, "need both"),
        ({"enabled": True, "quiet_start": "23:00", "quiet_end": "23:00"}, "same time"),
        ({"enabled": True, "time": "18:00", "quiet_end": "7"}, "isn't a valid quiet_end"),
    ]
    for options, message in cases:
        body = await answer(sonance, sonance.slash("dm", options, user="carol", guild=GUILD_ID))
        assert message in body["content"], (options, body)
        assert body["flags"] & 64
        stored = await settings_of(world_services, carol)
        assert stored is None or (not stored.dm_enabled and stored.dm_minute == 18 * 60
                                  and stored.timezone == "UTC" and stored.quiet_start_minute is None)
    sonance.assert_clean()


async def test_dm_acknowledges_privately_before_storing_and_refuses_in_a_follow_up(sonance: FakeDiscord) -> None:
    """/dm reads and writes settings before it can answer: it defers first, privately (the answer is
    personal), so a slow database never makes it miss Discord's 3 s; the confirmation and a refusal
    then both arrive as one private follow-up."""
    for options, expected in (({"enabled": True, "time": "07:15"}, "**07:15** (UTC)"),
                              ({"enabled": True, "time": "25:00"}, "isn't a valid time")):
        record = await sonance.dispatch(sonance.slash("dm", options, user="dave", guild=GUILD_ID))
        final = await record.wait_final()
        ack = record.ack
        assert ack is not None and ack.type == 5 and (ack.data or {}).get("flags", 0) & 64, ack
        assert final.kind == "followup" and final.ephemeral and expected in (final.content or "")
        assert len(record.visible_messages()) == 1 and not record.rejected_callbacks
    sonance.assert_clean()


async def test_dm_normalises_zone_case(sonance: FakeDiscord, world_services: Services) -> None:
    body = await answer(sonance, sonance.slash("dm", {"enabled": True, "timezone": "america/new_york"},
                                               user="erin", guild=GUILD_ID))
    assert "(America/New_York)" in body["content"]
    stored = await settings_of(world_services, world_services.extras["world_ids"]["erin"])
    assert stored is not None and stored.timezone == "America/New_York" and stored.dm_weekday == 4
    sonance.assert_clean()


async def test_dm_again_clears_dm_closed(sonance: FakeDiscord, world_services: Services) -> None:
    bob = world_services.extras["world_ids"]["bob"]
    async with world_services.session() as session:
        await UserRepository(session).update_settings(bob, dm_enabled=True, dm_closed_at=datetime.now(UTC))
    await answer(sonance, sonance.slash("dm", {"enabled": True}, user="bob", guild=GUILD_ID))
    stored = await settings_of(world_services, bob)
    assert stored is not None and stored.dm_enabled and stored.dm_closed_at is None
    sonance.assert_clean()


async def test_timezone_autocomplete(sonance: FakeDiscord) -> None:
    for typed, wanted in (("berl", "Europe/Berlin"), ("new_y", "America/New_York"), ("", "UTC")):
        record = await sonance.dispatch(sonance.autocomplete("dm", "timezone", typed, user="alice"))
        await record.wait_ack()
        values = [c["value"] for c in record.choices or []]
        assert wanted in values and len(values) <= 25, (typed, values)
    record = await sonance.dispatch(sonance.autocomplete("dm", "timezone", "e", user="alice"))
    await record.wait_ack()
    assert len(record.choices or []) == 25
    sonance.assert_clean()


async def test_dm_says_what_it_stored_when_off_and_when_the_time_is_in_quiet_hours(sonance: FakeDiscord) -> None:
    body = await answer(sonance, sonance.slash("dm", {"enabled": False, "day": "friday", "time": "09:00"},
                                               user="bob", guild=GUILD_ID))
    assert body["content"] == ("Weekly recommendation DMs are **off**. Turn them back on any time with "
                               "`/dm enabled:True`; they will come every **Friday** at **09:00** (UTC).")
    body = await answer(sonance, sonance.slash("dm", {
        "enabled": True, "time": "23:00", "quiet_start": "22:00", "quiet_end": "07:00"}, user="bob", guild=GUILD_ID))
    assert ("**23:00** is inside your quiet hours, so each DM waits until they end at **07:00**. "
            "Pick another time if you'd rather.") in body["content"]
    body = await answer(sonance, sonance.slash("dm", {"enabled": True, "time": "21:00"}, user="bob", guild=GUILD_ID))
    assert "inside your quiet hours" not in body["content"]
    sonance.assert_clean()
