"""Finding members who left a guild, so its boards stop showing them.

Why this exists: slash commands need no privileged intent, and without the GUILD_MEMBERS intent
Discord sends the bot no GUILD_MEMBER_REMOVE. Memberships are learnt from use (core/identity.py), so
a member who left a server would stay on its /whoknows, leaderboards, /matches and weekly "in your
servers" lists forever. The sweep asks Discord, one member at a time and oldest first, about
memberships not confirmed for `RECHECK_AFTER`, hidden ones included (a guild they left must leave
their weekly DM's server-mates); a command in the guild confirms its member for free.

Discord's answers, and what each does:
- the member is there: confirmed (`checked_at` = now);
- Unknown Member / Unknown User: the membership ends, as the bot's own departure ends a guild's
  (`UserRepository.end_membership`: a choice to be hidden there stays, marked `left_at`), unless
  the member used Sonance there while Discord was being asked;
- the guild itself is refused (Unknown Guild, Missing Access): nothing is forgotten. Discord gives
  these for a guild the bot left while offline, but also, at times, for one it is in (both seen
  reported), and a wrong guess would empty a server's boards. The guild's rows are set aside for
  a day instead; a guild is forgotten on the bot's removal event (`AskerDirectory.forget_guild`)
  or, removed while the bot was offline, when it next connects (`forget_absent_guilds`);
- anything else (a 5xx, a timeout, a rate limit longer than the probe waits): left due, and
  `STOP_AFTER_FAILURES` in a row end the run, as Discord is then down for everyone.

The probe is a plain callable so that core never imports discord (bot/membership_probe.py is the
real one, on the bot's REST client).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from core.db.repositories import UserRepository
from core.db.types import utcnow
from core.services import Services

log = logging.getLogger(__name__)

#: A membership is confirmed again when older than this: a member who left disappears from
#: the boards within about a day (longer only when more memberships are due than runs can ask).
RECHECK_AFTER = timedelta(days=1)
#: Members asked about per run; the job runs every `SWEEP_MINUTES`, so at most
#: CHECKS_PER_RUN × 24 × 60 / SWEEP_MINUTES (14,400) memberships a day, about one request every six
#: seconds: far inside Discord's limits, and never in the way of commands' own requests.
CHECKS_PER_RUN = 100
SWEEP_MINUTES = 10
STOP_AFTER_FAILURES = 3


class Presence(Enum):
    """What Discord said about one member of one guild."""

    MEMBER = "member"
    GONE = "gone"  # Unknown Member / Unknown User
    GUILD_REFUSED = "guild_refused"  # Unknown Guild / Missing Access: the bot may have left it
    UNKNOWN = "unknown"  # no answer worth acting on (5xx, timeout, long rate limit)


#: (guild id, Discord user id) -> Presence.
MembershipProbe = Callable[[int, int], Awaitable[Presence]]


@dataclass
class SweepReport:
    asked: int = 0
    confirmed: int = 0
    departed: int = 0
    guilds_refused: int = 0
    unanswered: int = 0
    stopped: bool = False  # Discord failed STOP_AFTER_FAILURES times in a row


class MembershipSweep:
    """One per process; run by the scheduler leader (`build_jobs`' "memberships" job)."""

    def __init__(self, services: Services, probe: MembershipProbe) -> None:
        self.services = services
        self.probe = probe

    async def run(self, limit: int = CHECKS_PER_RUN) -> SweepReport:
        """Ask Discord about up to `limit` memberships due for a check and apply the answers.

        Each answer is committed on its own, so a run cut short (shutdown, a lost leadership) keeps
        what it learnt. Cached boards need no invalidation: their keys name the members shown
        (`core.compat.leaderboard_cache_key`), so a board without the member is a new entry.
        """
        report = SweepReport()
        async with self.services.session() as session:
            due = await UserRepository(session).memberships_to_check(utcnow() - RECHECK_AFTER, limit)
        refused: set[int] = set()
        failures_in_a_row = 0
        for row in due:
            if row.guild_id in refused:
                continue
            report.asked += 1
            asked_at = utcnow()  # a command after this proves more than the answer: it wins
            try:
                presence = await self.probe(row.guild_id, row.discord_id)
            except Exception:  # a probe must not end the run (nor its report) on one member
                log.exception("membership probe failed", extra={"guild_id": row.guild_id})
                presence = Presence.UNKNOWN
            if presence is Presence.UNKNOWN:  # left due for the next run; nothing to write
                report.unanswered += 1
                failures_in_a_row += 1
                if failures_in_a_row >= STOP_AFTER_FAILURES:
                    report.stopped = True
                    log.warning("membership sweep stopped: Discord did not answer %d times in a row",
                                failures_in_a_row)
                    break
                continue
            failures_in_a_row = 0
            async with self.services.session() as session:
                users = UserRepository(session)
                if presence is Presence.MEMBER:
                    await users.mark_checked(row.guild_id, [row.user_id])
                    report.confirmed += 1
                elif presence is Presence.GONE:
                    if await users.end_membership(row.guild_id, row.user_id, unless_checked_since=asked_at):
                        report.departed += 1
                        log.info("member left guild %d: membership forgotten", row.guild_id,
                                 extra={"user_id": row.user_id, "guild_id": row.guild_id})
                else:  # GUILD_REFUSED
                    refused.add(row.guild_id)
                    kept = await users.mark_checked(row.guild_id)
                    report.guilds_refused += 1
                    log.warning("Discord refuses to answer about guild %d (left while offline?); its %d "
                                "memberships are kept and asked about again in %s", row.guild_id, kept,
                                RECHECK_AFTER, extra={"guild_id": row.guild_id})
        if report.asked:
            log.info("membership sweep: %s", report, extra={"job": "memberships"})
        return report
