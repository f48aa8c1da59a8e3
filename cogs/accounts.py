"""/link, /unlink, /account, /privacy, /forget, /export: who Sonance knows you as, and what it keeps.

Every reply here is ephemeral: these messages carry one-time sign-in links bound to the asker and
personal data, so nobody else should see (or click) them. Each command is parse -> defer (privately)
before any database or network work -> one `AccountService` call -> render. Only /forget answers at
once: its prompt needs nothing stored.
"""

from __future__ import annotations

import logging
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import SonanceCog, handle_error, known, once_per, send
from bot.render import accounts as render
from core.accounts import AccountService, ExportResult, ForgetResult, UnlinkResult
from core.services import Services

log = logging.getLogger(__name__)

#: Link and export hit external services or serialise everything about a user: one per user per window.
LINK_COOLDOWN_S = 30.0
EXPORT_COOLDOWN_S = 300.0
FORGET_CONFIRM_TIMEOUT_S = 60.0
#: Room left in Discord's upload limit for the multipart request around the file.
UPLOAD_HEADROOM = 0.95

VISIBILITY_CHOICES = [
    app_commands.Choice(name="public", value="public"),
    app_commands.Choice(name="this-server-only", value="guild"),
    app_commands.Choice(name="hidden", value="private"),
]
SCOPE_CHOICES = [
    app_commands.Choice(name="this server", value="guild"),
    app_commands.Choice(name="everywhere", value="everywhere"),
]


