"""Metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.recommender.metrics import (
    coverage,
    hit_rate_at_k,
    mean_popularity,
    ndcg_at_k,
    recall_at_k,
    recall_uncapped,
    summarise,
)


def test_ndcg_single_hit_at_rank_two() -> None:
    # DCG = 1/log2(3); IDCG with one relevant item = 1/log2(2) = 1.
    assert ndcg_at_k([5, 7, 9], {7}, k=3) == pytest.approx(1 / math.log2(3))


def test_ndcg_ideal_is_capped_by_k() -> None:
    # 4 relevant, k=2, hits at ranks 1 and 2 -> perfect: IDCG uses min(k, |rel|) = 2 positions.
    assert ndcg_at_k([1, 2, 3], {1, 2, 3, 4}, k=2) == pytest.approx(1.0)


def test_ndcg_two_hits_hand_computed() -> None:
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k([1, 9, 2], {1, 2}, k=3) == pytest.approx(dcg / idcg)


def test_ndcg_empty_relevant_is_zero() -> None:
    assert ndcg_at_k([1, 2], set(), k=2) == 0.0


def test_recall_is_capped_and_uncapped_is_not() -> None:
    ranked = [1, 2, 3]
    relevant = {1, 2, 10, 11, 12}
    assert recall_at_k(ranked, relevant, k=3) == pytest.approx(2 / 3)  # hits / min(k, |rel|)
    assert recall_uncapped(ranked, relevant, k=3) == pytest.approx(2 / 5)


def test_hit_rate() -> None:
    assert hit_rate_at_k([4, 5], {5}, k=2) == 1.0
    assert hit_rate_at_k([4, 5], {5}, k=1) == 0.0


def test_coverage_and_mean_popularity() -> None:
    lists = [[0, 1], [1, 2]]
    assert coverage(lists, n_items=6) == pytest.approx(3 / 6)
    share = np.array([0.5, 0.1, 0.3, 0.0, 0.0, 0.0])
    assert mean_popularity(lists, share) == pytest.approx((0.5 + 0.1 + 0.1 + 0.3) / 4)


def test_summarise_keys_follow_k() -> None:
    out = summarise([[1, 2]], [{2}], k=2, n_items=4, popularity_share=np.zeros(4))
    assert set(out) >= {"ndcg@2", "recall@2", "hr@2", "coverage", "mean_popularity"}
    assert out["ndcg@2"] == pytest.approx(1 / math.log2(3))
