"""Embeds for /compat, /leaderboard and /matches: pure functions from service results to Discord objects.

Every user-controlled string (display names, artist and tag names) is escaped for Markdown and every
part is clipped to Discord's embed limits (title 256, description 4096, field value 1024, 25 fields,
6000 characters in all), so a pathological name can never make Discord reject the whole answer.
"""

from __future__ import annotations

import io

import discord

from bot.render.text import clip, esc, md
from core.compat.service import CompatResult, LeaderboardResult, MatchesResult, RankedMember, RankedPair
from core.domain import Bridge, Compatibility, is_early_read
from core.tags import display_tags

CARD_FILENAME = "compat.png"
MAX_TITLE, MAX_DESCRIPTION, MAX_FIELD_NAME, MAX_FIELD_VALUE, MAX_TOTAL = 256, 4096, 256, 1024, 6000
ACCENT = 0x57F287
#: A bridge whose fit beats fewer than this share of the artists the other hasn't played is called a
#: stretch rather than given a number ("in the top 100%" says nothing).
BRIDGE_STRETCH_BELOW = 0.5
EARLY_READ_MARK = " · early read"
EARLY_READ_LEGEND = "Early read: a thin listening history so far, so the score may still move."


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
    """The Confidence field; "early read" by the threshold the boards mark pairs with."""
    if is_early_read(comp.confidence):
        words = "early read, thin history"
    else:
        words = "solid" if comp.confidence >= 0.75 else "fair"
    return f"{comp.confidence:.0%} ({words})"


def _bridge_line(bridge: Bridge, fan: str, newcomer: str) -> str:
    """One bridge in plain words (`fan`, `newcomer` already escaped).

    `1 - bridge.likelihood` is the share of the artists the newcomer hasn't played (among those
    their taste reaches at all) that fit them at least as well, this one included
    (`core.compat.scoring._bridges`), so the line says "of the artists Bob hasn't played, it's in
    the top 12% for Bob's taste". The old "top 12% for Bob" did not say of what, and read like a
    share of Bob's plays. In the bottom half the number flatters ("top 100%"), so it becomes words.
    """
    if bridge.likelihood >= BRIDGE_STRETCH_BELOW:
        top = max(1, round((1.0 - bridge.likelihood) * 100))
        fit = f"of the artists {newcomer} hasn't played, it's in the top {top}% for {newcomer}'s taste"
    else:
        fit = f"a stretch for {newcomer}'s taste, but within reach"
    return f"**{esc(bridge.name)}**: one of {fan}'s top artists; {fit}"


def _ranked(entry: RankedPair | RankedMember) -> str:
    """ "83 · great match", marked " · early read" when the score rests on a thin history (the
    same threshold as /compat's Confidence field, so a board never shows bare what /compat qualifies)."""
    return f"{entry.score:.0f} · {esc(entry.label)}" + (EARLY_READ_MARK if entry.early_read else "")


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
        _add_field(embed, f"Top shared artists (plays: {md(clip(result.name_a, 40))} · {md(clip(result.name_b, 40))})",
                   _lines([f"**{esc(s.name)}** — {_plays(s.plays_a)} · {_plays(s.plays_b)}"
                           for s in comp.shared_artists[:8]]))
    if comp.shared_tags:
        _add_field(embed, "Shared tags", clip(", ".join(esc(t) for t in display_tags((t.name for t in comp.shared_tags), 8)),
                                                MAX_FIELD_VALUE))
    if comp.bridges:
        lines = [_bridge_line(bridge, *((a, b) if bridge.from_user == "a" else (b, a)))
                 for bridge in comp.bridges[:4]]
        _add_field(embed, "Bridges (what each of you could hand the other)", _lines(lines))
    if comp.differences_a:
        _add_field(embed, clip(f"Only {md(result.name_a)}", MAX_FIELD_NAME),
                   _lines([esc(d.name) for d in comp.differences_a[:5]]), inline=True)
    if comp.differences_b:
        _add_field(embed, clip(f"Only {md(result.name_b)}", MAX_FIELD_NAME),
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
    lines = [f"`{k:>2}.` **{esc(p.name_a)}** × **{esc(p.name_b)}** — {_ranked(p)}"
             for k, p in enumerate(result.pairs, start=1)]
    embed = discord.Embed(title=clip(f"Most compatible pairs in {md(guild_name) if guild_name else 'this server'}",
                                     MAX_TITLE),
                          description=clip(_lines(lines, MAX_DESCRIPTION), MAX_DESCRIPTION),
                          colour=discord.Colour(ACCENT))
    if result.centre is not None:
        _add_field(embed, f"Closest to {where}'s taste",
                   f"**{esc(result.centre.name)}** — {_ranked(result.centre)}")
    footer = (f"{result.ranked_members} members ranked · only members who use Sonance here and share their "
              "listening appear")
    if any(p.early_read for p in result.pairs) or (result.centre is not None and result.centre.early_read):
        footer += f"\n{EARLY_READ_LEGEND}"
    embed.set_footer(text=footer)
    return embed


def matches_embed(result: MatchesResult) -> discord.Embed:
    """The asker's best matches in this guild, best first."""
    lines = [f"`{k:>2}.` **{esc(m.name)}** — {_ranked(m)}"
             for k, m in enumerate(result.matches, start=1)]
    embed = discord.Embed(title=clip(f"Best matches for {md(result.asker_name)}", MAX_TITLE),
                          description=clip(_lines(lines, MAX_DESCRIPTION), MAX_DESCRIPTION),
                          colour=discord.Colour(ACCENT))
    footer = "Use /compat member:<name> for the full breakdown with someone."
    if any(m.early_read for m in result.matches):
        footer += f"\n{EARLY_READ_LEGEND}"
    embed.set_footer(text=footer)
    return embed
