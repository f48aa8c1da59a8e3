"""MostPop: the baseline every model must beat, and the prior that fills cold starts."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from core.recommender.artifacts import ArtifactReader, ArtifactWriter
from core.recommender.interactions import Interactions
from core.recommender.models._row import UserRow
from core.recommender.models.base import Model, binary_columns_popularity
from core.recommender.models.terms import ScoresOnly


class MostPop(Model):
    """Score = number of training users who know the item, the same for everyone."""

    name = "MostPop"

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.float32)

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        self.counts = binary_columns_popularity(data.matrix).astype(np.float32)
        return self

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.counts, (rows.shape[0], self.n_items)).copy()

    def row_terms(self, row: UserRow) -> ScoresOnly:
        return ScoresOnly(np.broadcast_to(self.counts, (self.n_items,)))

    def row_independent_scores(self) -> np.ndarray:
        return self.counts

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        # Popularity has no notion of similarity; say so with zeros rather than a popularity list.
        return np.zeros((len(items), self.n_items), dtype=np.float32)

    def write_state(self, writer: ArtifactWriter, prefix: str) -> None:
        writer.put(f"{prefix}counts", self.counts)

    def read_state(self, reader: ArtifactReader, prefix: str) -> None:
        self.counts = reader.get(f"{prefix}counts").astype(np.float32)
