"""Strength -> confidence transforms applied to user rows before a model sees them.

Raw play counts on Last.fm span six orders of magnitude; feeding them raw lets one obsessive
listen swamp everything. Which transform works best depends on the model (EASE likes per-user rank
weights, NMF likes log1p), so each model names its own and applies it to training *and* request rows
alike.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

Weighting = Literal["binary", "log1p", "rank", "raw"]
WEIGHTINGS: tuple[str, ...] = ("binary", "log1p", "rank", "raw")


def apply_weighting(rows: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """A float32 copy of `rows` with the transform applied to the stored values.

    - binary: 1 for every known item (pure co-occurrence).
    - log1p:  log(1 + strength), damping heavy listeners.
    - rank:   0.5 + percentile of the item within the user's own history (0.5 .. 1.5): relative
      preference, immune to how much a user listens overall.
    - raw:    the strength itself.
    """
    out = sp.csr_matrix(rows, dtype=np.float32, copy=True)
    out.sort_indices()
    if weighting == "binary":
        out.data[:] = 1.0
    elif weighting == "log1p":
        np.log1p(out.data, out=out.data)
    elif weighting == "rank":
        out.data = _row_percentiles(out).astype(np.float32) + np.float32(0.5)
    elif weighting != "raw":
        raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")
    return out


def _row_percentiles(m: sp.csr_matrix) -> np.ndarray:
    """Percentile (0..1) of each stored value within its row; ties share order arbitrarily but stably."""
    n_rows = m.shape[0]
    lengths = np.diff(m.indptr)
    row_of = np.repeat(np.arange(n_rows), lengths)
    # Sort by (row, value): positions within each row segment give the rank.
    order = np.lexsort((m.data, row_of))
    ranks = np.empty(len(m.data), dtype=np.float64)
    ranks[order] = np.arange(len(m.data)) - np.repeat(m.indptr[:-1], lengths)
    denom = np.repeat(np.maximum(lengths - 1, 1), lengths)
    return ranks / denom
