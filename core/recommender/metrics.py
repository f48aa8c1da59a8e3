"""Top-k ranking metrics with binary relevance, defined once so every report means the same thing.

- NDCG@k: DCG = Σ_{r=1..k} rel_r / log2(r + 1); IDCG puts min(k, |relevant|) hits first.
- recall@k: hits / min(k, |relevant|) (the "capped" recall, so a perfect list scores 1 even when a
  user has more than k test items; the plain hits/|relevant| is `recall_uncapped`).
- HR@k: 1 if at least one hit.
- coverage: distinct items in all top-k lists / catalogue size.
- mean popularity: mean share of training users who know each recommended item.

`group_interval` turns per-run figures into a mean with a 95 % interval over independent groups
(communities, or split seeds), so a comparison between two protocols or two models says whether
its gap is larger than the luck of the draw.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Sequence

import numpy as np


def _hits(ranked: Sequence[int], relevant: Collection[int], k: int) -> np.ndarray:
    relevant_set = set(int(r) for r in relevant)
    return np.array([1.0 if int(i) in relevant_set else 0.0 for i in list(ranked)[:k]])


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, n + 2))


def ndcg_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    if len(relevant) == 0:
        return 0.0
    hits = _hits(ranked, relevant, k)
    dcg = float((hits * _discounts(len(hits))).sum())
    idcg = float(_discounts(min(k, len(relevant))).sum())
    return dcg / idcg


def recall_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    if len(relevant) == 0:
        return 0.0
    return float(_hits(ranked, relevant, k).sum()) / min(k, len(relevant))


def recall_uncapped(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    if len(relevant) == 0:
        return 0.0
    return float(_hits(ranked, relevant, k).sum()) / len(relevant)


def hit_rate_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    return 1.0 if _hits(ranked, relevant, k).sum() > 0 else 0.0


def coverage(lists: Iterable[Sequence[int]], n_items: int) -> float:
    if n_items <= 0:
        return 0.0
    seen: set[int] = set()
    for ranked in lists:
        seen.update(int(i) for i in ranked)
    return len(seen) / n_items


def mean_popularity(lists: Iterable[Sequence[int]], popularity_share: np.ndarray) -> float:
    """Mean of `popularity_share[item]` (0..1) over every recommended slot."""
    values = [float(popularity_share[int(i)]) for ranked in lists for i in ranked]
    return float(np.mean(values)) if values else 0.0


def summarise(lists: Sequence[Sequence[int]], relevant: Sequence[Collection[int]], k: int, n_items: int,
              popularity_share: np.ndarray) -> dict[str, float]:
    """All metrics for parallel lists of (top-k list, relevant items), keys following k."""
    if not lists:
        return {f"ndcg@{k}": 0.0, f"recall@{k}": 0.0, f"hr@{k}": 0.0, "coverage": 0.0, "mean_popularity": 0.0,
                "users": 0}
    return {
        f"ndcg@{k}": float(np.mean([ndcg_at_k(r, t, k) for r, t in zip(lists, relevant, strict=True)])),
        f"recall@{k}": float(np.mean([recall_at_k(r, t, k) for r, t in zip(lists, relevant, strict=True)])),
        f"hr@{k}": float(np.mean([hit_rate_at_k(r, t, k) for r, t in zip(lists, relevant, strict=True)])),
        "coverage": coverage(lists, n_items),
        "mean_popularity": mean_popularity(lists, popularity_share),
        "users": len(lists),
    }


def group_interval(values: Sequence[float], groups: Sequence[Hashable]) -> dict[str, float | int | list[float]]:
    """Mean of `values` with its standard error and 95 % t-interval, treating each group as one draw.

    Runs of one group (e.g. one community's three split seeds) are averaged first: they share the
    group's members, so they are not independent, and counting them as draws would shrink the
    interval. With a single group the error is unknown (NaN).
    """
    from scipy import stats  # imported here: slow to import, and only this function needs it

    if len(values) != len(groups) or not values:
        raise ValueError("need one group per value, and at least one value")
    by_group: dict[Hashable, list[float]] = {}
    for value, group in zip(values, groups, strict=True):
        by_group.setdefault(group, []).append(float(value))
    means = np.array([np.mean(v) for v in by_group.values()])
    mean = float(means.mean())
    if len(means) < 2:
        return {"mean": round(mean, 4), "se": float("nan"), "ci95": [float("nan"), float("nan")], "groups": 1}
    se = float(means.std(ddof=1) / np.sqrt(len(means)))
    half = float(stats.t.ppf(0.975, len(means) - 1)) * se
    return {"mean": round(mean, 4), "se": round(se, 4), "ci95": [round(mean - half, 4), round(mean + half, 4)],
            "groups": len(means)}
