"""Embeds for /compat, /leaderboard and /matches: pure functions from service results to Discord objects.

Every user-controlled string (display names, artist and tag names) is escaped for Markdown and every
part is clipped to Discord's embed limits (title 256, description 4096, field value 1024, 25 fields,
6000 characters in all), so a pathological name can never make Discord reject the whole answer.
"""

from __future__ import annotations

import io

import discord

from bot.render.text import clip, esc, md
from core.compat.service import CompatResult, LeaderboardResult, MatchesResult
from core.domain import Compatibility
from core.tags import display_tags

CARD_FILENAME = "compat.png"
MAX_TITLE, MAX_DESCRIPTION, MAX_FIELD_NAME, MAX_FIELD_VALUE, MAX_TOTAL = 256, 4096, 256, 1024, 6000
ACCENT = 0x57F287


def colour_for(score: float) -> discord.Colour:
    if score >= 80:
        return discord.Colour(ACCENT)
    if score >= 55:
        return discord.Colour(0xFEE75C)
    if score >= 30:
        return discord.Colour(0xF0B232)
    return discord.Colour(0xED4245)


def _plays(value: float) -> str:
    return f"{value / 1000:.1f}k" if value >= 10_000 else f"{value:,.0f}"


def _lines(lines: list[str], limit: int = MAX_FIELD_VALUE) -> str:
    """Join whole lines while they fit, so a field is never cut mid-line."""
    out: list[str] = []
    used = 0
    for line in lines:
        line = clip(line, limit)
        candidate = used + len(line) + (1 if out else 0)
        if candidate > limit:
            break
        out.append(line)
        used = candidate
    return "\n".join(out) or "—"


def _add_field(embed: discord.Embed, name: str, value: str, *, inline: bool = False) -> None:
    """Add a field unless it would break the 25-field or 6000-character budget."""
    name, value = clip(name, MAX_FIELD_NAME), clip(value, MAX_FIELD_VALUE)
    if len(embed.fields) >= 25 or len(embed) + len(name) + len(value) > MAX_TOTAL:
        return
    embed.add_field(name=name, value=value, inline=inline)


def _confidence(comp: Compatibility) -> str:
    words = "solid" if comp.confidence >= 0.75 else "fair" if comp.confidence >= 0.5 else "early read, thin history"
    return f"{comp.confidence:.0%} ({words})"


def compat_embed(result: CompatResult) -> tuple[discord.Embed, discord.File | None]:
    """The /compat answer: score and words, the explainer's summary, the breakdown, and the card."""
    comp = result.comp
    a, b = esc(result.name_a), esc(result.name_b)
    description = f"## {comp.score:.0f}/100 · {esc(comp.label)}\n{esc(result.summary)}"
    if result.note:
        description += f"\n\n*{esc(result.note)}*"
    embed = discord.Embed(title=clip(f"{md(result.name_a)} × {md(result.name_b)}", MAX_TITLE),
                          description=clip(description, MAX_DESCRIPTION), colour=colour_for(comp.score))
    if comp.shared_artists:
        _add_field(embed, f"Top shared artists (plays: {clip(result.name_a, 40)} · {clip(result.name_b, 40)})",
                   _lines([f"**{esc(s.name)}** — {_plays(s.plays_a)} · {_plays(s.plays_b)}"
                           for s in comp.shared_artists[:8]]))
    if comp.shared_tags:
        _add_field(embed, "Shared tags", clip(", ".join(esc(t) for t in display_tags((t.name for t in comp.shared_tags), 8)),
                                                MAX_FIELD_VALUE))
    if comp.bridges:
        lines = []
        for bridge in comp.bridges[:4]:
            fan, newcomer = (a, b) if bridge.from_user == "a" else (b, a)
            rank = max(1, round((1.0 - bridge.likelihood) * 100))
            lines.append(f"**{esc(bridge.name)}**: {fan}'s favourite, top {rank}% for {newcomer}")
        _add_field(embed, "Bridges (what each of you could hand the other)", _lines(lines))
    if comp.differences_a:
        _add_field(embed, clip(f"Only {result.name_a}", MAX_FIELD_NAME),
                   _lines([esc(d.name) for d in comp.differences_a[:5]]), inline=True)
    if comp.differences_b:
        _add_field(embed, clip(f"Only {result.name_b}", MAX_FIELD_NAME),
                   _lines([esc(d.name) for d in comp.differences_b[:5]]), inline=True)
    _add_field(embed, "Confidence", _confidence(comp), inline=False)
    embed.set_footer(text="Score = how alike you are compared with all pairs Sonance knows (percentile).")
    file = None
    if result.card_png:
        file = discord.File(io.BytesIO(result.card_png), filename=CARD_FILENAME)
        embed.set_image(url=f"attachment://{CARD_FILENAME}")
    return embed, file


def leaderboard_embed(result: LeaderboardResult, guild_name: str | None) -> discord.Embed:
    """The guild's top pairs and its centre; names are as the repository gives them ("a listener")."""
    where = esc(guild_name) if guild_name else "this server"
    lines = [f"`{k:>2}.` **{esc(p.name_a)}** × **{esc(p.name_b)}** — {p.score:.0f} · {esc(p.label)}"
             for k, p in enumerate(result.pairs, start=1)]
    embed = discord.Embed(title=clip(f"Most compatible pairs in {md(guild_name) if guild_name else 'this server'}",
                                     MAX_TITLE),
                          description=clip(_lines(lines, MAX_DESCRIPTION), MAX_DESCRIPTION),
                          colour=discord.Colour(ACCENT))
    if result.centre is not None:
        _add_field(embed, f"Closest to {where}'s taste",
                   f"**{esc(result.centre.name)}** — {result.centre.score:.0f} · {esc(result.centre.label)}")
    embed.set_footer(text=f"{result.ranked_members} members ranked · only members who use Sonance here and share "
                          "their listening appear")
    return embed


def matches_embed(result: MatchesResult) -> discord.Embed:
    """The asker's best matches in this guild, best first."""
    lines = [f"`{k:>2}.` **{esc(m.name)}** — {m.score:.0f} · {esc(m.label)}"
             for k, m in enumerate(result.matches, start=1)]
    embed = discord.Embed(title=clip(f"Best matches for {md(result.asker_name)}", MAX_TITLE),
                          description=clip(_lines(lines, MAX_DESCRIPTION), MAX_DESCRIPTION),
                          colour=discord.Colour(ACCENT))
    embed.set_footer(text="Use /compat member:<name> for the full breakdown with someone.")
    return embed
