"""MostPop: the baseline every model must beat, and the prior that fills cold starts."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np

from core.recommender.interactions import Interactions
from core.recommender.models.base import StateArray, binary_columns_popularity
from core.recommender.models.prior import PriorModel


class MostPop(PriorModel):
    """Score = number of training users who know the item, the same for everyone."""

    name = "MostPop"
    state: ClassVar[dict[str, StateArray]] = {"counts": StateArray(np.float32)}

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.float32)

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        self.counts = binary_columns_popularity(data.matrix).astype(np.float32)
        return self

    def row_independent_scores(self) -> np.ndarray:
        return self.counts
