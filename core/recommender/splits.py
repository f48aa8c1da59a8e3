"""Offline splits: per-user random holdout, validation carved from training, cold-start cuts.

Splitting *per user* (rather than globally) guarantees every evaluated user keeps most of their
history in training, which is the situation the bot is in: it knows you, and must guess what else
you love.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from core.recommender.interactions import Interactions


@dataclass(frozen=True)
class Split:
    train: Interactions
    test: dict[int, np.ndarray]  # user index -> held-out item indices


def holdout_split(data: Interactions, *, test_fraction: float = 0.2, min_items: int = 5,
                  seed: int = 0, users: np.ndarray | None = None) -> Split:
    """Hold out round(test_fraction · n) random items of every user with >= `min_items` items
    (of `users` only, in that order, when given: large data tunes on a sample of users).

    Users with fewer items stay entirely in training (they still teach co-occurrence).
    """
    rng = np.random.default_rng(seed)
    m = sp.csr_matrix(data.matrix)
    m.sort_indices()
    keep = np.ones(len(m.data), dtype=bool)
    test: dict[int, np.ndarray] = {}
    for user in (range(m.shape[0]) if users is None else np.asarray(users, dtype=np.int64).tolist()):
        start, end = m.indptr[user], m.indptr[user + 1]
        n = end - start
        if n < min_items:
            continue
        n_test = max(1, round(test_fraction * n))
        chosen = rng.permutation(n)[:n_test]
        keep[start + chosen] = False
        test[user] = np.sort(m.indices[start + chosen])
    row_of = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    train = sp.csr_matrix((m.data[keep], (row_of[keep], m.indices[keep])), shape=m.shape, dtype=np.float32)
    return Split(data.with_matrix(train), test)


def cut_histories(rows: sp.csr_matrix, keep: int, seed: int = 0) -> sp.csr_matrix:
    """Keep `keep` random items per row: the cold-start situation of a user who just joined."""
    rng = np.random.default_rng(seed)
    m = sp.csr_matrix(rows)
    mask = np.zeros(len(m.data), dtype=bool)
    for r in range(m.shape[0]):
        start, end = m.indptr[r], m.indptr[r + 1]
        chosen = rng.permutation(end - start)[:keep]
        mask[start + chosen] = True
    row_of = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    return sp.csr_matrix((m.data[mask], (row_of[mask], m.indices[mask])), shape=m.shape, dtype=np.float32)
