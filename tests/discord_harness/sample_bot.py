"""A tiny Sonance-shaped bot used only to prove the fake-Discord harness end to end.

It deliberately uses the same discord.py features the real cogs will: a synced guild command tree
with choices, a subcommand group with autocomplete, immediate and deferred responses, persistent
``DynamicItem`` feedback buttons, a modal, DMs that may fail with 50007, and file uploads.
"""

from __future__ import annotations

import asyncio
import io
import re
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

FEEDBACK_TEMPLATE = r"sonance:fb:(?P<rec>\d+):(?P<v>up|down)"


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button], template=FEEDBACK_TEMPLATE):
    """Thumbs up/down on a recommendation; state lives in the custom_id so it survives restarts."""

    def __init__(self, rec: int, vote: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="👍" if vote == "up" else "👎",
                style=discord.ButtonStyle.secondary,
                custom_id=f"sonance:fb:{rec}:{vote}",
            )
        )
        self.rec = rec
        self.vote = vote

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> FeedbackButton:
        return cls(int(match["rec"]), match["v"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: SampleBot = interaction.client  # type: ignore[assignment]
        bot.feedback.append((interaction.user.id, self.rec, self.vote))
        await interaction.response.send_message(
            f"Thanks! Recorded {self.vote} for #{self.rec}.", ephemeral=True
        )


class FeedbackModal(discord.ui.Modal, title="Tell us more"):
    comment: discord.ui.TextInput = discord.ui.TextInput(
        label="Comment", custom_id="sonance:modal:comment", max_length=200
    )

    def __init__(self) -> None:
        super().__init__(custom_id="sonance:modal:feedback", timeout=None)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Got it: {self.comment.value}", ephemeral=True)


class SampleBot(commands.Bot):
    """Syncs its tree to ``dev_guild_id`` in ``setup_hook``, as a dev deployment would."""

    def __init__(self, dev_guild_id: int, *, slow_seconds: float = 0.05, **kwargs: object) -> None:
        intents = discord.Intents.default()
        intents.members = True
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05, **kwargs)  # type: ignore[arg-type]
        self.dev_guild = discord.Object(dev_guild_id)
        self.slow_seconds = slow_seconds
        self.feedback: list[tuple[int, int, str]] = []
        self.errors: list[BaseException] = []
        self.dm_results: list[str] = []
        self.synced: list[app_commands.AppCommand] = []

    async def setup_hook(self) -> None:
        self.add_dynamic_items(FeedbackButton)
        build_tree(self)
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        self.tree.copy_global_to(guild=self.dev_guild)
        self.synced = await self.tree.sync(guild=self.dev_guild)

    async def _on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        self.errors.append(getattr(error, "original", error))


class SampleShardedBot(commands.AutoShardedBot):
    """Same commands, sharded; skips discord.py's 5 s pause between shard IDENTIFYs."""

    def __init__(self, dev_guild_ids: list[int]) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.dev_guild_ids = dev_guild_ids
        self.slow_seconds = 0.01
        self.feedback: list[tuple[int, int, str]] = []
        self.errors: list[BaseException] = []
        self.dm_results: list[str] = []

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # Real Discord needs max_concurrency spacing; the fake does not, and 5 s per shard is too slow.
        return None

    async def setup_hook(self) -> None:
        self.add_dynamic_items(FeedbackButton)
        build_tree(self)
        for guild_id in self.dev_guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)


ARTISTS = ["Radiohead", "Portishead", "Massive Attack", "Björk", "Boards of Canada"]


def build_tree(bot: commands.Bot) -> None:
    """Register the sample commands on ``bot.tree`` (global; setup_hook copies them to a guild)."""
    tree = bot.tree

    @tree.command(name="recommend", description="Get music recommendations")
    @app_commands.describe(kind="What to recommend")
    async def recommend(
        interaction: discord.Interaction,
        kind: Literal["artists", "tracks"],
        count: app_commands.Range[int, 1, 10] = 3,
    ) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(FeedbackButton(42, "up"))
        view.add_item(FeedbackButton(42, "down"))
        embed = discord.Embed(title=f"Your {kind}", description="\n".join(ARTISTS[:count]))
        await interaction.response.send_message(embed=embed, view=view)

    @tree.command(name="slow", description="Deferred answer with a follow-up")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await asyncio.sleep(bot.slow_seconds)  # type: ignore[attr-defined]
        await interaction.followup.send("Here are your slow recommendations")

    @tree.command(name="edit", description="Deferred answer by editing the original response")
    async def edit(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True)
        await interaction.edit_original_response(content="edited original")

    @tree.command(name="dm", description="DM a user")
    async def dm(interaction: discord.Interaction, user: discord.User) -> None:
        await interaction.response.defer(ephemeral=True)
        try:
            await user.send("Your weekly Sonance mix is ready")
        except discord.Forbidden as exc:
            bot.dm_results.append(f"forbidden:{exc.code}")  # type: ignore[attr-defined]
            await interaction.followup.send("Could not DM them (DMs closed)", ephemeral=True)
        else:
            bot.dm_results.append("sent")  # type: ignore[attr-defined]
            await interaction.followup.send("DM sent", ephemeral=True)

    @tree.command(name="export", description="Export your playlist as a file")
    async def export(interaction: discord.Interaction) -> None:
        data = b"artist,track\nRadiohead,Reckoner\n"
        await interaction.response.send_message(
            "Your export", file=discord.File(io.BytesIO(data), filename="playlist.csv")
        )
        await interaction.followup.send(
            "Same, as a follow-up", file=discord.File(io.BytesIO(b"\x89PNG fake"), filename="cover.png")
        )

    @tree.command(name="once", description="Answers; used to prove double acknowledgement fails")
    async def once(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("first answer")

    @tree.command(name="sleepy", description="Acknowledges too late")
    async def sleepy(interaction: discord.Interaction) -> None:
        await asyncio.sleep(bot.slow_seconds)  # type: ignore[attr-defined]
        await interaction.response.send_message("too late")

    @tree.command(name="feedback", description="Open the feedback form")
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(FeedbackModal())

    taste = app_commands.Group(name="taste", description="Taste profile commands")

    @taste.command(name="compare", description="Compare your taste with someone")
    async def compare(
        interaction: discord.Interaction, other: discord.Member, artist: str | None = None
    ) -> None:
        await interaction.response.send_message(
            f"{interaction.user.name} vs {other.name} on {artist or 'everything'}"
        )

    @compare.autocomplete("artist")
    async def artist_autocomplete(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=a, value=a) for a in ARTISTS if a.lower().startswith(current.lower())
        ][:25]

    tree.add_command(taste)
