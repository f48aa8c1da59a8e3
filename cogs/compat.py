"""/compat, /leaderboard, /matches: taste compatibility between the members of a server.

Each command: parse (no bots) -> one `CompatService` call, which validates first (outside a guild
it refuses) and asks us to acknowledge only when it reaches its slow part -> render -> send. Acknowledging from inside the
service call is what lets a refusal ("keeps their listening private") stay an ephemeral reply, and a
result for someone who hides their listening be shown to them alone: a deferral fixes the visibility
of the answer that follows it, so we must not defer before we know.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import SonanceCog
from bot.render.compat import compat_embed, leaderboard_embed, matches_embed
from bot.render.compat_card import render_compat_card
from core.compat.service import CompatService
from core.errors import InvalidInput
from core.services import Services

COMPAT_RATE, COMPAT_PER_S = 3, 30.0


class CompatCog(SonanceCog):
    """Compatibility commands; all share one process-wide `CompatService`."""

    def __init__(self, bot: commands.Bot, services: Services) -> None:
        super().__init__(bot, services)
        self.compat: CompatService = services.compat

    @app_commands.command(name="compat", description="How well does your music taste match another member's?")
    @app_commands.describe(member="The member to compare your taste with")
    @app_commands.guild_only()
    @app_commands.checks.cooldown(COMPAT_RATE, COMPAT_PER_S, key=lambda i: i.user.id)
    async def compat_command(self, interaction: discord.Interaction, member: discord.User) -> None:
        if member.bot:
            raise InvalidInput("Bots don't keep a listening history, so there's nothing to compare. Pick a person!")
        async with self.acknowledged(interaction) as (ack, asker):
            result = await self.compat.compare(asker, member.id, on_slow=ack, render_card=render_compat_card)
        embed, file = compat_embed(result)
        extra: dict[str, Any] = {"file": file} if file is not None else {}
        await ack.deliver(private=result.private, embed=embed, **extra)

    @app_commands.command(name="leaderboard", description="The most compatible pairs of music lovers in this server")
    @app_commands.guild_only()
    async def leaderboard_command(self, interaction: discord.Interaction) -> None:
        async with self.acknowledged(interaction) as (ack, asker):
            result = await self.compat.leaderboard(asker, on_slow=ack)
        guild_name = interaction.guild.name if interaction.guild is not None else None
        await ack.deliver(private=False, embed=leaderboard_embed(result, guild_name))

    @app_commands.command(name="matches", description="Your best music matches in this server")
    @app_commands.guild_only()
    async def matches_command(self, interaction: discord.Interaction) -> None:
        async with self.acknowledged(interaction) as (ack, asker):
            result = await self.compat.matches(asker, on_slow=ack)
        await ack.deliver(private=result.private, embed=matches_embed(result))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(CompatCog(bot, bot.services))  # type: ignore[attr-defined]
