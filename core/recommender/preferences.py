"""/tune storage: a member's free-text steering, parsed once, merged with what they said before.

The parsed `Preferences` are stored as JSON in the user's settings and read on every request; the
request turns them into steering fields of `RecommendRequest` (boosts, avoids, discovery), and the
engine applies them. Reading is tolerant of older or partial rows: preferences only steer, so a
malformed row degrades to "no preference" rather than failing a request.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from core.asker import Asker
from core.db.repositories import UserRepository
from core.db.repositories.recommendations import RecommendationRepository
from core.errors import InvalidInput
from core.explain.types import Preferences

if TYPE_CHECKING:
    from core.services import Services

CACHE_NAMESPACE = "recs"
RESET_WORDS = ("reset", "clear")


def preferences_to_json(prefs: Preferences) -> dict[str, Any]:
    data = asdict(prefs)
    data["boost_tags"], data["avoid_tags"] = list(prefs.boost_tags), list(prefs.avoid_tags)
    data["era"] = list(prefs.era) if prefs.era else None
    return data


def preferences_from_stored(data: dict[str, Any] | None) -> Preferences:
    """Stored JSON -> Preferences; tolerant of older or partial rows (they only steer, never fail)."""
    if not data:
        return Preferences()
    era = data.get("era")
    return Preferences(
        boost_tags=tuple(str(t) for t in data.get("boost_tags") or ()),
        avoid_tags=tuple(str(t) for t in data.get("avoid_tags") or ()),
        era=(int(era[0]), int(era[1])) if isinstance(era, list | tuple) and len(era) == 2 else None,
        era_bias=data.get("era_bias") if data.get("era_bias") in ("older", "newer") else None,
        discovery_delta=float(data["discovery_delta"]) if data.get("discovery_delta") is not None else None,
        discovery=float(data["discovery"]) if data.get("discovery") is not None else None)


def merge_preferences(old: Preferences, new: Preferences) -> Preferences:
    """A new /tune refines the old one: "more X" cancels an earlier "less X" and vice versa."""
    boost = [t for t in old.boost_tags if t not in new.avoid_tags] + list(new.boost_tags)
    avoid = [t for t in old.avoid_tags if t not in new.boost_tags] + list(new.avoid_tags)
    return Preferences(
        boost_tags=tuple(dict.fromkeys(boost)), avoid_tags=tuple(dict.fromkeys(avoid)),
        era=new.era or old.era, era_bias=new.era_bias or old.era_bias,
        discovery_delta=new.discovery_delta if new.discovery_delta is not None else old.discovery_delta,
        discovery=new.discovery if new.discovery is not None else old.discovery)


class PreferenceStore:
    """Parses, merges and stores /tune text; clears the member's cached lists afterwards."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def update(self, asker: Asker, text: str) -> Preferences:
        """Parse free text ("less metal, more 90s shoegaze") and store it; later /tune calls refine it."""
        text = (text or "").strip()
        if not text:
            raise InvalidInput("Tell me what to change, e.g. “less metal, more 90s shoegaze”.")
        reset = text.lower() in RESET_WORDS
        parsed = Preferences()
        if not reset:
            async with self.services.session() as session:
                known = await RecommendationRepository(session).tag_names()
            result = await self.services.explainer.preferences(text, known_tags=known, user_id=asker.user_id)
            parsed = result.preferences
            if parsed.is_empty:
                raise InvalidInput("I couldn't find anything to change in that. Try e.g. “more shoegaze, "
                                   "less metal” or “deeper cuts”.")
        async with self.services.session() as session:
            users = UserRepository(session)
            merged = parsed
            if not reset:
                current = preferences_from_stored((await users.settings(asker.user_id)).preferences)
                merged = merge_preferences(current, parsed)
            await users.update_settings(asker.user_id, preferences=preferences_to_json(merged))
        await self.services.cache.delete_matching(CACHE_NAMESPACE, f"u{asker.user_id}:")
        return merged
