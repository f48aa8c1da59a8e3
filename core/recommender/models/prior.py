"""Serving shared by models whose scores ignore the user's row: a fixed per-item prior (MostPop,
the AOTY quality prior). Subclasses only learn the vector and name it in `row_independent_scores`.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import scipy.sparse as sp

from core.recommender.models._row import UserRow
from core.recommender.models.base import Model
from core.recommender.models.terms import ScoresOnly


class PriorModel(Model):
    """Every row gets the same scores: `row_independent_scores()`, one float32 value per item."""

    @abstractmethod
    def row_independent_scores(self) -> np.ndarray:
        """The per-item prior (length n_items, float32)."""

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.row_independent_scores(), (rows.shape[0], self.n_items)).copy()

    def row_terms(self, row: UserRow) -> ScoresOnly:
        return ScoresOnly(np.broadcast_to(self.row_independent_scores(), (self.n_items,)))

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        # A prior has no notion of similarity; say so with zeros rather than a popularity list.
        return np.zeros((len(items), self.n_items), dtype=np.float32)
