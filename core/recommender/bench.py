"""Latency benchmarks of the serving path: one user's history in, a top-10 list with evidence out.

The synthetic catalogue mimics music listening: item popularity follows a Zipf law (a few artists
everyone knows, a very long tail) and users' history lengths are log-normal.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from core.recommender.engine import RecommenderEngine
from core.recommender.interactions import Interactions, Vocabulary
from core.recommender.requests import RecommendRequest


def synthetic_interactions(n_users: int = 100_000, n_items: int = 300_000, *, mean_items: float = 20.0,
                           zipf_exponent: float = 0.9, seed: int = 0) -> Interactions:
    """Users x items with power-law item popularity and log-normal history lengths."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.power(np.arange(1, n_items + 1), zipf_exponent)
    weights /= weights.sum()
    lengths = np.clip(rng.lognormal(np.log(mean_items) - 0.5, 1.0, n_users).astype(np.int64), 1, 500)
    total = int(lengths.sum())
    items = rng.choice(n_items, size=total, p=weights)
    users = np.repeat(np.arange(n_users), lengths)
    plays = rng.pareto(1.2, size=total) * 10 + 1
    matrix = sp.csr_matrix((plays.astype(np.float32), (users, items)), shape=(n_users, n_items), dtype=np.float32)
    matrix.sum_duplicates()
    return Interactions(matrix, Vocabulary(np.arange(n_users)), Vocabulary(np.arange(n_items)), None)


def latency_ms(engine: RecommenderEngine, rows: list[sp.csr_matrix], request: RecommendRequest | None = None,
               warmup: int = 5, progress: Callable[[int], None] | None = None) -> dict[str, float]:
    """p50/p95/max wall-clock ms of `engine.recommend` per user (evidence included)."""
    request = request or RecommendRequest(count=10)
    for row in rows[:warmup]:
        engine.recommend(row, request)
    timings = []
    for i, row in enumerate(rows):
        started = time.perf_counter()
        engine.recommend(row, request)
        timings.append((time.perf_counter() - started) * 1000)
        if progress:
            progress(i)
    values = np.asarray(timings)
    return {"p50_ms": round(float(np.percentile(values, 50)), 2), "p95_ms": round(float(np.percentile(values, 95)), 2),
            "max_ms": round(float(values.max()), 2), "users": len(values)}


def sample_rows(data: Interactions, n: int, seed: int = 0) -> list[sp.csr_matrix]:
    """Rows of `n` random users who have at least one item."""
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(np.diff(data.matrix.indptr) > 0)
    chosen = rng.choice(active, size=min(n, len(active)), replace=False)
    return [data.matrix[int(u)] for u in chosen]
