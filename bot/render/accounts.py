"""Rendering for the accounts & privacy commands: engine results -> message text, embeds, files.

Pure functions (no I/O): the cog decides when to send, these decide what it looks like, so the
wording is tested through the exact JSON the bot sends.
"""

from __future__ import annotations

import io
from datetime import datetime

import discord

from core.accounts import (
    AccountOverview,
    AccountView,
    ExportResult,
    ForgetResult,
    LastfmLinkResult,
    PrivacyResult,
    UnlinkResult,
)
from core.domain import SOURCE_NAMES

COLOUR = discord.Colour(0x1DB954)
LEVEL_TEXT = {
    "public": "visible in every server you use Sonance in",
    "guild": "visible only in servers you opened with /privacy",
    "private": "hidden everywhere (except servers you opened explicitly)",
}
#: The global level worded for the servers other than the one /privacy was used in: there the reply
#: leads with the effect in this server, and the level only decides the others (unless a choice was
#: made for one of them).
ELSEWHERE_TEXT = {
    "public": "In other servers you are visible wherever you use Sonance, unless you hid yourself there.",
    "guild": "In other servers you are visible only where you opened your profile with /privacy.",
    "private": "In other servers you are hidden, except where you opened your profile with /privacy.",
}
HERE_VISIBLE = "In this server you **appear** on the leaderboards and matches."
HERE_HIDDEN = "In this server you are **hidden**: you don't appear on the leaderboards or matches."
VERIFY_LASTFM_LABEL = "Verify with Last.fm"
CONNECT_SPOTIFY_LABEL = "Connect Spotify"


def relative(when: datetime) -> str:
    """A Discord timestamp that every reader sees in their own time zone ("3 minutes ago")."""
    return f"<t:{int(when.timestamp())}:R>"


def link_button_view(label: str, url: str) -> discord.ui.View:
    """A view with one link button: no callback, so nothing to time out or persist."""
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label=label, style=discord.ButtonStyle.link, url=url))
    return view


def lastfm_linked(result: LastfmLinkResult) -> tuple[str, discord.ui.View | None]:
    lines = [f"Linked Last.fm **{discord.utils.escape_markdown(result.username)}** "
             f"({result.playcount:,} scrobbles on Last.fm)."]
    if result.import_started:
        lines.append("I started importing your listening history in the background; "
                     "`/account` shows its progress.")
    elif result.already_linked:
        lines.append("It was already linked; your history is up to date and keeps syncing automatically.")
    if result.verify_url is not None:
        lines.append(f"Optional: press **{VERIFY_LASTFM_LABEL}** to prove the account is yours "
                     "(the button works once, for 15 minutes).")
        return "\n".join(lines), link_button_view(VERIFY_LASTFM_LABEL, result.verify_url)
    return "\n".join(lines), None


def spotify_prompt(url: str) -> tuple[str, discord.ui.View]:
    text = (f"Press **{CONNECT_SPOTIFY_LABEL}** and approve Sonance on Spotify; a page then asks you to confirm "
            "linking that Spotify account to your Discord account. The button works once, for 15 minutes, "
            "and only for you: don't forward it.")
    return text, link_button_view(CONNECT_SPOTIFY_LABEL, url)


def unlinked(result: UnlinkResult) -> str:
    name = SOURCE_NAMES[result.provider]
    if not result.removed:
        return f"You have no {name} account linked."
    kept = (f" The {result.listens_kept:,} listens already imported stay, so recommendations keep working; "
            "use /forget to delete everything." if result.listens_kept else "")
    return f"Unlinked {name} **{discord.utils.escape_markdown(result.username or '')}**; its tokens are deleted.{kept}"


