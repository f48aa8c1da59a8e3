"""Collaborative filtering with scikit-learn NMF, with fold-in for users outside the trained matrix.

X ≈ W H with non-negative factors. A user's row — including one who joined after training or just
played something new — is folded in by solving the same least-squares problem the fit solved for W,
``min_w ||x - w H||² s.t. w >= 0``, with H fixed. Writing it via the Cholesky factor L of H Hᵀ
turns it into a k x k NNLS (``min ||Lᵀw - L⁻¹ H xᵀ||``), microseconds per user.

Like EASE it models items known by >= `min_users` users: on HetRec that is 4.6k of 17.6k artists,
fits in under a second instead of 30 s, and scores better (one-user items are noise to a
factorisation).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Self

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp
from scipy.optimize import nnls
from sklearn.decomposition import NMF as SklearnNMF
from sklearn.exceptions import ConvergenceWarning

from core.recommender.interactions import Interactions
from core.recommender.models._row import UserRow, sequential_rows_sum
from core.recommender.models.base import Model, StateArray, binary_columns_popularity
from core.recommender.models.terms import ScoresOnly
from core.recommender.weighting import apply_weighting


class NMF(Model):
    name = "NMF"
    state: ClassVar[dict[str, StateArray]] = {"item_factors": StateArray(np.float64), "items": StateArray(np.int64)}

    def __init__(self, factors: int = 16, weighting: str = "log1p", max_iter: int = 50, l2: float = 0.0,
                 seed: int = 0, min_users: int = 3, max_items: int | None = None) -> None:
        self.factors = factors
        self.min_users = min_users
        self.max_items = max_items  # large data: only the most popular items (`components.plan_for`)
        self.weighting = weighting
        self.max_iter = max_iter
        self.l2 = l2
        self.seed = seed
        self.item_factors = np.zeros((0, 0), dtype=np.float64)  # H: factors x modelled items
        self.items = np.zeros(0, dtype=np.int64)  # full-vocabulary index of each modelled item
        self._chol = np.zeros((0, 0))

    def params(self) -> dict[str, Any]:
        return {"factors": self.factors, "weighting": self.weighting, "max_iter": self.max_iter,
                "l2": self.l2, "seed": self.seed,
                "min_users": self.min_users, "max_items": self.max_items}

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        popularity = binary_columns_popularity(data.matrix)
        self.items = np.flatnonzero(popularity >= self.min_users).astype(np.int64)
        if self.max_items is not None and len(self.items) > self.max_items:
            self.items = np.sort(np.argsort(-popularity, kind="stable")[: self.max_items]).astype(np.int64)
        if len(self.items) == 0:
            self.items = np.arange(data.n_items, dtype=np.int64)
        x = apply_weighting(data.matrix, self.weighting)[:, self.items].astype(np.float64)
        factors = max(1, min(self.factors, *x.shape))
        model = SklearnNMF(n_components=factors, init="nndsvda", solver="cd", max_iter=self.max_iter,
                           alpha_W=self.l2, alpha_H="same", l1_ratio=0.0, random_state=self.seed)
        # The reconstruction error sklearn reports after fitting (unused here) can round to a tiny
        # negative number on very small matrices and warn from its sqrt; the factors are unaffected.
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x)
        self.item_factors = np.asarray(model.components_, dtype=np.float64)
        self._prepare()
        return self

    def _prepare(self) -> None:
        gram = self.item_factors @ self.item_factors.T
        gram[np.diag_indices_from(gram)] += 1e-6 * max(1.0, float(np.trace(gram)) / max(1, len(gram)))
        self._chol = sl.cholesky(gram, lower=True)

    def fold_in(self, rows: sp.csr_matrix) -> np.ndarray:
        """User factors (len(rows) x factors) for arbitrary rows, by NNLS against the fixed H."""
        x = apply_weighting(rows, self.weighting)[:, self.items].astype(np.float64)
        rhs = np.asarray(x @ self.item_factors.T)  # x Hᵀ, cheap because x is sparse
        out = np.zeros((rows.shape[0], self.item_factors.shape[0]))
        lt = self._chol.T
        for r in range(rows.shape[0]):
            if x.indptr[r + 1] == x.indptr[r]:
                continue
            target = sl.solve_triangular(self._chol, rhs[r], lower=True)
            out[r], _ = nnls(lt, target)
        return out

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        out = np.zeros((rows.shape[0], self.n_items), dtype=np.float32)
        out[:, self.items] = self.fold_in(rows) @ self.item_factors
        return out

    def row_terms(self, row: UserRow) -> ScoresOnly:
        """`score` for one row: the same fold-in, with x Hᵀ accumulated as SciPy does it. A
        factorisation mixes every history item into each factor, so it names no driving items."""
        values = row.weighted(self.weighting)
        positions = np.minimum(np.searchsorted(self.items, row.indices), len(self.items) - 1)
        modelled = self.items[positions] == row.indices
        factors = np.zeros((1, self.item_factors.shape[0]))
        if modelled.any():
            cached = self.__dict__.get("_factors_t")
            if cached is None or cached[0] is not self.item_factors:  # refitted or reloaded
                cached = self._factors_t = (self.item_factors, np.ascontiguousarray(self.item_factors.T))
            transposed = cached[1]
            rhs = sequential_rows_sum(values[modelled].astype(np.float64), transposed, positions[modelled])
            target = sl.solve_triangular(self._chol, rhs, lower=True)
            factors[0], _ = nnls(self._chol.T, target)
        out = np.zeros(self.n_items, dtype=np.float32)
        out[self.items] = (factors @ self.item_factors)[0]
        return ScoresOnly(out)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        h = self.item_factors
        norms = np.linalg.norm(h, axis=0) + 1e-12
        out = np.zeros((len(items), self.n_items), dtype=np.float32)
        positions = np.searchsorted(self.items, items)
        positions = np.minimum(positions, len(self.items) - 1)
        modelled = self.items[positions] == items
        sims = (h[:, positions].T @ h) / (norms[positions, None] * norms[None, :])
        out[:, self.items] = np.where(modelled[:, None], sims, 0.0)
        return out

