"""Strings for Discord: clipped to a limit, and escaped for where they are shown.

Names come from members, Last.fm and LLMs, so every one is escaped: `esc` for message and embed
bodies (Markdown and mentions), `md` for embed titles, which render Markdown (a member called `__x__`
would be underlined) but never ping.
"""

from __future__ import annotations

import discord


def clip(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters with an ellipsis (Discord rejects anything longer)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def esc(text: str) -> str:
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def md(text: str) -> str:
    return discord.utils.escape_markdown(text)
