"""ItemKNN: cosine item-item neighbourhood, the classic transparent baseline.

Its similarity matrix doubles as the engine's notion of "near neighbours" for feedback (a
thumbs-down pushes neighbours down) and as evidence ("because you listen to X").
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from core.recommender.interactions import Interactions
from core.recommender.models._sparse import blocked_top_k_product
from core.recommender.models.item_item import ItemItemModel
from core.recommender.weighting import apply_weighting


class ItemKNN(ItemItemModel):
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
