"""Weekly recommendation DMs: who is due, exactly-once slot claims, content and delivery via ports.

How a week works, and why:

* **A slot is local.** Each user picks a weekday and a time in their own IANA zone. The slot of an
  ISO week is that weekday/time *in the user's local calendar*, keyed ``"2026-W48"`` by the local
  date's ISO week, then converted to UTC with zoneinfo. A time in the spring-forward gap (02:30 on
  the last Sunday of March in Berlin) resolves with ``fold=0`` to the pre-transition offset, i.e. it
  fires at 03:30 on the new wall clock; a time in the repeated autumn hour fires at its first
  occurrence. Storage and comparisons stay UTC; zones appear only here and at the edges.
* **Quiet hours postpone.** A slot inside the user's quiet hours (local, may wrap midnight) moves to
  the end of them; a run that happens while the user is in quiet hours waits.
* **A window, not a backlog.** A slot is deliverable from its due time for ``CATCH_UP`` (plus the
  length of the quiet hours, so a postponement cannot eat the window). A bot that was down longer
  skips that week rather than DMing on the wrong day, and turning DMs on mid-week does not trigger
  a DM for a slot that passed days ago.
* **Claim, then work.** Before building content the slot is claimed with a unique insert
  (`SchedulingRepository.claim_dm_slot`), committed on its own. Two runs, two processes or a restart
  therefore never send two DMs for one slot. The price is at-most-once: if the process dies between
  claim and send, that week's DM is lost (status stays ``claimed``), which beats a duplicate.
* **Closed DMs stop us.** A 50007 from Discord marks the slot ``dm_closed`` and sets
  ``user_settings.dm_closed_at``; such users are no longer candidates until they run ``/dm`` again
  (which clears it). Other failures are recorded as ``failed`` and not retried that week, so a
  broken recipient cannot cause a retry storm.

Content and delivery are ports (plain async callables) so the engine never imports discord, and the
recommender can replace `ServerMatesContent` without touching the schedule.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from core.asker import Asker
from core.db.repositories import ListenRepository, SchedulingRepository, UserRepository
from core.db.repositories.scheduling import DmCandidate
from core.db.types import utcnow
from core.errors import InvalidInput
from core.explain.types import WeeklyBrief
from core.scheduler import default_owner
from core.services import Services

log = logging.getLogger(__name__)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MINUTES_PER_DAY = 24 * 60
#: How long after its due time a slot may still be delivered (bot downtime, the 5-minute job cadence).
CATCH_UP = timedelta(hours=6)
DIGEST_SIZE = 5
CONTENT_TIMEOUT_S = 60.0
DELIVERY_TIMEOUT_S = 30.0
#: DMs sent at once: each costs ~3 REST calls and Discord allows 50 req/s per bot.
DELIVERY_CONCURRENCY = 4

DeliveryStatus = Literal["sent", "dm_closed", "failed"]
_HHMM = re.compile(r"(?P<h>[01]?[0-9]|2[0-3]):(?P<m>[0-5][0-9])", re.ASCII)


# --- parsing and validation (shared with /dm) --------------------------------------------------------


def parse_hhmm(text: str, what: str = "time") -> int:
    """``"18:30"`` -> minutes after midnight; anything else is refused with a message to show."""
    raw = text.strip()
    if match := _HHMM.fullmatch(raw):
        return int(match["h"]) * 60 + int(match["m"])
    raise InvalidInput(f"`{raw[:20]}` isn't a valid {what}: use 24-hour HH:MM, e.g. `18:30`.")


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    """IANA zone names from the system/tzdata database, sorted once (autocomplete runs often)."""
    return tuple(sorted(z for z in available_timezones() if "/" in z or z == "UTC"))


@lru_cache(maxsize=1)
def _zone_by_lower() -> dict[str, str]:
    return {z.lower(): z for z in _zone_names()}


def zone(name: str) -> ZoneInfo:
    """A validated zone; `InvalidInput` for anything zoneinfo does not know (or path tricks)."""
    cleaned = name.strip().replace(" ", "_")
    cleaned = _zone_by_lower().get(cleaned.lower(), cleaned)  # "europe/berlin" -> "Europe/Berlin"
    try:
        if not cleaned or cleaned.startswith("/") or ".." in cleaned:
            raise ValueError(cleaned)
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata directory ("Europe")
        raise InvalidInput(f"`{cleaned[:64]}` isn't a time zone I know. Pick one from the suggestions, "
                           "e.g. `Europe/Berlin` or `America/New_York`.") from None


def timezone_choices(text: str, limit: int = 25) -> list[str]:
    """Zone names matching what was typed: prefix matches of the name or of its city first."""
    needle = text.strip().lower().replace(" ", "_")
    names = _zone_names()
    if not needle:
        popular = ["UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York",
                   "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
                   "Asia/Tokyo", "Asia/Kolkata", "Asia/Shanghai", "Australia/Sydney", "Pacific/Auckland"]
        return [z for z in popular if z in names][:limit]
    first = [z for z in names if z.lower().startswith(needle) or z.lower().rsplit("/", 1)[-1].startswith(needle)]
    rest = [z for z in names if needle in z.lower() and z not in first]
    return (first + rest)[:limit]


# --- slot arithmetic ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DmPrefs:
    """The scheduling part of a user's settings."""

    weekday: int  # Monday=0
    minute: int  # local minutes after midnight
    timezone: str
    quiet_start: int | None = None
    quiet_end: int | None = None

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_start is not None and self.quiet_end is not None and self.quiet_start != self.quiet_end

    def quiet_length(self) -> timedelta:
        if not self.has_quiet_hours:
            return timedelta(0)
        assert self.quiet_start is not None and self.quiet_end is not None
        return timedelta(minutes=(self.quiet_end - self.quiet_start) % MINUTES_PER_DAY)

    def in_quiet(self, local_minute: int) -> bool:
        """Quiet hours are [start, end) in local time and may wrap midnight (22:00-07:00)."""
        if not self.has_quiet_hours:
            return False
        assert self.quiet_start is not None and self.quiet_end is not None
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local_minute < self.quiet_end
        return local_minute >= self.quiet_start or local_minute < self.quiet_end


