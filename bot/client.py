"""SonanceBot: the discord.py client. Loads the cogs and syncs the command tree only when it changed."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import discord
from discord.ext import commands

from bot.interactions import SonanceTree
from core.errors import ConfigError
from core.services import Services

log = logging.getLogger(__name__)

#: Cog modules, one per command family; the client loads each as a discord.py extension.
COGS: tuple[str, ...] = (
    "cogs.accounts",
    "cogs.compat",
    "cogs.stats",
    "cogs.settings",
    "cogs.recommend",
    "cogs.playlist",
)


class SonanceMixin:
    """Shared behaviour of the sharded and unsharded bot classes."""

    services: Services

    async def setup_hook(self) -> None:
        await self.services.start_clients()
        for name in COGS:
            await self.load_extension(name)  # type: ignore[attr-defined]
        await self.sync_commands_if_changed()

    async def on_ready(self) -> None:
        """Forget guilds the bot was removed from while offline (`AskerDirectory.forget_absent_guilds`):
        READY lists every guild of this process's shards, unavailable ones included, so a guild of
        these shards that it does not list is one the bot left."""
        try:
            count = getattr(self, "shard_count", None) or 1
            mine = set(getattr(self, "shard_ids", None) or range(count))
            present = {guild.id for guild in self.guilds}  # type: ignore[attr-defined]
            gone = await self.services.askers.forget_absent_guilds(
                present, lambda guild_id: (guild_id >> 22) % count in mine)
            if gone:
                log.info("forgot %d guild(s) the bot left while offline", len(gone))
        except Exception:  # an event handler has nobody to answer: log, keep running
            log.exception("could not check for guilds the bot left while offline")

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Kicked, or the guild was deleted (not an outage: discord.py reports those as unavailable)."""
        try:
            await self.services.askers.forget_guild(guild.id)
        except Exception:  # an event handler has nobody to answer: log with context, keep running
            log.exception("could not forget the memberships of guild %d", guild.id)

    def command_payload(self) -> list[dict[str, Any]]:
        tree: discord.app_commands.CommandTree = self.tree  # type: ignore[attr-defined]
        return [cmd.to_dict(tree) for cmd in tree.get_commands()]

    async def sync_commands_if_changed(self) -> bool:
        """Sync to DISCORD_DEV_GUILD_ID when set (instant), else globally; skip if unchanged."""
        settings = self.services.settings
        payload = self.command_payload()
        guild_id = settings.discord_dev_guild_id
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        marker = settings.data_dir / f"commands-{guild_id or 'global'}.sha256"
        if marker.exists() and marker.read_text().strip() == digest:
            log.info("application commands unchanged; not syncing")
            return False
        tree: discord.app_commands.CommandTree = self.tree  # type: ignore[attr-defined]
        if guild_id:
            guild = discord.Object(id=guild_id)
            tree.copy_global_to(guild=guild)
            await tree.sync(guild=guild)
        else:
            await tree.sync()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(digest)
        log.info("synced %d application commands to %s", len(payload), f"guild {guild_id}" if guild_id else "global")
        return True


#: No message of Sonance pings anyone: names and typed text are echoed (escaped, too), and a member
#: called "@everyone" or a pasted <@id> must never notify a server.
NO_MENTIONS = discord.AllowedMentions.none()


def _intents() -> discord.Intents:
    intents = discord.Intents.default()  # no privileged intents: slash commands need none
    return intents


class SonanceBot(SonanceMixin, commands.Bot):
    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=_intents(), help_command=None,
                         allowed_mentions=NO_MENTIONS,
                         tree_cls=SonanceTree, **kwargs)
        self.services = services


class ShardedSonanceBot(SonanceMixin, commands.AutoShardedBot):
    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=_intents(), help_command=None,
                         allowed_mentions=NO_MENTIONS,
                         tree_cls=SonanceTree, **kwargs)
        self.services = services


def shard_ids_of(shard_count: int, shard_ids: str | None) -> list[int] | None:
    """This process's shards from DISCORD_SHARD_IDS ("0,2"); None means all of DISCORD_SHARD_COUNT.

    Checked here so that a typo is one `error:` line at start, not Discord closing the gateway with
    4010 (invalid shard) after login.
    """
    if shard_count < 1:
        raise ConfigError("DISCORD_SHARD_COUNT must be at least 1.")
    if not shard_ids:
        return None
    try:
        ids = sorted({int(part) for part in shard_ids.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"DISCORD_SHARD_IDS must be comma-separated shard numbers, not {shard_ids!r}.") from None
    if not ids or any(not 0 <= i < shard_count for i in ids):
        raise ConfigError(f"DISCORD_SHARD_IDS must list shards between 0 and {shard_count - 1} "
                          f"(DISCORD_SHARD_COUNT={shard_count}); got {shard_ids!r}.")
    return ids


def create_bot(services: Services, **kwargs: Any) -> commands.Bot:
    """`AutoShardedBot` when sharding is configured (DISCORD_SHARD_COUNT), else a plain `Bot`.

    Shards split across processes share PostgreSQL and Redis: the scheduler runs in one leader
    (`core.scheduler`), the Last.fm limit and cache invalidations go through Redis (`core.sources.http`,
    `core.cache`). Without REDIS_URL each process keeps its own cache and its share of the limit.
    """
    settings = services.settings
    if settings.discord_shard_ids and not settings.discord_shard_count:
        raise ConfigError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (the total number of shards).")
    if settings.discord_shard_count:
        shard_ids = shard_ids_of(settings.discord_shard_count, settings.discord_shard_ids)
        if shard_ids is not None and len(shard_ids) < settings.discord_shard_count and not settings.redis_url:
            log.warning("shards %s of %d in this process without REDIS_URL: each process keeps its own cache "
                        "(an invalidation here does not reach the others) and its share of the Last.fm limit",
                        shard_ids, settings.discord_shard_count)
        return ShardedSonanceBot(services, shard_count=settings.discord_shard_count, shard_ids=shard_ids, **kwargs)
    return SonanceBot(services, **kwargs)
