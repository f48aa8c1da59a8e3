"""👍/👎 and "Why?" on a shown recommendation: only the member it was shown to may use them.

Both read the `recommendations_shown` row the buttons are keyed by, so they work on messages sent
by an earlier process or in a weekly DM. "Why?" explains from the evidence stored when the item was
shown (`core.recommender.codec`), not from today's model.

"Why?" answers with the evidence itself, as a short list (the member's artists it is close to, the
tags they share, Last.fm's similar graph, which signals lifted it, its Last.fm listeners, AOTY
facts), not with a sentence: the card already shows the explainer's sentence, and clicking "Why?"
to get the same line again told the member nothing new. Every entry comes from the stored row, the
same facts the sentence was grounded in (`core.explain.evidence.recommendation_brief`), so the two
never disagree. It is pure formatting, so nothing is cached.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from core.access import EXPLANATION_NOT_YOURS, RECOMMENDATIONS_NOT_YOURS, owned_row
from core.asker import Asker
from core.db.repositories.recommendations import RecommendationRepository
from core.domain import Kind, Recommendation
from core.errors import InvalidInput
from core.explain.evidence import recommendation_brief
from core.markup import literal
from core.recommender.codec import recommendation_from_json
from core.recommender.preferences import CACHE_NAMESPACE
from core.recommender.results import FeedbackOutcome

if TYPE_CHECKING:
    from core.services import Services

SHOWN_GONE = "I can't find that recommendation any more."

#: What each model component measures, in the member's words ("What lifted it: …"). Components that
#: learn from co-listening all read the same to a listener. Keys: the component names of
#: `core.recommender.components.TrainingPlan`.
SIGNAL_WORDS = {
    **dict.fromkeys(("ease", "rp3", "knn", "nmf", "als"), "listeners who play what you play"),
    "content": "shared tags",
    "graph": "Last.fm's similar artists",
    "links": "albumoftheyear.org's similar albums",
    "quality": "ratings on albumoftheyear.org",
    "pop": "popularity among the listeners I learn from",
}
COLD_START_NOTE = "cold start"  # the engine's note on picks for a short history starts with this


def _names(values: Iterable[str] | None) -> str:
    """Names as a comma list, Markdown-escaped."""
    return ", ".join(literal(str(v)) for v in values or ())


def lifted_by(sources: dict[str, float]) -> list[str]:
    """The signals that pushed the item up (positive contribution), strongest first, one entry per
    wording: a component with a negative share held the item back and is no reason for it."""
    best: dict[str, float] = {}
    for name, value in sources.items():
        words = SIGNAL_WORDS.get(name)
        if words is not None and value > 0:
            best[words] = max(best.get(words, 0.0), value)
    return sorted(best, key=lambda w: -best[w])


def aoty_entry(aoty: dict[str, object]) -> str | None:
    """ "critics 86 (41 reviews) · users 8.2 (1,204 ratings) · must hear" from the brief's AOTY facts."""
    parts = []
    if aoty.get("critic_score") is not None:
        parts.append(f"critics {aoty['critic_score']}"
                     + (f" ({aoty['critic_reviews']:,} reviews)" if aoty.get("critic_reviews") else ""))
    if aoty.get("user_score") is not None:
        parts.append(f"users {aoty['user_score']}"
                     + (f" ({aoty['user_ratings']:,} ratings)" if aoty.get("user_ratings") else ""))
    if aoty.get("must_hear"):
        parts.append("must hear")
    return " · ".join(parts) or None


def why_text(rec: Recommendation) -> str:
    """ "Why?" as a bold title and one bullet per kind of stored evidence (see the module docstring).

    Names and tags are Markdown-escaped: they come from the catalogue and Last.fm."""
    facts = recommendation_brief(rec).facts
    entries = [
        ("Close to what you play", _names(facts.get("because_you_listen_to"))),
        ("Tags you share", _names(facts.get("matching_tags"))),
        ("Similar on Last.fm to", _names(facts.get("similar_on_lastfm_to"))),
        ("What lifted it", ", ".join(lifted_by(rec.evidence.sources))),
        ("Listeners on Last.fm", facts.get("artist_listeners_on_lastfm_in_words")),
        ("albumoftheyear.org", aoty_entry(facts.get("aoty") or {})),
    ]
    bullets = [f"• {label}: {value}" for label, value in entries if value]
    note = rec.evidence.note
    if note and note.startswith(COLD_START_NOTE):
        bullets.append("• You have few listens I can use yet, so tags and popularity count for more.")
    elif note:
        bullets.append(f"• {literal(note[:1].upper() + note[1:])}")
    if not bullets:
        bullets.append("• I didn't keep the details of this pick.")
    title = literal(rec.name) + (f" by {literal(rec.artist)}" if rec.artist else "")
    return "\n".join([f"**Why {title}?**", *bullets])


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
        """The evidence of a shown item as stored when it was shown (owner only), as a short list."""
        async with self.services.session() as session:
            row = await RecommendationRepository(session).shown(shown_id)
        shown = owned_row(row, asker, SHOWN_GONE, EXPLANATION_NOT_YOURS)
        return why_text(recommendation_from_json(shown.item_kind, shown.item_id, shown.evidence))
