"""The Discord side of a weekly DM: the `deliver` port of `core.weekly.WeeklyDigest`.

fetch user -> open the DM channel -> send one embed (plus the persistent 👍/👎 buttons of
`bot.views.feedback` when the items were recorded as shown) -> map Discord's answer to an outcome.
50007 ("Cannot send messages to this user": DMs closed or the bot blocked) becomes ``dm_closed`` so
the engine stops trying until the user runs /dm again; everything else is ``failed`` and logged. It
never raises: a scheduler job must not die on one recipient.
"""

from __future__ import annotations

import logging

import discord

from bot.views.feedback import FeedbackButton
from core.weekly import DeliveryOutcome, DigestContent

log = logging.getLogger(__name__)

DM_CLOSED_CODE = 50007
ACCENT = discord.Colour(0x1DB954)
EMBED_BUDGET = 5800  # Discord's limit is 6000 characters across a message's embeds
FOOTER = "Weekly picks from Sonance · change the day or turn these off with /dm"


def digest_embed(content: DigestContent) -> discord.Embed:
    """One embed, inside Discord's limits: ≤ 10 fields, names ≤ 256, values ≤ 1024, total < 6000."""
    embed = discord.Embed(title="Your weekly picks", description=content.opener[:1000] or None, colour=ACCENT)
    for i, item in enumerate(content.items[:10], start=1):
        name = discord.utils.escape_markdown(item.name)
        value = item.reason[:300]
        if item.url:
            value += f"\n[Listen on Last.fm]({item.url[:500]})"
        field_name, field_value = f"{i}. {name}"[:256], value[:1024]
        if len(embed) + len(field_name) + len(field_value) + len(FOOTER) > EMBED_BUDGET:
            break  # Discord rejects a message over 6000 embed characters: drop the tail, not the DM
        embed.add_field(name=field_name, value=field_value, inline=False)
    embed.set_footer(text=FOOTER)
    return embed


def _feedback_view(content: DigestContent) -> discord.ui.View | None:
    """Up/down buttons per recorded item: the same persistent `FeedbackButton` (custom_id
    ``sonance:fb:<recommendations_shown.id>:up|down``) as /recommend, so a click on a DM reaches
    the bot after a restart too. Items without a `shown_id` (the server-mates fallback does not
    record any) get no buttons."""
    shown = [item for item in content.items if item.shown_id is not None][:5]
    if not shown:
        return None
    view = discord.ui.View(timeout=None)
    for item in shown:
        for vote in ("up", "down"):
            view.add_item(FeedbackButton(item.shown_id, vote))  # type: ignore[arg-type]  # filtered above
    return view


class DiscordDmDelivery:
    """`deliver(discord_id, content)` for a running bot; the bot's HTTP client does rate limiting."""

    def __init__(self, bot: discord.Client) -> None:
        self.bot = bot

    async def __call__(self, discord_id: int, content: DigestContent) -> DeliveryOutcome:
        try:
            user = self.bot.get_user(discord_id) or await self.bot.fetch_user(discord_id)
            channel = user.dm_channel or await user.create_dm()
            view = _feedback_view(content)
            if view is not None:
                await channel.send(embed=digest_embed(content), view=view)
            else:
                await channel.send(embed=digest_embed(content))
        except discord.Forbidden as exc:
            if exc.code == DM_CLOSED_CODE:
                return DeliveryOutcome("dm_closed", f"discord {exc.code}")
            log.warning("weekly DM forbidden", extra={"discord_code": exc.code})
            return DeliveryOutcome("failed", f"forbidden {exc.code}")
        except discord.NotFound as exc:  # 10013 unknown user: the account is gone
            return DeliveryOutcome("failed", f"not found {exc.code}")
        except discord.HTTPException as exc:
            log.warning("weekly DM send failed", extra={"status": exc.status, "discord_code": exc.code})
            return DeliveryOutcome("failed", f"http {exc.status} {exc.code}")
        return DeliveryOutcome("sent")
