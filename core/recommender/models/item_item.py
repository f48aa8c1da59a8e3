"""Serving shared by models that are a sparse item-item matrix `sim` (ItemKNN, RP3beta).

Scores are the user's weighted history times `sim`; evidence for an item is each history item's
weighted similarity to it: the terms of that same product (`GatherTerms`). Subclasses only learn `sim` (and say which weighting they apply).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from core.recommender.models._row import UserRow, gather
from core.recommender.models._sparse import dense_rows
from core.recommender.models.base import Model, StateArray
from core.recommender.models.terms import GatherTerms
from core.recommender.weighting import apply_weighting


class ItemItemModel(Model):
    """A model whose whole state is `sim` (items x items, float32 CSR) and a history `weighting`."""

    sim: sp.csr_matrix
    weighting: str
    state: ClassVar[dict[str, StateArray]] = {"sim": StateArray(np.float32, sparse=True)}

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        return dense_rows(apply_weighting(rows, self.weighting) @ self.sim)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return dense_rows(self.sim[np.asarray(items)])

    def row_terms(self, row: UserRow) -> GatherTerms:
        return GatherTerms(row.indices, row.weighted(self.weighting), gather(row, self.sim, self.weighting),
                           self.sim.shape[1])