@dataclass(frozen=True)
class WeeklySlot:
    key: str  # "2026-W48": ISO week of the slot's *local* date
    local: datetime  # the chosen weekday/time, aware, in the user's zone
    due_at: datetime  # UTC, after postponing out of quiet hours
    deadline: datetime  # UTC; after this the slot is skipped

    def is_open(self, now: datetime) -> bool:
        return self.due_at <= now < self.deadline


def _local(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """Wall-clock time on `day`; fold=0 resolves gaps forward and repeats to the first occurrence.

    Round-tripping through UTC normalises a time that does not exist (spring forward) to the wall
    clock that is actually shown at that instant.
    """
    naive = datetime(day.year, day.month, day.day, minute // 60, minute % 60)
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def slot_for_week(prefs: DmPrefs, iso_year: int, iso_week: int) -> WeeklySlot:
    tz = zone(prefs.timezone)
    day = date.fromisocalendar(iso_year, iso_week, prefs.weekday + 1)
    local = _local(day, prefs.minute, tz)
    due_local = local
    if prefs.in_quiet(prefs.minute):
        assert prefs.quiet_end is not None
        end_day = day if prefs.quiet_end > prefs.minute else day + timedelta(days=1)
        due_local = _local(end_day, prefs.quiet_end, tz)
    due_at = due_local.astimezone(UTC)
    return WeeklySlot(f"{iso_year}-W{iso_week:02d}", local, due_at, due_at + CATCH_UP + prefs.quiet_length())


def slots_around(prefs: DmPrefs, now: datetime, weeks: Sequence[int] = (-1, 0, 1)) -> list[WeeklySlot]:
    """The slots of the weeks around `now` in the user's calendar (the previous week's slot may still
    be open, e.g. Sunday 23:00 postponed past midnight)."""
    today = now.astimezone(zone(prefs.timezone)).date()
    out = []
    for offset in weeks:
        year, week, _ = (today + timedelta(weeks=offset)).isocalendar()
        out.append(slot_for_week(prefs, year, week))
    return out


def open_slot(prefs: DmPrefs, now: datetime) -> WeeklySlot | None:
    """The slot deliverable at `now`, if any (at most one: slots are a week apart)."""
    return next((s for s in slots_around(prefs, now, (-1, 0)) if s.is_open(now)), None)


def next_slot(prefs: DmPrefs, now: datetime, claimed: set[str]) -> WeeklySlot:
    """The next slot that will be delivered: still open or upcoming, and not claimed already."""
    for slot in slots_around(prefs, now, (-1, 0, 1, 2)):
        if slot.key not in claimed and slot.deadline > now:
            return slot
    raise AssertionError("unreachable: a slot two weeks ahead is always upcoming")


def local_minute(moment: datetime, tz_name: str) -> int:
    local = moment.astimezone(zone(tz_name))
    return local.hour * 60 + local.minute


# --- /dm settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DmSchedule:
    """What /dm confirms: the stored settings and the next delivery (None when DMs are off)."""

    enabled: bool
    prefs: DmPrefs
    next_due: datetime | None  # UTC
    due_now: bool = False  # this week's slot is open: the DM arrives within minutes

    @property
    def next_local(self) -> datetime | None:
        return None if self.next_due is None else self.next_due.astimezone(zone(self.prefs.timezone))


class WeeklySettings:
    """Validates and stores /dm choices; every input is checked before anything is written."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def configure(self, asker: Asker, *, enabled: bool, day: str | None = None, time: str | None = None,
                        timezone: str | None = None, quiet_start: str | None = None,
                        quiet_end: str | None = None, now: datetime | None = None) -> DmSchedule:
        changes: dict[str, object] = {"dm_enabled": enabled, "dm_closed_at": None}  # /dm re-opens after 50007
        if day is not None:
            if day.strip().lower() not in WEEKDAYS:
                raise InvalidInput(f"`{day[:20]}` isn't a day of the week.")
            changes["dm_weekday"] = WEEKDAYS.index(day.strip().lower())
        if time is not None:
            changes["dm_minute"] = parse_hhmm(time)
        if timezone is not None:
            changes["timezone"] = zone(timezone).key
        if quiet_start is not None:
            changes["quiet_start_minute"] = _quiet(quiet_start, "quiet_start")
        if quiet_end is not None:
            changes["quiet_end_minute"] = _quiet(quiet_end, "quiet_end")
        now = now or utcnow()
        user_id = asker.user_id
        async with self.services.session() as session:
            users = UserRepository(session)
            current = await users.settings(user_id)
            start = changes.get("quiet_start_minute", current.quiet_start_minute)
            end = changes.get("quiet_end_minute", current.quiet_end_minute)
            if (start is None) != (end is None):
                raise InvalidInput("Quiet hours need both `quiet_start` and `quiet_end` (or `off` for both).")
            if start is not None and start == end:
                raise InvalidInput("Quiet hours can't start and end at the same time.")
            stored = await users.update_settings(user_id, **changes)
            prefs = DmPrefs(stored.dm_weekday, stored.dm_minute, stored.timezone,
                            stored.quiet_start_minute, stored.quiet_end_minute)
            if not stored.dm_enabled:
                return DmSchedule(False, prefs, None)
            repo = SchedulingRepository(session)
            keys = {s.key for s in slots_around(prefs, now, (-1, 0, 1, 2))}
            claimed = {k for _, k in await repo.claimed_dm_slots((user_id, k) for k in keys)}
        slot = next_slot(prefs, now, claimed)
        return DmSchedule(True, prefs, slot.due_at, due_now=slot.due_at <= now)


def _quiet(text: str, what: str) -> int | None:
    """A quiet-hours bound; ``off``/``none`` clears it (both bounds must then be cleared)."""
    if text.strip().lower() in ("off", "none", "-"):
        return None
    return parse_hhmm(text, what)


# --- the digest and its ports ------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestItem:
    name: str
    reason: str
    url: str | None = None
    kind: str = "artist"
    shown_id: int | None = None  # recommendations_shown.id when recorded: feedback buttons point at it


@dataclass(frozen=True)
class DigestContent:
    """One weekly DM's content; `opener` is filled in by `WeeklyDigest` via the explainer."""

    items: tuple[DigestItem, ...]
    source: str  # "server-mates" | "recommender": which content port produced it
    top_artists: tuple[str, ...] = ()
    top_tags: tuple[str, ...] = ()
    opener: str = ""


@dataclass(frozen=True)
class DeliveryOutcome:
    status: DeliveryStatus
    detail: str | None = None  # short, safe to store (error class, Discord code)


ContentPort = Callable[[int], Awaitable[DigestContent]]
DeliverPort = Callable[[int, DigestContent], Awaitable[DeliveryOutcome]]


class ServerMatesContent:
    """Fallback content: artists the user's visible server-mates play that the user does not.

    Honest and explainable from the user's own data while no trained recommender is wired in. Only
    members visible in their guild count (privacy), and the reason names counts, never people.
    """

    def __init__(self, services: Services, size: int = DIGEST_SIZE) -> None:
        self.services = services
        self.size = size

    async def __call__(self, user_id: int) -> DigestContent:
        async with self.services.session() as session:
            users, listens = UserRepository(session), ListenRepository(session)
            mates: set[int] = set()
            for guild_id in await users.guild_ids(user_id):
                mates.update(await users.visible_member_ids(guild_id))
            mates.discard(user_id)
            own = [row.artist_id for row in await listens.user_artist_plays(user_id)]
            reach = await listens.artists_played_by(sorted(mates), own, limit=self.size)
            top = await listens.top_artists(user_id, None, limit=3)
        items = tuple(DigestItem(
            r.name, f"{r.listeners} server-mate{'s' if r.listeners != 1 else ''} play them "
                    f"({r.plays:,} plays) and you haven't yet", r.url) for r in reach)
        return DigestContent(items, "server-mates", top_artists=tuple(name for name, _ in top))


# --- the engine --------------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What one `run_due` did, per user; for logs and tests."""

    sent: list[int] = field(default_factory=list)
    dm_closed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    postponed: list[int] = field(default_factory=list)  # due but inside quiet hours right now
    taken: list[int] = field(default_factory=list)  # claimed by another run/process first
    skipped: list[int] = field(default_factory=list)  # turned DMs off (or were forgotten) during the run

    @property
    def attempted(self) -> list[int]:
        return self.sent + self.dm_closed + self.failed


class WeeklyDigest:
    """Finds users whose weekly slot is open, claims each slot once, builds and delivers the DM."""

    def __init__(self, services: Services, content: ContentPort, deliver: DeliverPort, *,
                 owner: str | None = None, concurrency: int = DELIVERY_CONCURRENCY) -> None:
        self.services = services
        self.content = content
        self.deliver = deliver
        self.owner = owner or default_owner()
        self.concurrency = concurrency

    async def run_due(self, now: datetime | None = None) -> RunReport:
        """One pass; the scheduler calls it every 5 minutes. Safe to run concurrently anywhere."""
        now = now or utcnow()
        report = RunReport()
        async with self.services.session() as session:
            candidates = await SchedulingRepository(session).dm_candidates()
        due: list[tuple[DmCandidate, WeeklySlot]] = []
        for c in candidates:
            prefs = DmPrefs(c.weekday, c.minute, c.timezone, c.quiet_start_minute, c.quiet_end_minute)
            try:
                slot = open_slot(prefs, now)
                if slot is not None and prefs.in_quiet(local_minute(now, c.timezone)):
                    report.postponed.append(c.user_id)
                    continue
            except InvalidInput:  # a zone removed from tzdata since it was stored
                log.warning("weekly DM: unknown time zone; skipped", extra={"user_id": c.user_id})
                continue
            if slot is not None:
                due.append((c, slot))
        if not due:
            return report
        async with self.services.session() as session:  # skip the obvious; the claim stays the arbiter
            done = await SchedulingRepository(session).claimed_dm_slots((c.user_id, s.key) for c, s in due)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(candidate: DmCandidate, slot: WeeklySlot) -> None:
            async with gate:
                try:
                    await self._deliver_slot(candidate, slot, now, report)
                except Exception:  # e.g. the database refused a write: this user only, never the run's report
                    log.exception("weekly DM slot failed", extra={"user_id": candidate.user_id, "slot": slot.key})
                    report.failed.append(candidate.user_id)

        await asyncio.gather(*(one(c, s) for c, s in due if (c.user_id, s.key) not in done))
        log.info("weekly DMs: %d sent, %d DMs closed, %d failed, %d postponed, %d taken elsewhere, "
                 "%d no longer wanted", len(report.sent), len(report.dm_closed), len(report.failed),
                 len(report.postponed), len(report.taken), len(report.skipped))
        return report

    async def _deliver_slot(self, c: DmCandidate, slot: WeeklySlot, now: datetime, report: RunReport) -> None:
        context = {"user_id": c.user_id, "slot": slot.key, "job": "weekly_dms"}
        async with self.services.session() as session:  # committed before any work: the claim
            repo = SchedulingRepository(session)
            if not await repo.claim_dm_slot(c.user_id, slot.key, self.owner):
                (report.taken if await repo.wants_dms(c.user_id) else report.skipped).append(c.user_id)
                return
        try:
            async with asyncio.timeout(CONTENT_TIMEOUT_S):
                content = await self.content(c.user_id)
            if not content.items:
                outcome = DeliveryOutcome("failed", "no_content")
            else:
                content = replace(content, opener=await self._opener(c, content))
                if not await self._still_wanted(c, slot):  # /dm off while the content was built
                    report.skipped.append(c.user_id)
                    return
                async with asyncio.timeout(DELIVERY_TIMEOUT_S):
                    outcome = await self.deliver(c.discord_id, content)
        except Exception as exc:  # one user's failure never stops the batch, and is not retried
            log.exception("weekly DM failed", extra=context)
            outcome = DeliveryOutcome("failed", exc.__class__.__name__)
        async with self.services.session() as session:
            await SchedulingRepository(session).finish_dm_slot(c.user_id, slot.key, outcome.status,
                                                               (outcome.detail or "")[:300] or None)
            if outcome.status == "dm_closed":  # stop until the user runs /dm again
                await UserRepository(session).update_settings(c.user_id, dm_closed_at=now)
        {"sent": report.sent, "dm_closed": report.dm_closed}.get(outcome.status, report.failed).append(c.user_id)
        if outcome.status == "failed":
            log.warning("weekly DM not delivered: %s", outcome.detail, extra=context)

    async def _still_wanted(self, c: DmCandidate, slot: WeeklySlot) -> bool:
        """Checked again right before sending (building content takes up to a minute); an unwanted
        claim is given back, so nothing says "sent" and turning DMs on again this week still works."""
        async with self.services.session() as session:
            repo = SchedulingRepository(session)
            if await repo.wants_dms(c.user_id):
                return True
            await repo.release_dm_slot(c.user_id, slot.key, self.owner)
        log.info("weekly DM not sent: DMs turned off during the run", extra={"user_id": c.user_id, "slot": slot.key})
        return False

    async def _opener(self, c: DmCandidate, content: DigestContent) -> str:
        """The first line, from the explainer (LLM when configured, template otherwise)."""
        brief = WeeklyBrief(display_name=c.display_name or "there", rec_count=len(content.items),
                            top_tags=content.top_tags, top_artists=content.top_artists)
        explainer = self.services.explainer
        try:
            return (await explainer.weekly_opener(brief, user_id=c.user_id)).text
        except Exception:  # the opener is decoration; never lose the DM over it
            log.warning("weekly opener failed; using a plain one", exc_info=True, extra={"user_id": c.user_id})
            return f"Hi {brief.display_name}! Here are {brief.rec_count} picks for your week."
