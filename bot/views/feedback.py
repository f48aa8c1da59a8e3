"""Persistent 👍/👎 and "Why?" buttons, and the paginator that carries them on /recommend answers.

Why DynamicItems: every shown item has its own `recommendations_shown` row, and its id is all a click
needs (``sonance:fb:<shown_id>:up|down``, ``sonance:why:<shown_id>``). discord.py matches the
custom_id against the template on *any* message, so buttons keep working after a restart, on weekly
DMs, and on pages the paginator is no longer tracking. The service checks that the clicker owns the
row, so these buttons need no view-level owner check; only Prev/Next (plain, short-lived) do.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord

from bot.interactions import handle_error, known
from bot.render.recommend import page_count, page_items, recommendations_embed
from core.access import EXPLANATION_NOT_YOURS, RECOMMENDATIONS_NOT_YOURS
from core.asker import Asker
from core.errors import NotYours
from core.recommender.service import RecommendationList, RecommendService

log = logging.getLogger(__name__)

FEEDBACK_TEMPLATE = r"sonance:fb:(?P<rec>\d+):(?P<v>up|down)"
WHY_TEMPLATE = r"sonance:why:(?P<rec>\d+)"
VOTES = {"up": 1, "down": -1}
PAGE_TIMEOUT_S = 300.0


def _service(interaction: discord.Interaction) -> RecommendService:
    return RecommendService.of(interaction.client.services)  # type: ignore[attr-defined]


async def _asker(interaction: discord.Interaction, refusal: str) -> Asker:
    """The clicker, if Sonance stores them (`bot.interactions.known`: anyone in the channel may press
    these buttons, and pressing must not create a row); the service then checks that the shown row is
    theirs. Someone Sonance has never seen cannot own it: `NotYours` with the row's wording."""
    asker = await known(interaction.client.services, interaction)  # type: ignore[attr-defined]
    if asker is None:
        raise NotYours(refusal)
    return asker


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=FEEDBACK_TEMPLATE):
    """👍/👎 on one shown item: ``FeedbackButton(shown_id, "up" | "down")``."""

    def __init__(self, shown_id: int, vote: str, *, label: str | None = None, row: int | None = None) -> None:
        if vote not in VOTES:
            raise ValueError(f"vote must be 'up' or 'down', not {vote!r}")
        shown_id = int(shown_id)
        if shown_id < 0:
            raise ValueError("shown_id must be a row id")
        super().__init__(discord.ui.Button(
            style=discord.ButtonStyle.success if vote == "up" else discord.ButtonStyle.secondary,
            emoji="👍" if vote == "up" else "👎", label=label, custom_id=f"sonance:fb:{shown_id}:{vote}", row=row))
        self.shown_id = shown_id
        self.vote = vote

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> FeedbackButton:
        return cls(int(match["rec"]), match["v"], label=getattr(item, "label", None))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            asker = await _asker(interaction, RECOMMENDATIONS_NOT_YOURS)
            outcome = await _service(interaction).feedback(asker, self.shown_id, VOTES[self.vote])
            name = discord.utils.escape_markdown(outcome.name)
            if outcome.value > 0:
                text = f"👍 Noted: you like **{name}**. I'll lean towards things like it."
            else:
                text = f"👎 Noted: no more **{name}**, and less of what's like it."
            await interaction.followup.send(text, ephemeral=True)
        except Exception as exc:  # item callbacks bypass the tree's error handler: apply the policy here
            await handle_error(interaction, exc)


class WhyButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=WHY_TEMPLATE):
    """"Why?" on one shown item: the explanation from the evidence stored when it was shown."""

    def __init__(self, shown_id: int, *, label: str | None = None, row: int | None = None) -> None:
        shown_id = int(shown_id)
        super().__init__(discord.ui.Button(style=discord.ButtonStyle.primary, label=label or "Why?",
                                           custom_id=f"sonance:why:{shown_id}", row=row))
        self.shown_id = shown_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> WhyButton:
        return cls(int(match["rec"]), label=getattr(item, "label", None))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            asker = await _asker(interaction, EXPLANATION_NOT_YOURS)
            text = await _service(interaction).why(asker, self.shown_id)
            await interaction.followup.send(text[:2000], ephemeral=True)
        except Exception as exc:
            await handle_error(interaction, exc)


PERSISTENT_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (FeedbackButton, WhyButton)

#: The component payload of each kind of persistent button, as discord.py renders it; a page copies
#: these with its own labels and custom ids (see `RecommendationPages`).
_PAYLOADS = {
    "up": FeedbackButton(0, "up", label="0").item.to_component_dict(),
    "down": FeedbackButton(0, "down", label="0").item.to_component_dict(),
    "why": WhyButton(0, label="Why 0?").item.to_component_dict(),
}


