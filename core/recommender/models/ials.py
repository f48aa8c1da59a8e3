"""Implicit ALS (Hu, Koren & Volinsky 2008): latent factors fitted to confidence-weighted preferences.

Every (user, item) cell is a preference p = 1 if the user plays the item, else 0, trusted with
confidence 1 + α·w (w = the user's weighted strength, per-user rank by default). Unlike NMF, the
zeros are fitted too (with confidence 1), so the factors learn what a listener does *not* play:
on HetRec it scores validation NDCG@10 0.178 alone (NMF 0.130), and it adds what EASE and the
neighbourhood models miss (hybrid 0.1901 -> 0.1942, split seeds 0-2, validation carved from train).

Both alternating steps, and the fold-in of any user row at serving time, solve for each row
``(YᵀY + Yᵢᵀ diag(α·wᵢ) Yᵢ + λI) x = Yᵢᵀ (1 + α·wᵢ)`` where Yᵢ are the factors of the row's items:
YᵀY is shared by all rows, so each row costs one f x f solve over its own items only. Like EASE
and NMF it models items known by >= `min_users` users.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from core.recommender.interactions import Interactions
from core.recommender.models.base import Model, StateArray, binary_columns_popularity
from core.recommender.weighting import apply_weighting


def solve_rows(confidence: sp.csr_matrix, fixed: np.ndarray, gram: np.ndarray, reg: float) -> np.ndarray:
    """Least-squares factors of every row of `confidence` (α·w per stored cell) against `fixed`
    (one row of factors per column of `confidence`); `gram` is fixedᵀ·fixed. Empty rows get zeros."""
    n_factors = fixed.shape[1]
    base = gram + reg * np.eye(n_factors)
    out = np.zeros((confidence.shape[0], n_factors))
    indptr, indices, data = confidence.indptr, confidence.indices, confidence.data
    for row in range(confidence.shape[0]):
        start, end = indptr[row], indptr[row + 1]
        if start == end:
            continue
        factors = fixed[indices[start:end]]
        weights = data[start:end]
        out[row] = np.linalg.solve(base + (factors.T * weights) @ factors, factors.T @ (1.0 + weights))
    return out


class IALS(Model):
    """Implicit-feedback matrix factorisation with per-row fold-in (any row, trained or not)."""

    name = "IALS"
    state: ClassVar[dict[str, StateArray]] = {"item_factors": StateArray(np.float64), "items": StateArray(np.int64)}

    def __init__(self, factors: int = 64, reg: float = 20.0, alpha: float = 5.0, iterations: int = 8,
                 weighting: str = "rank", min_users: int = 3, seed: int = 0) -> None:
        self.factors = factors
        self.reg = reg
        self.alpha = alpha
        self.iterations = iterations
        self.weighting = weighting
        self.min_users = min_users
        self.seed = seed
        self.item_factors = np.zeros((0, 0), dtype=np.float64)  # modelled items x factors
        self.items = np.zeros(0, dtype=np.int64)  # full-vocabulary index of each modelled item
        self._gram = np.zeros((0, 0))

    def params(self) -> dict[str, Any]:
        return {"factors": self.factors, "reg": self.reg, "alpha": self.alpha, "iterations": self.iterations,
                "weighting": self.weighting, "min_users": self.min_users, "seed": self.seed}

    def _confidence(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        """α·w over the modelled items (the "1 +" of the confidence lives in `solve_rows`)."""
        x = apply_weighting(rows, self.weighting)[:, self.items].tocsr().astype(np.float64)
        x.data *= self.alpha
        return x

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        self.items = np.flatnonzero(binary_columns_popularity(data.matrix) >= self.min_users).astype(np.int64)
        if len(self.items) == 0:
            self.items = np.arange(data.n_items, dtype=np.int64)
        users = self._confidence(data.matrix)
        items = sp.csr_matrix(users.T)
        rng = np.random.default_rng(self.seed)
        factors = max(1, min(self.factors, *users.shape))
        item_factors = rng.normal(0.0, 0.01, (len(self.items), factors))
        for _ in range(self.iterations):
            user_factors = solve_rows(users, item_factors, item_factors.T @ item_factors, self.reg)
            item_factors = solve_rows(items, user_factors, user_factors.T @ user_factors, self.reg)
        self.item_factors = item_factors
        self._prepare()
        return self

    def _prepare(self) -> None:
        self._gram = self.item_factors.T @ self.item_factors

    def fold_in(self, rows: sp.csr_matrix) -> np.ndarray:
        """User factors (len(rows) x factors) for arbitrary rows, the item factors fixed."""
        return solve_rows(self._confidence(sp.csr_matrix(rows)), self.item_factors, self._gram, self.reg)

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        out = np.zeros((rows.shape[0], self.n_items), dtype=np.float32)
        if len(self.items):
            out[:, self.items] = self.fold_in(rows) @ self.item_factors.T
        return out
