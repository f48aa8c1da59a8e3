"""RP3beta (Paudel et al. 2017): a 3-step random walk user -> item -> user -> item, popularity-damped.

W[i, j] = Σ_u P(u|i)^α P(j|u)^α / pop(j)^β, keeping the top-k per item. It is sparse, so unlike EASE
it covers every item, and β trades accuracy for long-tail reach: a cheap complement to EASE.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from core.recommender.interactions import Interactions
from core.recommender.models._sparse import blocked_top_k_product, row_normalise
from core.recommender.models.base import binary_columns_popularity
from core.recommender.models.item_item import ItemItemModel
from core.recommender.weighting import apply_weighting


class RP3beta(ItemItemModel):
    name = "RP3beta"

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, k: int = 200, weighting: str = "binary") -> None:
        self.alpha = alpha
        self.beta = beta
        self.k = k
        self.weighting = weighting
        self.sim = sp.csr_matrix((0, 0), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta, "k": self.k, "weighting": self.weighting}

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        x = apply_weighting(data.matrix, self.weighting)
        p_ui = row_normalise(x)
        p_iu = row_normalise(sp.csr_matrix(x.T))
        if self.alpha != 1.0:
            p_ui.data **= self.alpha
            p_iu.data **= self.alpha
        popularity = binary_columns_popularity(data.matrix)
        damp = np.power(np.maximum(popularity, 1.0), -self.beta).astype(np.float32)
        self.sim = blocked_top_k_product(p_iu, p_ui, self.k, scale_cols=damp)
        return self
