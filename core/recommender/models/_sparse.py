"""Sparse helpers shared by the neighbourhood models."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def keep_top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest values of each row (the neighbourhood), drop the rest.

    Pruning makes item-item matrices small enough to score in microseconds and removes the long
    tail of weak, noisy co-occurrences.
    """
    m = sp.csr_matrix(m)
    m.sort_indices()
    lengths = np.diff(m.indptr)
    if lengths.max(initial=0) <= k:
        return m
    keep = np.ones(len(m.data), dtype=bool)
    for row in np.flatnonzero(lengths > k):
        start, end = m.indptr[row], m.indptr[row + 1]
        drop = np.argpartition(-m.data[start:end], k)[k:]
        keep[start + drop] = False
    row_of = np.repeat(np.arange(m.shape[0]), lengths)
    counts = np.bincount(row_of[keep], minlength=m.shape[0])
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((m.data[keep], m.indices[keep], indptr), shape=m.shape)


def row_normalise(m: sp.csr_matrix) -> sp.csr_matrix:
    """Each row sums to 1 (rows of zeros stay zero): a transition-probability matrix."""
    sums = np.asarray(m.sum(axis=1)).ravel()
    inv = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return sp.csr_matrix(sp.diags(inv) @ m)


def dense_rows(product: sp.spmatrix | np.ndarray) -> np.ndarray:
    """float32 dense array from a sparse or dense product."""
    if sp.issparse(product):
        return product.toarray().astype(np.float32, copy=False)
    return np.asarray(product, dtype=np.float32)


def row_blocks(left: sp.csr_matrix, right: sp.csr_matrix, block: int, max_entries: int) -> list[tuple[int, int]]:
    """Row ranges of `left` of at most `block` rows whose ``left @ right`` holds at most ~`max_entries`
    entries (bounded above by the summed lengths of the `right` rows each row reaches).

    On a power-law catalogue the most popular items co-occur with nearly everything: a fixed
    block of the 4,096 most popular of 1M items would hold over a billion entries at once.
    """
    reach = np.diff(right.indptr).astype(np.float64)
    bound = np.asarray(sp.csr_matrix((np.ones(len(left.indices)), left.indices, left.indptr),
                                     shape=left.shape) @ reach).ravel()
    ranges: list[tuple[int, int]] = []
    start, total = 0, 0.0
    for row in range(left.shape[0]):
        if row > start and (row - start >= block or total + bound[row] > max_entries):
            ranges.append((start, row))
            start, total = row, 0.0
        total += bound[row]
    if left.shape[0] > start:
        ranges.append((start, left.shape[0]))
    return ranges


def blocked_top_k_product(left: sp.csr_matrix, right: sp.csr_matrix, k: int, *, block: int = 4096,
                          scale_rows: np.ndarray | None = None, scale_cols: np.ndarray | None = None,
                          shrink: float = 0.0, drop_diagonal: bool = True,
                          max_entries: int = 20_000_000) -> sp.csr_matrix:
    """Top-k per row of ``left @ right`` (optionally scaled), computed in row blocks.

    For a square item-item product the full result of a power-law catalogue can hold hundreds of
    millions of entries (popular items co-occur with everything); pruning each block as it is
    produced keeps memory proportional to items x k, and blocks are cut so that no product holds
    more than ~`max_entries` entries (`row_blocks`). With `scale_rows`/`scale_cols` each entry
    becomes ``v / (scale_rows[i] * scale_cols[j] + shrink)`` (cosine-style), or ``v * scale_cols[j]``
    when only `scale_cols` is given (popularity damping).
    """
    left = sp.csr_matrix(left)
    right = sp.csr_matrix(right)
    pieces = []
    for start, stop in row_blocks(left, right, block, max_entries):
        product = sp.csr_matrix(left[start:stop] @ right, dtype=np.float32).tocoo()
        rows, cols, data = product.row, product.col, product.data
        if scale_rows is not None and scale_cols is not None:
            data = data / (scale_rows[rows + start] * scale_cols[cols] + shrink)
        elif scale_cols is not None:
            data = data * scale_cols[cols]
        if drop_diagonal:
            off = (rows + start) != cols
            rows, cols, data = rows[off], cols[off], data[off]
        chunk = sp.csr_matrix((data.astype(np.float32), (rows, cols)), shape=(product.shape[0], right.shape[1]))
        pieces.append(keep_top_k_per_row(chunk, k))
    if not pieces:
        return sp.csr_matrix((0, right.shape[1]), dtype=np.float32)
    return sp.csr_matrix(sp.vstack(pieces), dtype=np.float32)
