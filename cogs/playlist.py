"""/playlist (for me | from seed | blend) and its persistent export buttons.

The command: parse -> one `PlaylistService.build` call, which validates first and asks us to
acknowledge only when the slow part begins (the compat pattern: a refusal such as "keeps their
listening private" stays an ephemeral reply, and a playlist of someone who hides their listening in
this server is shown to them alone) -> render the preview with its export buttons.

The buttons are DynamicItems (``sonance:pl:<playlist_id>:spotify|files``) registered in `setup`, so
they work on messages sent by an earlier process. Only the playlist's owner may use them: the
service checks ownership against the stored row, so no in-memory view state is needed.
"""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import SonanceCog, handle_error, known, member_name, within_budget
from bot.render.playlist import files_message, playlist_embed, spotify_message
from core.access import PLAYLIST_NOT_YOURS
from core.errors import InvalidInput, NotYours
from core.playlists.models import DEFAULT_LENGTH, MAX_LENGTH, MIN_LENGTH, BuiltPlaylist
from core.playlists.service import MODES, PlaylistService
from core.services import Services

EXPORT_TEMPLATE = r"sonance:pl:(?P<pid>\d+):(?P<action>spotify|files)"
PLAYLIST_RATE, PLAYLIST_PER_S = 2, 60.0
MODE_CHOICES = [app_commands.Choice(name=m, value=m) for m in MODES]
VIEW_TIMEOUT_S = 600.0


def _services(interaction: discord.Interaction) -> Services:
    return interaction.client.services  # type: ignore[attr-defined,no-any-return]


class ExportButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=EXPORT_TEMPLATE):
    """"Send to Spotify" / "Download files" on one stored playlist."""

    def __init__(self, playlist_id: int, action: str) -> None:
        if action not in ("spotify", "files"):
            raise ValueError(f"action must be 'spotify' or 'files', not {action!r}")
        playlist_id = int(playlist_id)
        spotify = action == "spotify"
        super().__init__(discord.ui.Button(
            style=discord.ButtonStyle.success if spotify else discord.ButtonStyle.secondary,
            label="Send to Spotify" if spotify else "Download files", emoji="🎧" if spotify else "📄",
            custom_id=f"sonance:pl:{playlist_id}:{action}"))
        self.playlist_id = playlist_id
        self.action = action

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> ExportButton:
        return cls(int(match["pid"]), match["action"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            services = _services(interaction)
            # Anyone in the channel can press: a stranger is not stored for it, and is simply not the owner.
            asker = await known(services, interaction)
            if asker is None:
                raise NotYours(PLAYLIST_NOT_YOURS)
            if self.action == "files":
                content, files = files_message(await services.playlists.export_files(asker, self.playlist_id))
            else:
                content, files = spotify_message(await services.playlists.export_spotify(asker, self.playlist_id))
            await interaction.followup.send(content, files=files, ephemeral=True)
        except Exception as exc:  # item callbacks bypass the tree's error handler: apply the policy here
            await handle_error(interaction, exc)


def export_view(playlist: BuiltPlaylist) -> discord.ui.View:
    """The export row: "Send to Spotify" only when the owner linked Spotify, "Download files" always."""
    view = discord.ui.View(timeout=VIEW_TIMEOUT_S)
    if playlist.spotify_linked:
        view.add_item(ExportButton(playlist.id, "spotify"))
    view.add_item(ExportButton(playlist.id, "files"))
    return view


class PlaylistCog(SonanceCog):
    """The /playlist command; one process-wide `PlaylistService`."""

    def __init__(self, bot: commands.Bot, services: Services) -> None:
        super().__init__(bot, services)
        self.playlists: PlaylistService = services.playlists

    @app_commands.command(name="playlist", description="Build a playlist: for you, from a seed, or a blend with a member")
    @app_commands.describe(mode="For me (your recommendations), from a seed artist/track, or a blend with a member",
                           seed="From seed: an artist (start typing), or “Artist - Title”",
                           member="Blend: the member to blend tastes with",
                           length=f"How many tracks ({MIN_LENGTH}-{MAX_LENGTH})",
                           name="A name for the playlist (otherwise I'll name it)")
    @app_commands.choices(mode=MODE_CHOICES)
    @app_commands.checks.cooldown(PLAYLIST_RATE, PLAYLIST_PER_S, key=lambda i: i.user.id)
    async def playlist_command(self, interaction: discord.Interaction, mode: app_commands.Choice[str],
                               seed: app_commands.Range[str, 1, 200] | None = None,
                               member: discord.User | None = None,
                               length: app_commands.Range[int, MIN_LENGTH, MAX_LENGTH] = DEFAULT_LENGTH,
                               name: app_commands.Range[str, 1, 100] | None = None) -> None:
        if member is not None and member.bot and mode.value == "blend":
            raise InvalidInput("Bots don't keep a listening history, so there's nothing to blend. Pick a person!")
        async with self.acknowledged(interaction) as (ack, asker):
            result = await self.playlists.build(
                asker, mode.value, seed=seed,
                member_discord_id=member.id if member is not None else None, length=length, name=name,
                on_slow=ack)
        await ack.deliver(private=result.private, embed=playlist_embed(result, member_name(interaction.user)),
                          view=export_view(result))

    @playlist_command.autocomplete("seed")
    async def seed_autocomplete(self, interaction: discord.Interaction,
                                current: str) -> list[app_commands.Choice[str]]:
        names = await within_budget(self.playlists.seed_autocomplete(current))
        return [app_commands.Choice(name=n[:100], value=n[:100]) for n in names[:25]]


async def setup(bot: commands.Bot) -> None:
    bot.add_dynamic_items(ExportButton)
    await bot.add_cog(PlaylistCog(bot, bot.services))  # type: ignore[attr-defined]
