"""The Discord side of `core.memberships.MembershipSweep`: is this user still in this guild?

GET /guilds/{guild}/members/{user} needs no privileged intent, and REST is not tied to a shard,
so the scheduler leader can ask about any guild the bot is in. discord.py's HTTP client already
waits out rate limits and retries 5xx; `timeout_s` bounds how long the sweep waits for an answer.

Why the request runs as its own task and is never cancelled: discord.py clears its global
rate-limit event before sleeping out a global 429 and sets it again only after the sleep, with no
`finally`. Cancelling a request during that sleep (as `asyncio.wait_for` does on a timeout, or a
scheduler step-down cancelling the job) leaves the event cleared, and every later REST call of the
process (weekly DMs, every probe) waits on it forever. So a request that outlives `timeout_s` is
left to finish on its own, the probe answers UNKNOWN, and no new request starts while it runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord

from core.memberships import MembershipProbe, Presence

log = logging.getLogger(__name__)

UNKNOWN_GUILD, UNKNOWN_MEMBER, UNKNOWN_USER, MISSING_ACCESS = 10004, 10007, 10013, 50001
PROBE_TIMEOUT_S = 10.0


def _presence_of(exc: BaseException | None, guild_id: int) -> Presence:
    """What Discord's answer (None: the member, else the request's exception) says."""
    if exc is None:
        return Presence.MEMBER
    if isinstance(exc, discord.HTTPException):
        if exc.code in (UNKNOWN_MEMBER, UNKNOWN_USER):
            return Presence.GONE
        if exc.code in (UNKNOWN_GUILD, MISSING_ACCESS):
            return Presence.GUILD_REFUSED
        log.warning("member lookup failed: HTTP %s (code %s)", exc.status, exc.code, extra={"guild_id": guild_id})
    else:  # a timeout, a closed session, a malformed body: no answer worth acting on
        log.warning("member lookup failed: %s: %s", type(exc).__name__, exc, extra={"guild_id": guild_id})
    return Presence.UNKNOWN


def discord_membership_probe(client: discord.Client, *, timeout_s: float = PROBE_TIMEOUT_S) -> MembershipProbe:
    """A `MembershipProbe` asking Discord through `client`'s REST session (see the module doc)."""
    running: set[asyncio.Task[Any]] = set()  # requests that outlived their wait, still finishing

    def finished(task: asyncio.Task[Any]) -> None:
        running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a late failure is not "never retrieved" noise

    async def probe(guild_id: int, discord_id: int) -> Presence:
        if running:
            return Presence.UNKNOWN  # Discord is still busy with an earlier lookup: do not pile up
        task = asyncio.create_task(client.http.get_member(guild_id, discord_id))
        running.add(task)
        task.add_done_callback(finished)
        await asyncio.wait({task}, timeout=timeout_s)  # cancelling this wait leaves the task alone
        if not task.done():
            log.warning("member lookup still unanswered after %.0f s; left to finish", timeout_s,
                        extra={"guild_id": guild_id})
            return Presence.UNKNOWN
        return _presence_of(None if task.cancelled() else task.exception(), guild_id)

    return probe
