"""Embeds for /recommend, /similar and /tune: pure functions from service results to Discord objects.

User-controlled and catalogue strings (artist, album and tag names) are escaped and clipped to the
embed limits, and a page is built to stay well under 6,000 characters, so Discord never rejects it.
"""

from __future__ import annotations

import discord

from bot.render.images import set_cover
from bot.render.text import clip, esc, md
from core.domain import Kind, Recommendation
from core.explain.types import Preferences
from core.recommender.service import RecommendationList, ShownRecommendation, SimilarResult
from core.tags import display_tags

PAGE_SIZE = 5
ACCENT = 0x1DB954
MAX_TITLE, MAX_DESCRIPTION, MAX_FOOTER = 256, 4096, 2048
REASON_CHARS = 300  # one line of reason per item: 5 x ~400 characters fits any page comfortably

KIND_PLURAL = {Kind.ARTIST: "artists", Kind.ALBUM: "albums", Kind.TRACK: "tracks"}


def discovery_label(level: float) -> str:
    if level < 0.2:
        return "familiar"
    if level < 0.6:
        return "balanced"
    return "deep cuts"


def page_count(result: RecommendationList) -> int:
    return max(1, -(-len(result.items) // PAGE_SIZE))


def page_items(result: RecommendationList, page: int) -> tuple[ShownRecommendation, ...]:
    return result.items[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]


def similar_line(rec: Recommendation) -> str | None:
    """"similar to Radiohead and Portishead on Last.fm" when Last.fm's similar-artist graph drove the pick."""
    names = [esc(w.name) for w in rec.evidence.similar_to[:2]]
    if not names:
        return None
    return f"similar to {' and '.join(names)} on Last.fm"


def aoty_line(rec: Recommendation) -> str | None:
    """"AOTY critics 86 (41) · users 82 (1,204)" when albumoftheyear.org knows the album."""
    facts = rec.evidence.aoty
    if facts is None:
        return None
    parts = []
    if facts.critic_score is not None:
        parts.append(f"critics {facts.critic_score:.0f}" + (f" ({facts.critic_count:,})" if facts.critic_count else ""))
    if facts.user_score is not None:
        parts.append(f"users {facts.user_score:.0f}" + (f" ({facts.user_count:,})" if facts.user_count else ""))
    if facts.must_hear:
        parts.append("must hear")
    return ("AOTY " + " · ".join(parts)) if parts else None


def item_title(rec: Recommendation) -> str:
    name = esc(rec.name)
    if rec.url:
        name = f"[{name}]({rec.url[:400]})"
    if rec.artist and rec.kind != Kind.ARTIST:
        name = f"{name} — {esc(rec.artist)}"
    return name


def recommendations_embed(result: RecommendationList, page: int, asker: str) -> discord.Embed:
    """One page (5 items): numbered names with one line of reason each; cover art of the first item."""
    pages = page_count(result)
    page = max(0, min(page, pages - 1))
    kind = KIND_PLURAL[result.kind]
    # Titles render Markdown too (never mentions): names and tags are escaped for it.
    title = f"{md(asker)}'s {kind}" + (f" · {md(result.tag)}" if result.tag else "")
    lines = []
    for number, shown in enumerate(page_items(result, page), start=page * PAGE_SIZE + 1):
        line = f"**{number}.** {item_title(shown.rec)}\n{esc(clip(shown.reason, REASON_CHARS))}"
        for extra in (similar_line(shown.rec), aoty_line(shown.rec)):
            if extra and extra not in shown.reason:
                line += f"\n*{extra}*"
        lines.append(line)
    embed = discord.Embed(title=clip(title, MAX_TITLE), description=clip("\n\n".join(lines), MAX_DESCRIPTION),
                          colour=discord.Colour(ACCENT))
    set_cover(embed, (s.rec.image_url for s in page_items(result, page)))
    footer = [f"Page {page + 1}/{pages}", f"discovery: {discovery_label(result.discovery)}",
              "👍/👎 teach me · Why? explains"]
    if result.note:
        footer.insert(0, result.note)
    embed.set_footer(text=clip(" · ".join(footer), MAX_FOOTER))
    return embed


def similar_embed(result: SimilarResult) -> discord.Embed:
    lines = []
    for number, rec in enumerate(result.items, start=1):
        tags = ", ".join(esc(t) for t in display_tags((t.name for t in rec.evidence.tags), 3))
        graph = similar_line(rec)
        lines.append(f"**{number}.** {item_title(rec)}" + (f" · {tags}" if tags else "") + (f" · {graph}" if graph else ""))
    embed = discord.Embed(title=clip(f"Artists like {md(result.seed)}", MAX_TITLE),
                          description=clip("\n".join(lines) or "Nothing close enough yet.", MAX_DESCRIPTION),
                          colour=discord.Colour(ACCENT))
    set_cover(embed, (r.image_url for r in result.items))
    embed.set_footer(text=clip(result.note or "From what listeners who play them also play, and shared tags",
                               MAX_FOOTER))
    return embed


def preferences_summary(prefs: Preferences) -> str:
    """What /tune understood, in words, so the user can check it."""
    parts = []
    if prefs.boost_tags:
        parts.append("more " + ", ".join(prefs.boost_tags))
    if prefs.avoid_tags:
        parts.append("less " + ", ".join(prefs.avoid_tags))
    if prefs.era:
        parts.append(f"era {prefs.era[0]}–{prefs.era[1]} (used for albums and tracks when years are known)")
    if prefs.era_bias:
        parts.append(f"{prefs.era_bias} music")
    if prefs.discovery is not None:
        parts.append(f"discovery {discovery_label(prefs.discovery)}")
    elif prefs.discovery_delta:
        parts.append("deeper cuts" if prefs.discovery_delta > 0 else "more mainstream")
    if not parts:
        return "Your tuning is cleared: recommendations follow your listening alone."
    return clip("Got it. From now on: " + "; ".join(esc(p) for p in parts) + ". Use /recommend to see the effect.",
                2000)
