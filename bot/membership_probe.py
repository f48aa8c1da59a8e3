"""The Discord side of `core.memberships.MembershipSweep`: is this user still in this guild?

GET /guilds/{guild}/members/{user} needs no privileged intent, and REST is not tied to a shard,
so the scheduler leader can ask about any guild the bot is in. discord.py's HTTP client already
waits out rate limits and retries 5xx; `timeout_s` bounds the whole exchange so a Discord outage
costs a run a few seconds, not minutes. Discord's error codes map to what the sweep may conclude.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import discord

from core.memberships import MembershipProbe, Presence

log = logging.getLogger(__name__)

UNKNOWN_GUILD, UNKNOWN_MEMBER, UNKNOWN_USER, MISSING_ACCESS = 10004, 10007, 10013, 50001
PROBE_TIMEOUT_S = 10.0


def discord_membership_probe(client: discord.Client, *, timeout_s: float = PROBE_TIMEOUT_S) -> MembershipProbe:
    """A `MembershipProbe` asking Discord through `client`'s REST session."""

    async def probe(guild_id: int, discord_id: int) -> Presence:
        try:
            await asyncio.wait_for(client.http.get_member(guild_id, discord_id), timeout_s)
        except discord.HTTPException as exc:
            if exc.code in (UNKNOWN_MEMBER, UNKNOWN_USER):
                return Presence.GONE
            if exc.code in (UNKNOWN_GUILD, MISSING_ACCESS):
                return Presence.GUILD_REFUSED
            log.warning("member lookup failed: HTTP %s (code %s)", exc.status, exc.code,
                        extra={"guild_id": guild_id})
            return Presence.UNKNOWN
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("member lookup failed: %s", type(exc).__name__, extra={"guild_id": guild_id})
            return Presence.UNKNOWN
        return Presence.MEMBER

    return probe
