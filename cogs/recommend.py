"""/recommend, /similar, /tune and the persistent 👍/👎/"Why?" buttons.

Each command: parse -> defer (a first request may load or train a model) -> one `RecommendService`
call -> render -> send. /recommend shows the asker's taste, so it first looks up whether they hide
their listening in this server: then the deferral, and so the list, is theirs alone (the rule of
/compat, /matches and /playlist). /similar is about an artist, not the asker; /tune is always
private. The feedback buttons are DynamicItems registered in `setup`, so clicks on messages sent by
an earlier process (or on weekly DMs) reach this process too.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import Acknowledger, SonanceCog, member_name, per_user, send, within_budget
from bot.render.recommend import preferences_summary, similar_embed
from bot.views.feedback import PERSISTENT_ITEMS, FeedbackButton, RecommendationPages, WhyButton
from core.domain import Kind
from core.recommender.service import RecommendService
from core.services import Services

__all__ = ["FeedbackButton", "RecommendCog", "WhyButton", "setup"]

RECOMMEND_RATE, RECOMMEND_PER_S = 3, 30.0
KINDS = {"artists": Kind.ARTIST, "albums": Kind.ALBUM, "tracks": Kind.TRACK}
KIND_CHOICES = [app_commands.Choice(name=name, value=name) for name in KINDS]
DISCOVERY_CHOICES = [app_commands.Choice(name=name, value=name) for name in ("familiar", "balanced", "deep cuts")]


def _choices(names: list[str]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=n[:100], value=n[:100]) for n in names[:25]]


class RecommendCog(SonanceCog):
    """Recommendation commands; all share one process-wide `RecommendService`."""

    def __init__(self, bot: commands.Bot, services: Services) -> None:
        super().__init__(bot, services)
        self.recs: RecommendService = services.recommend

    @app_commands.command(name="recommend", description="Music picks for you, from your listening and your feedback")
    @app_commands.describe(kind="Artists, albums or tracks", count="How many (1-25)",
                           discovery="Familiar favourites-adjacent picks, or deep cuts",
                           tag="Only picks with this tag or genre")
    @app_commands.choices(kind=KIND_CHOICES, discovery=DISCOVERY_CHOICES)
    @per_user(RECOMMEND_RATE, RECOMMEND_PER_S)
    async def recommend_command(self, interaction: discord.Interaction,
                                kind: app_commands.Choice[str] | None = None,
                                count: app_commands.Range[int, 1, 25] = 10,
                                discovery: app_commands.Choice[str] | None = None,
                                tag: app_commands.Range[str, 1, 100] | None = None) -> None:
        chosen = KINDS[kind.value] if kind is not None else Kind.ARTIST
        async with Acknowledger(interaction) as ack:  # defers publicly after 1 s if the lookup is slow
            asker, private = await self.who_and_whether_hidden(interaction)
            await ack(private)
        result = await self.recs.recommend(
            asker, kind=chosen, count=count, discovery=discovery.value if discovery is not None else None,
            tag=tag, context="command")
        pages = RecommendationPages(result, interaction.user.id, member_name(interaction.user))
        if private and ack.deferred_publicly:
            # Only when the lookup outlasted the safety deferral: the list goes in a message of its
            # own, explicitly private. (Sent this way, a longer list's Prev/Next are not greyed out
            # when its pages time out; a rare path, and nothing is revealed.)
            await ack.deliver(private=True, embed=pages.embed(), view=pages)
        else:
            await pages.send(interaction)  # its first follow-up takes the deferral's visibility

    @recommend_command.autocomplete("tag")
    async def tag_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return _choices(await within_budget(self.recs.tag_autocomplete(current)))

    @app_commands.command(name="similar", description="Artists similar to one you name")
    @app_commands.describe(artist="An artist (start typing to pick one)")
    async def similar_command(self, interaction: discord.Interaction,
                              artist: app_commands.Range[str, 1, 100]) -> None:
        await interaction.response.defer(thinking=True)
        result = await self.recs.similar(artist, Kind.ARTIST)
        await send(interaction, embed=similar_embed(result))

    @similar_command.autocomplete("artist")
    async def artist_autocomplete(self, interaction: discord.Interaction,
                                  current: str) -> list[app_commands.Choice[str]]:
        return _choices(await within_budget(self.recs.autocomplete(current)))

    @app_commands.command(name="tune", description="Steer your recommendations in your own words")
    @app_commands.describe(text="e.g. “less metal, more 90s shoegaze” (or “reset”)")
    async def tune_command(self, interaction: discord.Interaction, text: app_commands.Range[str, 1, 300]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        asker = await self.who(interaction)
        prefs = await self.recs.set_preferences(asker, text)
        await send(interaction, preferences_summary(prefs), ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    bot.add_dynamic_items(*PERSISTENT_ITEMS)
    await bot.add_cog(RecommendCog(bot, bot.services))  # type: ignore[attr-defined]