def _persistent_rows(shown_ids: list[int], first: int) -> list[dict[str, Any]]:
    """The action rows of a page's 👍, 👎 and Why? buttons (numbered from `first`)."""
    rows = []
    for kind in ("up", "down", "why"):
        template = _PAYLOADS[kind]
        rows.append({"type": 1, "components": [
            {**template,
             "label": f"Why {first + offset}?" if kind == "why" else str(first + offset),
             "custom_id": f"sonance:why:{shown_id}" if kind == "why" else f"sonance:fb:{shown_id}:{kind}"}
            for offset, shown_id in enumerate(shown_ids)]})
    return rows


class RecommendationPages(discord.ui.View):
    """5 items per page: a row of 👍, a row of 👎, a row of Why?, then Prev/Next for the asker only.

    On timeout Prev/Next are disabled; the persistent buttons stay live.

    The persistent buttons are not items of this view, only rows of its payload (`to_components`,
    copied from discord.py's own rendering of each kind): a click reaches `FeedbackButton` or
    `WhyButton` through their templates, registered once at setup, never through a view. Building
    them as 15 DynamicItems per list cost ~0.1 ms of CPU per /recommend only to serialise them, and
    a view holding DynamicItems unregisters their templates when it stops (which had to be undone).

    What a live view keeps, and why it matters: discord.py holds every view with a timeout (and its
    timer task) until it times out, so at a steady /recommend rate the live views are a standing
    share of the bot's memory (`scripts/bench soak`: ~190 live views at its rate, each holding ~36 KiB
    of result and items besides the parsed message; ~100 since this change). So a single-page list,
    whose buttons are all persistent, gets no timeout and no items and is not kept at all; a longer
    list keeps its result (to turn pages) and, for the timeout edit, only the follow-up webhook and
    the message id, not the sent message parsed into a full `discord.Message`.
    """

    def __init__(self, result: RecommendationList, owner_id: int, asker: str, *,
                 timeout: float = PAGE_TIMEOUT_S) -> None:
        pages = page_count(result)
        super().__init__(timeout=timeout if pages > 1 else None)
        self.result = result
        self.owner_id = owner_id
        self.asker = asker
        self.page = 0
        self.pages = pages
        self._followup: discord.Webhook | None = None  # where the timeout edit goes (multi-page only)
        self._message_id: int | None = None
        self.prev_button: discord.ui.Button[RecommendationPages] = discord.ui.Button(
            label="◀ Prev", style=discord.ButtonStyle.secondary, row=3)
        self.next_button: discord.ui.Button[RecommendationPages] = discord.ui.Button(
            label="Next ▶", style=discord.ButtonStyle.secondary, row=3)
        self.prev_button.callback = self._prev  # type: ignore[method-assign]
        self.next_button.callback = self._next  # type: ignore[method-assign]
        self._build()

    def embed(self) -> discord.Embed:
        return recommendations_embed(self.result, self.page, self.asker)

    async def send(self, interaction: discord.Interaction) -> None:
        """Answer the (deferred) interaction with page 1.

        A single page is sent without waiting for Discord's copy of the message (nothing will edit
        it, and parsing it costs CPU on every /recommend); a longer list remembers where to send
        the timeout edit.
        """
        if self.pages <= 1:
            await interaction.followup.send(embed=self.embed(), view=self)
            return
        message = await interaction.followup.send(embed=self.embed(), view=self, wait=True)
        self._followup, self._message_id = interaction.followup, message.id

    def _build(self) -> None:
        if self.pages > 1 and not self.children:
            self.add_item(self.prev_button)
            self.add_item(self.next_button)
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1

    def to_components(self) -> list[dict[str, Any]]:
        shown = [item.shown_id for item in page_items(self.result, self.page)]
        return _persistent_rows(shown, self.page * 5 + 1) + super().to_components()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message("Only the person who asked can turn these pages. "
                                                "Run /recommend for your own list!", ephemeral=True)
        return False

    async def _turn(self, interaction: discord.Interaction, delta: int) -> None:
        self.page = max(0, min(self.pages - 1, self.page + delta))
        self._build()
        await interaction.response.edit_message(embed=self.embed(), view=self)

    async def _prev(self, interaction: discord.Interaction) -> None:
        await self._turn(interaction, -1)

    async def _next(self, interaction: discord.Interaction) -> None:
        await self._turn(interaction, +1)

    async def on_timeout(self) -> None:
        self.prev_button.disabled = self.next_button.disabled = True
        if self._followup is None or self._message_id is None:
            return
        try:
            await self._followup.edit_message(self._message_id, view=self)
        except discord.HTTPException:
            log.info("could not disable page buttons after timeout (message gone or token expired)")
