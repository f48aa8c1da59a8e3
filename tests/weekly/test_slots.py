"""Slot arithmetic of the weekly DM: local calendars, DST edges, quiet hours, the catch-up window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import InvalidInput
from core.weekly import (
    CATCH_UP,
    DmPrefs,
    next_slot,
    open_slot,
    parse_hhmm,
    slot_for_week,
    timezone_choices,
    zone,
)

FRI, SAT, SUN, MON = 4, 5, 6, 0


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_berlin_in_the_last_week_of_march_follows_the_dst_switch() -> None:
    # 2026-W13 is 23-29 March; clocks go from CET (+1) to CEST (+2) at 01:00 UTC on Sunday 29 March.
    friday = slot_for_week(DmPrefs(FRI, 18 * 60, "Europe/Berlin"), 2026, 13)
    sunday = slot_for_week(DmPrefs(SUN, 18 * 60, "Europe/Berlin"), 2026, 13)
    assert friday.due_at == utc(2026, 3, 27, 17, 0)
    assert sunday.due_at == utc(2026, 3, 29, 16, 0)  # not 17:00: a fixed offset from Friday would be wrong
    assert sunday.key == friday.key == "2026-W13"
    # 02:30 does not exist that night: it fires at the first instant after the gap, 03:30 CEST
    gap = slot_for_week(DmPrefs(SUN, 2 * 60 + 30, "Europe/Berlin"), 2026, 13)
    assert gap.due_at == utc(2026, 3, 29, 1, 30)
    assert (gap.local.hour, gap.local.minute, gap.local.utcoffset()) == (3, 30, timedelta(hours=2))
    # ... and open_slot sees the Sunday slot open at 16:00 UTC, not at 17:00
    prefs = DmPrefs(SUN, 18 * 60, "Europe/Berlin")
    assert open_slot(prefs, utc(2026, 3, 29, 15, 59)) is None
    assert open_slot(prefs, utc(2026, 3, 29, 16, 0)) == sunday


def test_repeated_autumn_hour_fires_once_at_its_first_occurrence() -> None:
    # 25 October 2026: 02:00-03:00 happens twice in Berlin (CEST then CET)
    slot = slot_for_week(DmPrefs(SUN, 2 * 60 + 30, "Europe/Berlin"), 2026, 43)
    assert slot.due_at == utc(2026, 10, 25, 0, 30)


def test_slot_key_is_the_users_local_week() -> None:
    # Sunday 20:00 in Los Angeles is Monday 04:00 UTC (UTC's next ISO week): the key stays local
    la = DmPrefs(SUN, 20 * 60, "America/Los_Angeles")
    slot = open_slot(la, utc(2026, 11, 30, 4, 1))
    assert slot is not None and slot.key == "2026-W48" and slot.due_at == utc(2026, 11, 30, 4, 0)
    # Monday 07:00 in Auckland is Sunday 18:00 UTC (UTC's previous ISO week)
    nz = DmPrefs(MON, 7 * 60, "Pacific/Auckland")
    slot = open_slot(nz, utc(2026, 11, 29, 18, 5))
    assert slot is not None and slot.key == "2026-W49" and slot.due_at == utc(2026, 11, 29, 18, 0)
    # ISO years: Friday 1 January 2027 belongs to 2026-W53
    assert slot_for_week(DmPrefs(FRI, 9 * 60, "UTC"), 2026, 53).due_at == utc(2027, 1, 1, 9, 0)
    assert open_slot(DmPrefs(FRI, 9 * 60, "UTC"), utc(2027, 1, 1, 9, 0)).key == "2026-W53"  # type: ignore[union-attr]


def test_quiet_hours_postpone_a_slot_to_their_end_even_across_midnight() -> None:
    prefs = DmPrefs(FRI, 23 * 60, "Europe/Berlin", quiet_start=22 * 60, quiet_end=7 * 60)
    slot = slot_for_week(prefs, 2026, 49)  # Friday 4 December, 23:00 CET
    assert slot.local == datetime(2026, 12, 4, 23, 0, tzinfo=zone("Europe/Berlin"))
    assert slot.due_at == utc(2026, 12, 5, 6, 0)  # Saturday 07:00 CET
    assert slot.deadline == slot.due_at + CATCH_UP + timedelta(hours=9)
    assert prefs.in_quiet(23 * 60) and prefs.in_quiet(3 * 60) and not prefs.in_quiet(7 * 60)
    # A daytime quiet window that does not contain the slot changes nothing
    daytime = DmPrefs(FRI, 18 * 60, "UTC", quiet_start=12 * 60, quiet_end=14 * 60)
    assert slot_for_week(daytime, 2026, 49).due_at == utc(2026, 12, 4, 18, 0)


def test_window_and_next_slot() -> None:
    prefs = DmPrefs(FRI, 18 * 60, "UTC")
    due = utc(2026, 12, 4, 18, 0)
    assert open_slot(prefs, due - timedelta(minutes=1)) is None
    assert open_slot(prefs, due + CATCH_UP - timedelta(minutes=1)) is not None
    assert open_slot(prefs, due + CATCH_UP) is None  # the bot was down too long: skip, don't DM late
    # Turning DMs on on Thursday announces Friday; on Saturday, the next Friday
    assert next_slot(prefs, utc(2026, 12, 3), set()).due_at == due
    assert next_slot(prefs, utc(2026, 12, 5), set()).due_at == due + timedelta(days=7)
    # A slot delivered (or refused) this week is not announced again
    assert next_slot(prefs, due + timedelta(minutes=5), {"2026-W49"}).key == "2026-W50"


@pytest.mark.parametrize(("text", "minutes"), [("18:30", 1110), ("0:00", 0), ("07:05", 425), (" 23:59 ", 1439)])
def test_parse_hhmm(text: str, minutes: int) -> None:
    assert parse_hhmm(text) == minutes


@pytest.mark.parametrize("text", ["24:00", "12:60", "6pm", "1830", "12:5", "", "-1:00", "१२:००"])
def test_parse_hhmm_refuses(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_hhmm(text)


def test_zones() -> None:
    assert zone("europe/berlin").key == "Europe/Berlin"
    for bad in ("Mars/Olympus", "Europe", "../etc/passwd", "/etc/localtime", ""):
        with pytest.raises(InvalidInput):
            zone(bad)
    assert timezone_choices("berlin")[0] == "Europe/Berlin"
    assert len(timezone_choices("a")) == 25
