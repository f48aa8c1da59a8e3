"""/whoknows and /top: guild listening stats. Parse -> one `StatsService` call -> render.

Both are guild-only because visibility is per guild (a member may be visible in one server and hidden
in another). Both defer before their database work: `who` writes a membership row, and under load
(200 interactions at once) queueing for the database pushed an undeferred answer past the 3 s
deadline. Your own /top is your taste: someone hidden in this server gets it privately (the rule of
/compat, /matches and /playlist), so the deferral waits for that lookup (under an `Acknowledger`,
whose safety deferral still answers within 3 s).
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import Acknowledger, SonanceCog, member_name, send, within_budget
from bot.render.stats import top_embed, who_knows_embed
from core.errors import InvalidInput
from core.stats import StatsService

PERIOD_CHOICES = [
    app_commands.Choice(name="Last 7 days", value="7day"),
    app_commands.Choice(name="Last month", value="1month"),
    app_commands.Choice(name="Last 3 months", value="3month"),
    app_commands.Choice(name="Last 6 months", value="6month"),
    app_commands.Choice(name="Last 12 months", value="12month"),
    app_commands.Choice(name="All time", value="overall"),
]


class StatsCog(SonanceCog):
    @property
    def stats(self) -> StatsService:
        return self.services.stats

    @app_commands.command(name="whoknows", description="Who in this server listens to an artist, by plays")
    @app_commands.describe(artist="The artist (pick from the suggestions)")
    @app_commands.guild_only()
    async def whoknows(self, interaction: discord.Interaction, artist: app_commands.Range[str, 1, 200]) -> None:
        await interaction.response.defer(thinking=True)  # `who` writes: under load that exceeds 3 s
        asker = await self.who(interaction)  # the asker appears on this guild's lists from now on
        result = await self.stats.who_knows(asker, artist)
        guild_name = interaction.guild.name if interaction.guild else None
        await send(interaction, embed=who_knows_embed(result, guild_name))

    @whoknows.autocomplete("artist")
    async def whoknows_artist(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=name, value=name) for name in await within_budget(self.stats.artist_choices(current))]

    @app_commands.command(name="top", description="Top artists for a period: yours or a server member's")
    @app_commands.describe(period="Which period", member="Whose top artists (default: yours)")
    @app_commands.choices(period=PERIOD_CHOICES)
    @app_commands.guild_only()
    async def top(self, interaction: discord.Interaction, period: app_commands.Choice[str],
                  member: discord.Member | None = None) -> None:
        if member is not None and member.bot:
            raise InvalidInput("Bots don't keep a listening history, so they have no top artists. Pick a person!")
        own = member is None or member.id == interaction.user.id
        async with Acknowledger(interaction) as ack:  # defers publicly after 1 s if the lookup is slow
            if own:
                asker, private = await self.who_and_whether_hidden(interaction)
            else:  # another member's top artists say nothing of the asker's taste
                asker, private = await self.who(interaction), False
            await ack(private)
        result = await self.stats.top_artists(
            asker, period.value,
            member_discord_id=member.id if member is not None else None,
            member_name=member_name(member) if member is not None else "That member")
        await ack.deliver(private=private, embed=top_embed(result))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(StatsCog(bot, bot.services))  # type: ignore[attr-defined]
