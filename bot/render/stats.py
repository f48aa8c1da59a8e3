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
PRIVATE_NOT_SHOWN = "members who keep their listening private are not shown"


def _plays(n: int) -> str:
    return f"{n:,} play" + ("" if n == 1 else "s")


def _ranks(plays: list[int]) -> list[str]:
    """Medal or number per row of a list sorted by plays, equal plays sharing a place ("1, 1, 3"):
    two members with 12 plays each are both first, not first and second by the order of their ids."""
    places: list[int] = []
    for i, n in enumerate(plays):
        places.append(places[-1] if i and n == plays[i - 1] else i)
    return [MEDALS[p] if p < len(MEDALS) else f"`{p + 1}.`" for p in places]


def who_knows_embed(result: WhoKnows, guild_name: str | None) -> discord.Embed:
    artist = discord.utils.escape_markdown(result.artist)
    embed = discord.Embed(title=f"Who knows {artist}?"[:256], url=result.artist_url, colour=ACCENT)
    if not result.listeners:
        # Not "nobody here": a member who keeps their listening private may have played it.
        embed.description = (f"Nobody who shares their listening here has played **{artist}** yet. "
                             "Be the first, and tell your server what you think!")
        embed.set_footer(text=PRIVATE_NOT_SHOWN[0].upper() + PRIVATE_NOT_SHOWN[1:])
        return embed
    ranks = _ranks([x.plays for x in result.listeners])
    embed.description = "\n".join(
        f"{rank} **{discord.utils.escape_markdown(x.name)}**: {_plays(x.plays)}"
        for rank, x in zip(ranks, result.listeners, strict=True))
    where = f" in {guild_name}" if guild_name else ""
    count = len(result.listeners)
    embed.set_footer(text=f"{count} listener{'s' if count != 1 else ''}{where} · {PRIVATE_NOT_SHOWN}")
    return embed


def top_embed(result: TopArtists) -> discord.Embed:
    whose = "Your" if result.owner_name is None else f"{discord.utils.escape_markdown(result.owner_name)}'s"
    embed = discord.Embed(title=f"{whose} top artists · {result.period_label}"[:256], colour=ACCENT)
    if not result.artists:
        embed.description = ("No listens in this period yet. Try a longer period, or `/top period:overall`."
                             if result.period != "overall" else "No listening history yet.")
        return embed
    ranks = _ranks([plays for _, plays in result.artists])
    embed.description = "\n".join(
        f"{rank} **{discord.utils.escape_markdown(name)}**: {_plays(plays)}"
        for rank, (name, plays) in zip(ranks, result.artists, strict=True))
    return set_cover(embed, result.cover_url)
