"""Embeds for the stats commands (/whoknows, /top): pure functions of the engine's results.

Names come from users and artists, so they are escaped: a member called `**x**` must not bold half
the list. Lists are short (15 / 10 rows), well inside Discord's 4096-character description.
"""

from __future__ import annotations

import discord

from bot.render.images import set_cover
from core.stats import TopArtists, WhoKnows

ACCENT = discord.Colour(0x5865F2)
MEDALS = ("🥇", "🥈", "🥉")


def _plays(n: int) -> str:
    return f"{n:,} play" + ("" if n == 1 else "s")


def _rank(i: int) -> str:
    return MEDALS[i] if i < len(MEDALS) else f"`{i + 1}.`"


def who_knows_embed(result: WhoKnows, guild_name: str | None) -> discord.Embed:
    artist = discord.utils.escape_markdown(result.artist)
    embed = discord.Embed(title=f"Who knows {artist}?"[:256], url=result.artist_url, colour=ACCENT)
    if not result.listeners:
        embed.description = (f"Nobody here has played **{artist}** yet. "
                             "Be the first, and tell your server what you think!")
        return embed
    embed.description = "\n".join(
        f"{_rank(i)} **{discord.utils.escape_markdown(x.name)}**: {_plays(x.plays)}"
        for i, x in enumerate(result.listeners))
    where = f" in {guild_name}" if guild_name else ""
    count = len(result.listeners)
    embed.set_footer(text=f"{count} listener{'s' if count != 1 else ''}{where} · members who keep their "
                          "listening private are not shown")
    return embed


def top_embed(result: TopArtists) -> discord.Embed:
    whose = "Your" if result.owner_name is None else f"{discord.utils.escape_markdown(result.owner_name)}'s"
    embed = discord.Embed(title=f"{whose} top artists · {result.period_label}"[:256], colour=ACCENT)
    if not result.artists:
        embed.description = ("No listens in this period yet. Try a longer period, or `/top period:overall`."
                             if result.period != "overall" else "No listening history yet.")
        return embed
    embed.description = "\n".join(
        f"{_rank(i)} **{discord.utils.escape_markdown(name)}**: {_plays(plays)}"
        for i, (name, plays) in enumerate(result.artists))
    return set_cover(embed, result.cover_url)
