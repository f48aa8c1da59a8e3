"""EASE (Steck 2019): a closed-form linear item-item model, the strongest single model on HetRec.

B = I - P / diag(P) with P = (XᵀX + λI)⁻¹ and a zero diagonal, so a user's scores are their row
times B. The inverse is dense and cubic in the number of items, so it is restricted to items known
by at least `min_users` training users (on HetRec 4.6k of 17.6k artists; most artists are known by
one user and carry no co-occurrence signal anyway).

Item tags, when given, enter the Gram matrix as weighted pseudo-users (side information, as in
"collective" EASE variants): XᵀX + t·VVᵀ with V the items' TF-IDF tag vectors. Items outside score 0 here and are reached by
the content and neighbourhood components of the hybrid.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp

from core.recommender.interactions import Interactions
from core.recommender.models._row import UserRow, weighted_rows
from core.recommender.models.base import Model, StateArray, binary_columns_popularity
from core.recommender.models.terms import DenseTerms
from core.recommender.tags import ItemTags, tfidf_vectors
from core.recommender.weighting import apply_weighting


def _spd_inverse(gram: np.ndarray, block: int = 2048) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix, in place (`gram` is consumed).

    Cholesky (half the work of inv()), then the upper triangle LAPACK returns is mirrored into
    the lower one block by block: no second n x n temporary, which at 12,000 items is 1.1 GB.
    """
    potrf, potri = sl.lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    # Symmetric: a C-ordered Gram matrix's transpose is itself in Fortran order, which LAPACK
    # overwrites in place instead of copying first.
    chol, info = potrf(gram.T if gram.flags.c_contiguous else gram, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE Gram matrix is not positive definite (info={info})")
    inv, info = potri(chol, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE Gram matrix is singular (info={info})")
    n = len(inv)
    for start in range(0, n, block):
        stop = min(n, start + block)
        inv[start:stop, :start] = inv[:start, start:stop].T
        upper = np.triu(inv[start:stop, start:stop])
        inv[start:stop, start:stop] = upper + np.triu(upper, 1).T
    return inv


class EASE(Model):
    """Embarrassingly shallow autoencoder restricted to items with >= `min_users` users."""

    name = "EASE"
    state: ClassVar[dict[str, StateArray]] = {"items": StateArray(np.int64), "weights": StateArray(np.float32)}

    def __init__(self, l2: float = 100.0, weighting: str = "rank", min_users: int = 3,
                 max_items: int = 12000, tags: ItemTags | None = None, tag_weight: float = 30.0,
                 precision: str = "float64") -> None:
        self.l2 = l2
        self.tags = tags
        self.tag_weight = tag_weight
        self.weighting = weighting
        self.min_users = min_users
        self.max_items = max_items  # memory guard: the dense inverse is max_items² floats
        # "float32" halves the memory and time of the solve (large data, `components.plan_for`).
        self.precision = precision
        self.items = np.zeros(0, dtype=np.int64)  # full-vocabulary index of each modelled item
        self.weights = np.zeros((0, 0), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return {"l2": self.l2, "weighting": self.weighting, "min_users": self.min_users,
                "max_items": self.max_items, "tag_weight": self.tag_weight, "precision": self.precision}

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        popularity = binary_columns_popularity(data.matrix)
        items = np.flatnonzero(popularity >= self.min_users)
        if len(items) > self.max_items:
            items = np.sort(np.argsort(-popularity, kind="stable")[: self.max_items])
        self.items = items.astype(np.int64)
        dtype = np.float32 if self.precision == "float32" else np.float64
        x = apply_weighting(data.matrix, self.weighting)[:, self.items].tocsc()
        gram = (x.T @ x).toarray().astype(dtype, copy=False)
        if self.tags is not None and self.tag_weight > 0 and self.tags.matrix.shape[1]:
            # Tags as extra "pseudo-users": items sharing tags co-occur a little even when few
            # people know both: validation NDCG@10 0.1783 -> 0.1843 on HetRec (`sonance eval tune`,
            # validation carved from the training rows of split seeds 0-2).
            vectors = tfidf_vectors(self.tags)[self.items]
            gram += (self.tag_weight * (vectors @ vectors.T).toarray()).astype(dtype, copy=False)
        gram[np.diag_indices_from(gram)] += self.l2
        # LAPACK hands back Fortran order; the inverse is symmetric, so its transpose is the same
        # numbers in C order, which is what row-wise scoring wants (in Fortran order every product
        # with the weights copied all 12,000² of them first: 4.8 s per 200 users at 300k items).
        inv = _spd_inverse(gram).T
        del gram
        diag = np.diag(inv).copy()
        inv /= -diag[np.newaxis, :]
        np.fill_diagonal(inv, 0.0)
        self.weights = np.ascontiguousarray(inv, dtype=np.float32)
        return self

    def _restricted(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        return apply_weighting(rows, self.weighting)[:, self.items]

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        out = np.zeros((rows.shape[0], self.n_items), dtype=np.float32)
        if len(self.items):
            out[:, self.items] = np.asarray(self._restricted(rows) @ self.weights, dtype=np.float32)
        return out

    def row_terms(self, row: UserRow) -> DenseTerms:
        """Each modelled history item's weighted row of B: the scores are their sum, the evidence
        their columns at the chosen items (`score` computes the same sum through SciPy)."""
        if len(self.items) == 0:
            return DenseTerms(self.items, self.items, np.zeros((0, 0), dtype=np.float32), self.n_items)
        positions = np.minimum(np.searchsorted(self.items, row.indices), len(self.items) - 1)
        modelled = self.items[positions] == row.indices
        positions = positions[modelled]
        values = row.weighted(self.weighting)[modelled]
        return DenseTerms(self.items[positions], self.items, weighted_rows(values, self.weights, positions),
                          self.n_items)
