"""One user's row as plain arrays: the serving fast path shared by the engine and the models.

`Model.score(rows)` takes sparse matrices, which is right for batches (training, evaluation) but
costs SciPy a few dozen small-matrix constructions per request (index-dtype checks, format checks),
far more than the arithmetic of one row. `UserRow` holds the row's sorted column indices and float32
strengths, caches each weighting of them, and is a per-request scratch space so several components
(scores, then evidence) reuse one gather of the same neighbourhood rows.

A served row is scored through `Model.row_terms` (core/recommender/models/terms.py), whose scores
must equal the batch `Model.score` *bit for bit*: they replay SciPy's accumulation order (csr_matmat
and csr_matvecs add each history item's contribution in turn, in float32) with `np.add.at` or an
explicit loop, never with BLAS or pairwise sums, which round differently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from core.recommender.weighting import WEIGHTINGS


class UserRow:
    """A 1 x n_items row with strictly increasing `indices` and float32 `data`."""

    __slots__ = ("_csr", "_weighted", "cache", "data", "indices", "n_items")

    def __init__(self, indices: np.ndarray, data: np.ndarray, n_items: int) -> None:
        self.indices = indices
        self.data = data
        self.n_items = n_items
        self.cache: dict[Any, Any] = {}  # per-request scratch, keyed by the caller (model + matrix)
        self._weighted: dict[str, np.ndarray] = {}
        self._csr: sp.csr_matrix | None = None

    @classmethod
    def from_csr(cls, row: sp.spmatrix) -> UserRow | None:
        """The row's arrays, or None when a column repeats (then callers use the sparse path).

        Unsorted unique columns are sorted: every weighting sorts them first, so results match.
        """
        row = row if sp.isspmatrix_csr(row) else sp.csr_matrix(row)
        if row.shape[0] != 1:
            raise ValueError("UserRow holds exactly one row")
        indices = np.asarray(row.indices[row.indptr[0]:row.indptr[1]])
        data = np.asarray(row.data[row.indptr[0]:row.indptr[1]], dtype=np.float32)
        if len(indices) > 1:
            steps = np.diff(indices)
            if not (steps > 0).all():
                order = np.argsort(indices, kind="stable")
                indices, data = indices[order], data[order]
                if not (np.diff(indices) > 0).all():
                    return None
        return cls(indices, data, row.shape[1])

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def weighted(self, weighting: str) -> np.ndarray:
        """`apply_weighting(row, weighting).data`, computed once per weighting (same float32 values)."""
        found = self._weighted.get(weighting)
        if found is not None:
            return found
        data = self.data
        if weighting == "binary":
            values = np.ones(len(data), dtype=np.float32)
        elif weighting == "log1p":
            values = np.log1p(data)
        elif weighting == "rank":
            # weighting._row_percentiles for one row: stable rank of each value within the row.
            order = np.lexsort((data,))
            ranks = np.empty(len(data), dtype=np.float64)
            ranks[order] = np.arange(len(data))
            values = (ranks / max(len(data) - 1, 1)).astype(np.float32) + np.float32(0.5)
        elif weighting == "raw":
            values = data.copy()
        else:
            raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")
        self._weighted[weighting] = values
        return values

    def csr(self) -> sp.csr_matrix:
        """The row as a canonical 1 x n_items CSR matrix (for models without a row fast path)."""
        if self._csr is None:
            indptr = np.array([0, len(self.indices)], dtype=self.indices.dtype)
            self._csr = sp.csr_matrix((self.data, self.indices, indptr), shape=(1, self.n_items))
        return self._csr


def ranges(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the stored entries of `rows` of a CSR matrix (concatenated in order), and each
    row's length."""
    starts = indptr[rows].astype(np.int64)
    lengths = indptr[rows + 1].astype(np.int64) - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), lengths
    shift = starts - (np.cumsum(lengths) - lengths)
    return np.repeat(shift, lengths) + np.arange(total, dtype=np.int64), lengths


