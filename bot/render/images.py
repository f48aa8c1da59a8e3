"""Cover art on embeds: shown when we know a real picture, simply absent otherwise.

Discord shows a broken-image box for a URL it cannot load, and rejects an empty one; so only an
absolute https URL is ever set, and never Last.fm's placeholder star.
"""

from __future__ import annotations

from collections.abc import Iterable

import discord

from core.sources.lastfm_models import PLACEHOLDER_IMAGE


def usable(url: object) -> str | None:
    """An absolute https URL that is a real picture (not Last.fm's grey-star placeholder), or None."""
    if not isinstance(url, str) or not url.strip().startswith("https://") or PLACEHOLDER_IMAGE in url:
        return None
    return url.strip()


def set_cover(embed: discord.Embed, *urls: str | Iterable[str | None] | None) -> discord.Embed:
    """Thumbnail = the first usable URL among `urls` (the list's first item with a cover); else none."""
    for url in urls:
        candidates = [url] if url is None or isinstance(url, str) else url
        for candidate in candidates:
            if (found := usable(candidate)) is not None:
                embed.set_thumbnail(url=found)
                return embed
    return embed