def _account_line(view: AccountView) -> str:
    parts = [f"**{discord.utils.escape_markdown(view.username)}**",
             "verified" if view.verified else "not verified (public profile)"]
    if view.last_sync_at is not None:
        parts.append(f"last sync {relative(view.last_sync_at)}")
    elif view.provider == "lastfm":
        parts.append("not synced yet")
    text = " · ".join(parts)
    progress = view.progress
    if progress is not None and progress.running:
        detail = "Import running"
        if progress.fetched is not None and progress.total:
            pct = min(100, round(100 * progress.fetched / progress.total))
            detail += f": {progress.fetched:,} of {progress.total:,} plays read ({pct}%)"
        if progress.reached is not None:
            detail += f", up to <t:{int(progress.reached.timestamp())}:D>"
        text += f"\n⏳ {detail}."
    elif view.problem:
        text += f"\n⚠️ {view.problem}"
    elif view.status == "ok":
        text += "\n✅ Syncing normally." if view.history_complete else ""
    return text


def account_embed(overview: AccountOverview) -> discord.Embed:
    embed = discord.Embed(title="Your Sonance account", colour=COLOUR)
    if not overview.accounts:
        embed.description = "Nothing linked yet. Use `/link lastfm <username>` (or `/link spotify`)."
    for view in overview.accounts:
        embed.add_field(name=SOURCE_NAMES.get(view.provider, view.provider), value=_account_line(view)[:1024],
                        inline=False)
    embed.add_field(name="History", value=f"{overview.listens:,} listens · {overview.artists:,} artists",
                    inline=False)
    privacy = LEVEL_TEXT.get(overview.privacy_level, overview.privacy_level)
    if overview.visible_here is not None:
        privacy += f"; in this server you are **{'visible' if overview.visible_here else 'hidden'}**"
    if overview.hide_username:
        privacy += "; your name shows as 'a listener'"
    embed.add_field(name="Privacy", value=privacy + ".", inline=False)
    embed.set_footer(text="/privacy changes who sees you · /export downloads your data · /forget deletes it")
    return embed


def privacy_message(result: PrivacyResult) -> str:
    """What /privacy did, in the order a member reads it: the effect in this server first, then the
    level that governs the other servers, worded as theirs.

    Why: leading with the global level ("Your profile is visible in every server…") right after
    hiding in this server read as a contradiction of the next line ("In this server you chose to be
    hidden"). Outside a server (a DM) there is no "here": the level alone is the answer.
    """
    level = result.privacy_level
    if result.visible_here is None:
        lines = [f"Your profile is {LEVEL_TEXT.get(level, level)}."]
    else:
        lines = [HERE_VISIBLE if result.visible_here else HERE_HIDDEN,
                 ELSEWHERE_TEXT.get(level, f"In other servers your level is {level}.")]
    if result.cleared_overrides:
        count = result.cleared_overrides
        lines.append(f"(Replaced your earlier per-server choice in {count} server{'s' if count != 1 else ''}.)")
    lines.append("Your name is shown as 'a listener' to others." if result.hide_username
                 else "Your Discord name is shown to others.")
    if not result.changed:
        lines.insert(0, "Nothing changed; here are your current settings.")
    return "\n".join(lines)


FORGET_PROMPT = ("This deletes **everything** Sonance stores about you: linked accounts and their tokens, your "
                 "listening history, feedback, playlists and settings. It cannot be undone. Continue?")


def forgotten(result: ForgetResult) -> str:
    if not result.rows:
        return "Sonance had nothing stored about you; there was nothing to delete."
    detail = ", ".join(f"{table.replace('_', ' ')}: {n:,}" for table, n in sorted(result.rows.items()))
    return (f"Done. Deleted {result.total_rows:,} rows ({detail}) and {result.cache_keys} cached entries. "
            "Using Sonance again starts from scratch.")


FORGET_CANCELLED = "Cancelled; nothing was deleted."
FORGET_TIMED_OUT = "This confirmation expired; nothing was deleted. Run /forget again if you meant it."


def export_message(result: ExportResult) -> str:
    if result.empty:
        return "Sonance has nothing stored about you."
    summary = ", ".join(f"{table.replace('_', ' ')}: {n:,}" for table, n in sorted(result.tables.items()))
    return f"Everything Sonance stores about you ({summary}). Tokens are never exported."


def export_file(result: ExportResult) -> discord.File:
    return discord.File(io.BytesIO(result.data), filename=result.filename)
