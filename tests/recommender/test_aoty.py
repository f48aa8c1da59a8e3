"""AOTY signals: Bayesian-shrunk quality and the discovery dial leaning on it."""

from __future__ import annotations

import numpy as np
import pytest

from core.domain import AotyFacts, Kind
from core.recommender.engine import RecommenderEngine
from core.recommender.interactions import Vocabulary
from core.recommender.models.aoty import bayesian_average, quality_from_facts
from core.recommender.requests import RecommendRequest, UserHistory
from tests.recommender.conftest import build_world, scene_items


def test_bayesian_average_hand_computed() -> None:
    scores = np.array([90.0, 70.0, np.nan])
    counts = np.array([10.0, 30.0, 0.0])
    # Count-weighted mean = (900 + 2100) / 40 = 75; pseudo-count 10.
    out = bayesian_average(scores, counts, pseudo_count=10.0)
    assert out[0] == pytest.approx((10 * 90 + 10 * 75) / 20)
    assert out[1] == pytest.approx((30 * 70 + 10 * 75) / 40)
    assert out[2] == pytest.approx(75.0)


def test_few_ratings_do_not_beat_many() -> None:
    items = Vocabulary(np.array([1, 2, 3]))
    facts = {1: AotyFacts(user_score=95, user_count=3), 2: AotyFacts(user_score=85, user_count=20_000),
             3: AotyFacts(user_score=60, user_count=500)}
    quality = quality_from_facts(items, facts)
    assert quality[1] > quality[0] > quality[2]


def test_discovery_prefers_good_deep_cuts_when_quality_is_known() -> None:
    data, tags, links = build_world()
    quality = np.full(data.n_items, 0.5, dtype=np.float32)
    gem = data.items.index(scene_items(2)[4])
    quality[gem] = 0.95
    engine = RecommenderEngine.train(data, kind=Kind.ALBUM, tags=tags, quality=quality, links=links, tune=False)
    history = UserHistory(scene_items(0)[:2], [10.0, 10.0])
    deep = engine.recommend(history, RecommendRequest(count=3, discovery=1.0))
    assert scene_items(2)[4] in [r.item_id for r in deep]
    assert "quality" in deep[0].evidence.sources