class RowGather:
    """The stored entries of `matrix`'s rows for the user's items, scaled by the item weights.

    `scaled` equals SciPy's ``v * B[k]`` products of csr_matmat(row, matrix) in the same order, so
    accumulating them with `np.add.at` reproduces ``(row @ matrix).toarray()`` bit for bit.
    """

    __slots__ = ("columns", "scaled", "values", "which")

    def __init__(self, matrix: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray) -> None:
        positions, lengths = ranges(matrix.indptr, rows)
        self.which = np.repeat(np.arange(len(rows)), lengths)  # position in `rows` of each entry
        self.columns = matrix.indices[positions]
        self.values = matrix.data[positions]
        self.scaled = np.repeat(weights, lengths) * self.values

    def dense(self, n_columns: int) -> np.ndarray:
        out = np.zeros(n_columns, dtype=np.float32)
        np.add.at(out, self.columns, self.scaled)
        return out

    def block(self, items: np.ndarray, n_rows: int) -> np.ndarray:
        """``matrix[rows][:, items].toarray()`` (n_rows x len(items), float32)."""
        order = np.argsort(items, kind="stable")
        ordered = items[order]
        out = np.zeros(n_rows * len(items), dtype=np.float32)
        if len(items) and len(self.columns):
            spot = np.minimum(np.searchsorted(ordered, self.columns), len(items) - 1)
            hit = np.flatnonzero(ordered[spot] == self.columns)
            # toarray() sums repeated entries in stored order; np.add.at does the same.
            np.add.at(out, self.which[hit] * len(items) + order[spot[hit]], self.values[hit])
        out = out.reshape(n_rows, len(items))
        repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
        for position in repeated.tolist():  # an item asked for twice fills both columns
            out[:, order[position + 1]] = out[:, order[position]]
        return out


def gather(row: UserRow, matrix: sp.csr_matrix, weighting: str) -> RowGather:
    """The row's gather of `matrix` (cached on the row for the rest of the request)."""
    key = ("gather", id(matrix), weighting)
    found = row.cache.get(key)
    if found is None:
        found = RowGather(matrix, row.indices, row.weighted(weighting))
        row.cache[key] = (found, matrix)  # keep `matrix` alive so its id stays unique
        return found
    return found[0]


def sequential_sum(terms: np.ndarray) -> np.ndarray:
    """``terms.sum(axis=0)`` accumulated row after row, as SciPy's csr_matvecs/csr_matmat add them.

    Summing a C-ordered (rows x columns) block over axis 0 adds whole rows one after another (the
    columns form NumPy's inner loop), so it matches a running sum; with a single column NumPy would
    add pairwise instead, hence the loop. The final ``+ 0`` turns a -0.0 into the +0.0 that a
    zero-initialised sum gives.
    """
    if terms.shape[1] < 2:
        out = np.zeros(terms.shape[1], dtype=terms.dtype)
        for term in terms:
            out += term
        return out
    return terms.sum(axis=0) + terms.dtype.type(0)


def weighted_rows(weights: np.ndarray, matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``weights[k] * matrix[rows[k]]`` for every k (len(rows) x columns, C order)."""
    dtype = np.result_type(weights, matrix)
    terms = np.ascontiguousarray(matrix[rows], dtype=dtype)
    terms *= weights.astype(dtype, copy=False)[:, None]
    return terms


def sequential_rows_sum(weights: np.ndarray, matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``Σ_k weights[k] * matrix[rows[k]]`` accumulated in order, as SciPy's csr_matvecs does."""
    return sequential_sum(weighted_rows(weights, matrix, rows))


def is_canonical(matrix: sp.csr_matrix) -> bool:
    """Strictly increasing column indices within every row (no duplicates)."""
    if matrix.nnz < 2:
        return True
    steps = np.diff(matrix.indices.astype(np.int64))
    starts = matrix.indptr[1:-1]
    starts = starts[(starts > 0) & (starts < matrix.nnz)] - 1
    steps[starts] = 1  # row boundaries may step down
    return bool((steps > 0).all())
