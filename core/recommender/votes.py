"""👍/👎 and "Why?" on a shown recommendation: only the member it was shown to may use them.

Both read the `recommendations_shown` row the buttons are keyed by, so they work on messages sent
by an earlier process or in a weekly DM. "Why?" explains from the evidence stored when the item was
shown (`core.recommender.codec`), not from today's model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.access import EXPLANATION_NOT_YOURS, RECOMMENDATIONS_NOT_YOURS, owned_row
from core.asker import Asker
from core.db.repositories.recommendations import RecommendationRepository
from core.domain import Kind
from core.errors import InvalidInput
from core.recommender.codec import recommendation_from_json
from core.recommender.preferences import CACHE_NAMESPACE
from core.recommender.results import FeedbackOutcome

if TYPE_CHECKING:
    from core.services import Services

WHY_TTL_S = 7 * 86_400
SHOWN_GONE = "I can't find that recommendation any more."


class Votes:
    """Feedback and explanations of shown items (see the module docstring)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def feedback(self, asker: Asker, shown_id: int, value: int) -> FeedbackOutcome:
        """Record 👍 (+1) / 👎 (-1) on a shown item; only the person it was shown to may vote."""
        if value not in (-1, 1):
            raise InvalidInput("Feedback is a thumbs up or a thumbs down.")
        async with self.services.session() as session:
            repo = RecommendationRepository(session)
            shown = owned_row(await repo.shown(shown_id), asker, SHOWN_GONE, RECOMMENDATIONS_NOT_YOURS)
            await repo.set_feedback(asker.user_id, shown.item_kind, shown.item_id, value)
        await self.services.cache.delete_matching(CACHE_NAMESPACE, f"u{asker.user_id}:")
        name = str((shown.evidence or {}).get("name") or "that")
        return FeedbackOutcome(name, value, Kind(shown.item_kind))

    async def why(self, asker: Asker, shown_id: int) -> str:
        """The explanation of a shown item, from the evidence stored when it was shown (owner only)."""
        async with self.services.session() as session:
            row = await RecommendationRepository(session).shown(shown_id)
        shown = owned_row(row, asker, SHOWN_GONE, EXPLANATION_NOT_YOURS)
        key = f"u{shown.user_id}:why:{shown_id}"
        cached = await self.services.cache.get(CACHE_NAMESPACE, key)
        if isinstance(cached, str):
            return cached
        rec = recommendation_from_json(shown.item_kind, shown.item_id, shown.evidence)
        text = (await self.services.explainer.recommendation(rec, user_id=shown.user_id)).text
        await self.services.cache.set(CACHE_NAMESPACE, key, text, WHY_TTL_S)
        return text
