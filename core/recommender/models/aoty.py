"""Album signals from albumoftheyear.org: a quality prior and similar-album links.

Quality: an album with a 92 user score from 4 ratings is not better than an 85 from 20,000. Each
score is shrunk towards the catalogue mean by its rating count (a Bayesian average,
``(n·s + m·μ) / (n + m)`` with pseudo-count m), then user and critic views are averaged. The hybrid
weighs it like any component; the discovery dial can lean on it when it pushes away from popularity
("deep cuts, but good ones").

Links: AOTY's "similar albums" form a sparse item-item matrix; scored like a neighbourhood model, so
an album linked from several of the user's favourites rises, and the link is shown as evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from core.domain import AotyFacts
from core.recommender.interactions import Interactions, Vocabulary
from core.recommender.models.base import StateArray
from core.recommender.models.item_item import ItemItemModel
from core.recommender.models.prior import PriorModel


def bayesian_average(scores: np.ndarray, counts: np.ndarray, pseudo_count: float) -> np.ndarray:
    """Shrink each score towards the count-weighted mean of known scores; NaN scores become the mean."""
    known = np.isfinite(scores) & (counts > 0)
    if not known.any():
        return np.full(len(scores), np.nan)
    mean = float(np.average(scores[known], weights=counts[known]))
    n = np.where(known, counts, 0.0)
    s = np.where(known, scores, mean)
    return (n * s + pseudo_count * mean) / (n + pseudo_count)


def quality_from_facts(items: Vocabulary, facts: Mapping[object, AotyFacts], *, user_pseudo_count: float = 50.0,
                       critic_pseudo_count: float = 5.0) -> np.ndarray:
    """Per-item quality in 0..1 (item vocabulary order); items without facts get the neutral mean."""
    n = len(items)
    user = np.full(n, np.nan)
    user_n = np.zeros(n)
    critic = np.full(n, np.nan)
    critic_n = np.zeros(n)
    for item_id, fact in facts.items():
        row = items.get(item_id)
        if row < 0:
            continue
        if fact.user_score is not None:
            user[row], user_n[row] = fact.user_score, fact.user_count or 0
        if fact.critic_score is not None:
            critic[row], critic_n[row] = fact.critic_score, fact.critic_count or 0
    parts = [p for p in (bayesian_average(user, user_n, user_pseudo_count),
                         bayesian_average(critic, critic_n, critic_pseudo_count)) if np.isfinite(p).any()]
    if not parts:
        return np.full(n, 0.5, dtype=np.float32)
    return (np.mean(parts, axis=0) / 100.0).astype(np.float32)


class QualityPrior(PriorModel):
    """Same score for every user: the shrunk AOTY quality of each album."""

    name = "Quality"
    state: ClassVar[dict[str, StateArray]] = {"quality": StateArray(np.float32)}

    def __init__(self, quality: np.ndarray | None = None) -> None:
        self.quality = np.zeros(0, dtype=np.float32) if quality is None else np.asarray(quality, np.float32)

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        if len(self.quality) != data.n_items:
            self.quality = np.full(data.n_items, 0.5, dtype=np.float32)
        return self

    def row_independent_scores(self) -> np.ndarray:
        return self.quality


class ItemLinks(ItemItemModel):
    """Scores from an external item-item link matrix (e.g. AOTY similar albums), symmetrised: after
    `fit` it is `sim` of an item-item model, stored under the artifact key "links" it always had."""

    name = "Links"
    state: ClassVar[dict[str, StateArray]] = {"links": StateArray(np.float32, sparse=True, attribute="sim")}

    def __init__(self, links: sp.spmatrix | None = None, weighting: str = "log1p") -> None:
        self.links = sp.csr_matrix(links, dtype=np.float32) if links is not None else None
        self.weighting = weighting
        self.sim = sp.csr_matrix((0, 0), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return {"weighting": self.weighting}

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        if self.links is None or self.links.shape != (data.n_items, data.n_items):
            self.links = sp.csr_matrix((data.n_items, data.n_items), dtype=np.float32)
        self.links = sp.csr_matrix(self.links.maximum(self.links.T), dtype=np.float32)
        self.links.setdiag(0)
        self.links.eliminate_zeros()
        self.sim = self.links
        return self
