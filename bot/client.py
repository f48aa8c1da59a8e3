"""SonanceBot: the discord.py client. Loads the cogs and syncs the command tree only when it changed."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import discord
from discord.ext import commands

from bot.interactions import SonanceTree
from core.services import Services

log = logging.getLogger(__name__)

#: Cog modules, one per command family (filled as families land).
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


def _intents() -> discord.Intents:
    intents = discord.Intents.default()  # no privileged intents: slash commands need none
    return intents


class SonanceBot(SonanceMixin, commands.Bot):
    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=_intents(), help_command=None,
                         tree_cls=SonanceTree, **kwargs)
        self.services = services


class ShardedSonanceBot(SonanceMixin, commands.AutoShardedBot):
    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=_intents(), help_command=None,
                         tree_cls=SonanceTree, **kwargs)
        self.services = services


def create_bot(services: Services, **kwargs: Any) -> commands.Bot:
    """`AutoShardedBot` when sharding is configured (DISCORD_SHARD_COUNT), else a plain `Bot`."""
    settings = services.settings
    if settings.discord_shard_count:
        shard_ids = ([int(s) for s in settings.discord_shard_ids.split(",")] if settings.discord_shard_ids
                     else None)
        return ShardedSonanceBot(services, shard_count=settings.discord_shard_count, shard_ids=shard_ids, **kwargs)
    return SonanceBot(services, **kwargs)
