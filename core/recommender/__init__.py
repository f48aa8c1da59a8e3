"""The recommendation engine: interactions -> models -> tuned hybrid -> controlled, explained lists.

Public entry points (see README.md in this folder):
- `Interactions.from_arrays(users, items, play_counts, last_played_at, …)`: build from DB rows.
- `ItemTags.from_sources(items, {"lastfm": …, "aoty": …})`: tags aligned to the item vocabulary.
- `RecommenderEngine.train(…)`, `.recommend(UserHistory, RecommendRequest)`, `.similar(item_id)`,
  `.save(path)`, `RecommenderEngine.load(path)`.
"""

from __future__ import annotations

from core.recommender.engine import RecommenderEngine, default_artifact_dir
from core.recommender.interactions import Interactions, Vocabulary, recency_weight
from core.recommender.requests import RecommendRequest, UserHistory
from core.recommender.tags import ItemTags

__all__ = ["Interactions", "ItemTags", "RecommendRequest", "RecommenderEngine", "UserHistory", "Vocabulary",
           "default_artifact_dir", "recency_weight"]
