"""Vocabularies, the recency formula and strength transforms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import scipy.sparse as sp

from core.recommender.interactions import Interactions, Vocabulary, recency_weight
from core.recommender.requests import UserHistory
from core.recommender.weighting import apply_weighting


def test_vocabulary_round_trip_and_unknown_ids() -> None:
    vocab = Vocabulary.of([30, 10, 20, 10])
    assert vocab.ids.tolist() == [10, 20, 30]
    assert vocab.index(np.int64(20)) == 1 and vocab.external(2) == 30
    assert vocab.indices([30, 99]).tolist() == [2, -1]
    assert 99 not in vocab


def test_recency_weight_halves_per_half_life_with_a_floor() -> None:
    assert recency_weight(0.0, 100.0) == pytest.approx(1.0)
    assert recency_weight(100.0, 100.0) == pytest.approx(0.5)
    assert recency_weight(10_000.0, 100.0, floor=0.25) == pytest.approx(0.25)
    assert recency_weight(-5.0, 100.0) == pytest.approx(1.0)  # clock skew counts as now


def test_from_arrays_weights_by_recency_and_sums_duplicates() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    data = Interactions.from_arrays(["u1", "u1", "u1"], [7, 7, 8], [10, 10, 4],
                                    [now, now, now - timedelta(days=365)], now=now, half_life_days=365)
    row = data.user_row("u1").toarray().ravel()
    assert row[data.items.index(7)] == pytest.approx(20.0)
    assert row[data.items.index(8)] == pytest.approx(2.0)
    assert data.user_row("nobody").nnz == 0


def test_user_history_uses_the_same_formula() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    history = UserHistory.from_rows([1], [8], [now - timedelta(days=365)], now=now, half_life_days=365)
    assert history.strengths[0] == pytest.approx(4.0)


def test_history_row_ignores_unknown_items() -> None:
    data = Interactions.from_arrays([1, 2], [5, 6], [1, 1])
    row = data.history_row([5, 999], [3.0, 4.0])
    assert row.nnz == 1 and row[0, data.items.index(5)] == pytest.approx(3.0)


def test_rank_weighting_is_per_user_percentile() -> None:
    m = sp.csr_matrix(np.array([[1.0, 100.0, 10.0], [5.0, 0.0, 0.0]]))
    out = apply_weighting(m, "rank").toarray()
    assert out[0].tolist() == pytest.approx([0.5, 1.5, 1.0])
    assert out[1, 0] == pytest.approx(0.5)
    assert apply_weighting(m, "binary").toarray()[0].tolist() == [1.0, 1.0, 1.0]
