"""Embeds and messages for /playlist: pure functions from playlist results to Discord objects.

Catalogue strings (artist and track names, reasons) are escaped and clipped, and the preview stops
adding tracks well before Discord's 4,096-character description and 6,000-character embed limits,
so a 100-track playlist with long titles still renders (the rest is in the exports).
"""

from __future__ import annotations

import io

import discord

from bot.render.images import set_cover
from bot.render.text import clip, esc, md
from core.playlists.models import BuiltPlaylist, FilesExport, Origin, SpotifyExport

ACCENT = 0x1DB954
PREVIEW_TRACKS = 15
DESCRIPTION_BUDGET = 3800  # below 4,096, leaving room for the "…and N more" line
CONTENT_LIMIT = 2000
ORIGIN_LABELS = {Origin.RECOMMENDATIONS: "from your recommendations", Origin.SEED: "from a seed",
                 Origin.BLEND: "a blend"}


def _duration(ms: int | None) -> str:
    if not ms:
        return ""
    seconds = round(ms / 1000)
    return f" `{seconds // 60}:{seconds % 60:02d}`"


def playlist_embed(playlist: BuiltPlaylist, asker: str) -> discord.Embed:
    """The preview: name, description, the first tracks with their reasons, totals and fairness."""
    head = esc(clip(playlist.description, 500)) if playlist.description else ""
    lines: list[str] = []
    used = len(head) + 2
    shown = 0
    for i, track in enumerate(playlist.tracks[:PREVIEW_TRACKS], start=1):
        line = (f"`{i:>2}.` **{esc(clip(track.artist, 100))}** – {esc(clip(track.title, 120))}"
                f"{_duration(track.duration_ms)}\n\u2003_{esc(clip(track.reason, 140))}_")
        if used + len(line) + 1 > DESCRIPTION_BUDGET:
            break
        lines.append(line)
        used += len(line) + 1
        shown = i
    rest = len(playlist.tracks) - shown
    if rest > 0:
        lines.append(f"…and {rest} more in the exports.")
    description = "\n\n".join(p for p in (head, "\n".join(lines)) if p)
    embed = discord.Embed(title=clip(md(playlist.name), 256), description=description[:4096], color=ACCENT)
    if playlist.fairness is not None and playlist.partner_name is not None:
        f = playlist.fairness
        embed.add_field(name="Fairness", value=clip(
            f"{esc(asker)} {f.share_a:.0%} · {esc(playlist.partner_name)} {f.share_b:.0%} "
            f"({f.shared} shared, {f.only_a} + {f.only_b} individual picks)", 1024), inline=False)
    if playlist.note:
        # plain text that names artists (a seed, its neighbours): escaped like every catalogue string
        embed.add_field(name="Note", value=clip(esc(playlist.note), 1024), inline=False)
    origin = ORIGIN_LABELS.get(playlist.origin, str(playlist.origin))
    footer = f"{len(playlist.tracks)} tracks · {origin} · for {asker}"
    if not playlist.spotify_linked:
        footer += " · link Spotify (/link spotify) to send it there"
    embed.set_footer(text=clip(footer, 2048))
    return set_cover(embed, playlist.cover_url)


def _files(export: FilesExport) -> list[discord.File]:
    return [discord.File(io.BytesIO(f.data), filename=f.filename) for f in export.files]


def files_message(export: FilesExport, prefix: str = "") -> tuple[str, list[discord.File]]:
    """XSPF + M3U attachments and a message with Last.fm / Spotify search links for the first tracks.

    Links are wrapped in <…> so Discord doesn't unfurl ten previews.
    """
    content = prefix + (f"**{esc(clip(export.name, 200))}**: {export.total} tracks. Import the XSPF or M3U file into your "
               "player (or a playlist converter), or search the tracks directly:")
    for i, link in enumerate(export.links, start=1):
        line = (f"\n{i}. {esc(clip(link.artist, 80))} – {esc(clip(link.title, 80))}: "
                f"[Last.fm](<{link.lastfm}>) · [Spotify](<{link.spotify}>)")
        if len(content) + len(line) > CONTENT_LIMIT - 40:
            break
        content += line
    return content, _files(export)


def spotify_message(result: SpotifyExport) -> tuple[str, list[discord.File]]:
    """The export outcome; a refusal carries the files (and their search links) as the fallback."""
    if result.fallback is None:
        return clip(result.message, CONTENT_LIMIT), []
    return files_message(result.fallback, prefix=clip(result.message, 600) + "\n\n")