def upload_limit(interaction: discord.Interaction) -> int:
    """The largest file, in bytes, Discord accepts in answer to this interaction.

    Discord sends it with every interaction (`attachment_size_limit`: boosted servers allow more);
    discord.py 2.7 exposes it as `Interaction.filesize_limit`, so reading `attachment_size_limit`
    from the interaction always fell back to 8 MiB (a boosted server's export was gzipped or refused
    for nothing, a limit lowered below 8 MiB made Discord refuse the upload). Both names are tried,
    then the guild's limit by boost tier, then Discord's default for a bot.
    """
    for attribute in ("attachment_size_limit", "filesize_limit"):
        value = getattr(interaction, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    if interaction.guild is not None:
        return interaction.guild.filesize_limit
    return discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES


class ForgetConfirmView(discord.ui.View):
    """Confirm / Cancel for /forget. Only the asker may press; buttons disable after use or timeout.

    Not persistent on purpose: a deletion confirmation must not outlive the bot process or a minute.
    """

    def __init__(self, services: Services, owner_id: int, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.services = services
        self.owner_id = owner_id
        self.origin: discord.Interaction | None = None  # the /forget interaction, to edit on timeout
        self.finished = False

    def _disable(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message("Only the person who ran /forget can answer this.",
                                                    ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Delete everything", style=discord.ButtonStyle.danger, custom_id="sonance:forget:yes")
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button[ForgetConfirmView]) -> None:
        self.finished = True
        self.stop()
        self._disable()
        await interaction.response.defer()  # deleting a long history can take more than 3 s
        asker = await known(self.services, interaction)  # resolved now: nothing is created to be deleted
        result = await self.services.accounts.forget(asker) if asker is not None else ForgetResult.nothing_stored()
        await interaction.edit_original_response(content=render.forgotten(result), view=self)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary, custom_id="sonance:forget:no")
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button[ForgetConfirmView]) -> None:
        self.finished = True
        self.stop()
        self._disable()
        await interaction.response.edit_message(content=render.FORGET_CANCELLED, view=self)

    async def on_timeout(self) -> None:
        if self.finished or self.origin is None:
            return
        self._disable()
        try:
            await self.origin.edit_original_response(content=render.FORGET_TIMED_OUT, view=self)
        except discord.HTTPException:
            log.info("could not disable an expired /forget confirmation")

    async def on_error(self, interaction: discord.Interaction, error: Exception,
                       item: discord.ui.Item[ForgetConfirmView]) -> None:
        await handle_error(interaction, error)


class AccountsCog(SonanceCog):
    """The accounts & privacy command family."""

    link = app_commands.Group(name="link", description="Link a music account to Sonance")

    def __init__(self, bot: commands.Bot, services: Services) -> None:
        super().__init__(bot, services)
        self.accounts: AccountService = services.accounts

    @link.command(name="lastfm", description="Link your Last.fm profile and import your listening history")
    @app_commands.describe(username="Your Last.fm username")
    @once_per(LINK_COOLDOWN_S)  # a refused (a mistyped name) or failed attempt does not spend it
    async def link_lastfm(self, interaction: discord.Interaction,
                          username: app_commands.Range[str, 2, 64]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # Last.fm round trips
        asker = await self.who(interaction)
        result = await self.accounts.link_lastfm(asker, username)
        content, view = render.lastfm_linked(result)
        if view is None:
            await send(interaction, content, ephemeral=True)
        else:
            await send(interaction, content, ephemeral=True, view=view)

    @link.command(name="spotify", description="Connect Spotify (optional; Last.fm works without it)")
    @once_per(LINK_COOLDOWN_S)  # a refused (places taken) or failed attempt does not spend it
    async def link_spotify(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # `who` writes: slow under load
        asker = await self.who(interaction)
        await self.accounts.check_spotify_room(asker)
        url = self.accounts.spotify_authorize_url(asker)  # no I/O: sign + format
        content, view = render.spotify_prompt(url)
        await send(interaction, content, ephemeral=True, view=view)

    @app_commands.command(name="unlink", description="Remove a linked music account and its tokens")
    @app_commands.describe(service="Which account to unlink")
    async def unlink(self, interaction: discord.Interaction, service: Literal["lastfm", "spotify"]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # may wait for an import to stop
        asker = await self.known(interaction)
        result = await self.accounts.unlink(asker, service) if asker is not None else UnlinkResult.nothing_linked(service)
        await send(interaction, render.unlinked(result), ephemeral=True)

    @app_commands.command(name="account", description="What Sonance knows: linked accounts, sync status, history")
    async def account(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # `who` writes: slow under load
        asker = await self.who(interaction)
        overview = await self.accounts.overview(asker)
        await send(interaction, embed=render.account_embed(overview), ephemeral=True)

    @app_commands.command(name="privacy", description="Choose who can see you on leaderboards and matches")
    @app_commands.describe(visibility="Who may see you", scope="Apply to this server or everywhere",
                           hide_username="Show you as 'a listener' instead of your name")
    @app_commands.choices(visibility=VISIBILITY_CHOICES, scope=SCOPE_CHOICES)
    async def privacy(self, interaction: discord.Interaction,
                      visibility: app_commands.Choice[str] | None = None,
                      scope: app_commands.Choice[str] | None = None,
                      hide_username: bool | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # writes, then clears cached boards
        asker = await self.who(interaction)
        result = await self.accounts.set_privacy(
            asker, visibility=visibility.value if visibility else None,
            scope=scope.value if scope else None,  # type: ignore[arg-type]
            hide_username=hide_username)
        await send(interaction, render.privacy_message(result), ephemeral=True)

    @app_commands.command(name="forget", description="Delete everything Sonance stores about you")
    async def forget(self, interaction: discord.Interaction) -> None:
        view = ForgetConfirmView(self.services, interaction.user.id, timeout=FORGET_CONFIRM_TIMEOUT_S)
        view.origin = interaction
        await send(interaction, render.FORGET_PROMPT, ephemeral=True, view=view)

    @app_commands.command(name="export", description="Download everything Sonance stores about you (JSON)")
    # A failure gives the use back (the apology says "try again in a moment"); the one refusal, "too
    # large", does not: it is reached only after serialising everything, and would only repeat.
    @once_per(EXPORT_COOLDOWN_S, refund_refusals=False)
    async def export(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        limit = int(upload_limit(interaction) * UPLOAD_HEADROOM)
        asker = await self.known(interaction)
        result = await self.accounts.export(asker, max_bytes=limit) if asker is not None else ExportResult.nothing_stored()
        if result.empty:
            await send(interaction, render.export_message(result), ephemeral=True)
        else:
            await send(interaction, render.export_message(result), ephemeral=True, file=render.export_file(result))


async def setup(bot: commands.Bot) -> None:
    services: Services = bot.services  # type: ignore[attr-defined]
    await bot.add_cog(AccountsCog(bot, services))
