"""ItemKNN: cosine item-item neighbourhood, the classic transparent baseline.

Its similarity matrix doubles as the engine's notion of "near neighbours" for feedback (a
thumbs-down pushes neighbours down) and as evidence ("because you listen to X").
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from core.recommender.artifacts import ArtifactReader, ArtifactWriter
from core.recommender.interactions import Interactions
from core.recommender.models._row import UserRow, gather
from core.recommender.models._sparse import blocked_top_k_product, dense_rows
from core.recommender.models.base import Model
from core.recommender.weighting import apply_weighting


class ItemKNN(Model):
    """sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink), top-k neighbours per item."""

    name = "ItemKNN"

    def __init__(self, k: int = 100, shrink: float = 10.0, weighting: str = "binary") -> None:
        self.k = k
        self.shrink = shrink
        self.weighting = weighting
        self.sim = sp.csr_matrix((0, 0), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "shrink": self.shrink, "weighting": self.weighting}

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        x = apply_weighting(data.matrix, "binary")
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel()).astype(np.float32)
        self.sim = blocked_top_k_product(sp.csr_matrix(x.T), x, self.k, scale_rows=norms, scale_cols=norms,
                                         shrink=self.shrink)
        return self

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        return dense_rows(apply_weighting(rows, self.weighting) @ self.sim)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return dense_rows(self.sim[np.asarray(items)])

    def score_row(self, row: UserRow) -> np.ndarray:
        return gather(row, self.sim, self.weighting).dense(self.sim.shape[1])

    def contributions_row(self, row: UserRow, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        block = gather(row, self.sim, self.weighting).block(np.asarray(items), row.nnz)
        return row.indices, row.weighted(self.weighting)[:, None] * block

    def contributions(self, row: sp.csr_matrix, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weighted = apply_weighting(row, self.weighting)
        block = dense_rows(self.sim[weighted.indices][:, np.asarray(items)])
        return weighted.indices, weighted.data[:, None] * block

    def write_state(self, writer: ArtifactWriter, prefix: str) -> None:
        writer.put_sparse(f"{prefix}sim", self.sim)

    def read_state(self, reader: ArtifactReader, prefix: str) -> None:
        self.sim = reader.get_sparse(f"{prefix}sim").astype(np.float32)
