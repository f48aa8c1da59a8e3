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
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from core.domain import AotyFacts
from core.recommender.artifacts import ArtifactReader, ArtifactWriter
from core.recommender.interactions import Interactions, Vocabulary
from core.recommender.models._row import UserRow, gather
from core.recommender.models._sparse import dense_rows
from core.recommender.models.base import Model
from core.recommender.models.terms import GatherTerms, ScoresOnly
from core.recommender.weighting import apply_weighting


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


class QualityPrior(Model):
    """Same score for every user: the shrunk AOTY quality of each album."""

    name = "Quality"

    def __init__(self, quality: np.ndarray | None = None) -> None:
        self.quality = np.zeros(0, dtype=np.float32) if quality is None else np.asarray(quality, np.float32)

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        if len(self.quality) != data.n_items:
            self.quality = np.full(data.n_items, 0.5, dtype=np.float32)
        return self

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.quality, (rows.shape[0], self.n_items)).copy()

    def row_terms(self, row: UserRow) -> ScoresOnly:
        return ScoresOnly(np.broadcast_to(self.quality, (self.n_items,)))

    def row_independent_scores(self) -> np.ndarray:
        return self.quality

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return np.zeros((len(items), self.n_items), dtype=np.float32)

    def write_state(self, writer: ArtifactWriter, prefix: str) -> None:
        writer.put(f"{prefix}quality", self.quality)

    def read_state(self, reader: ArtifactReader, prefix: str) -> None:
        self.quality = reader.get(f"{prefix}quality").astype(np.float32)


class ItemLinks(Model):
    """Scores from an external item-item link matrix (e.g. AOTY similar albums), symmetrised."""

    name = "Links"

    def __init__(self, links: sp.spmatrix | None = None, weighting: str = "log1p") -> None:
        self.links = sp.csr_matrix(links, dtype=np.float32) if links is not None else None
        self.weighting = weighting

    def params(self) -> dict[str, Any]:
        return {"weighting": self.weighting}

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        if self.links is None or self.links.shape != (data.n_items, data.n_items):
            self.links = sp.csr_matrix((data.n_items, data.n_items), dtype=np.float32)
        self.links = sp.csr_matrix(self.links.maximum(self.links.T), dtype=np.float32)
        self.links.setdiag(0)
        self.links.eliminate_zeros()
        return self

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        return dense_rows(apply_weighting(rows, self.weighting) @ self.links)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return dense_rows(self.links[np.asarray(items)])

    def row_terms(self, row: UserRow) -> GatherTerms:
        return GatherTerms(row.indices, row.weighted(self.weighting), gather(row, self.links, self.weighting),
                           self.links.shape[1])

    def write_state(self, writer: ArtifactWriter, prefix: str) -> None:
        writer.put_sparse(f"{prefix}links", self.links)

    def read_state(self, reader: ArtifactReader, prefix: str) -> None:
        self.links = reader.get_sparse(f"{prefix}links").astype(np.float32)
