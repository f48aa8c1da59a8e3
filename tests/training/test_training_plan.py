"""`components.plan_for`: today's configuration for data of HetRec's size, a scaled one above."""

from __future__ import annotations

import numpy as np

from core.recommender.components import DEFAULT_PLAN, LARGE_PAIRS, plan_for
from core.recommender.engine import RecommenderEngine
from core.recommender.models import EASE, IALS, NMF
from tests.recommender.conftest import build_world


def test_hetrec_sized_data_gets_todays_configuration() -> None:
    # HetRec: 1,892 listeners x 17,632 artists, 92,834 pairs; a community server is smaller still.
    assert plan_for(1_892, 17_632, 92_834) is DEFAULT_PLAN
    assert plan_for(50_000, 200_000, LARGE_PAIRS) is DEFAULT_PLAN
    plan = DEFAULT_PLAN
    assert (plan.max_validation_users, plan.holdout) == (1200, "all")
    components = plan.components()
    assert list(components) == ["ease", "rp3", "knn", "nmf", "als", "content", "pop"]
    ease, nmf = components["ease"], components["nmf"]
    assert isinstance(ease, EASE) and isinstance(nmf, NMF)
    assert ease.params() == {"l2": 100.0, "weighting": "rank", "min_users": 3, "max_items": 12000,
                             "tag_weight": 30.0, "precision": "float64"}
    assert components["rp3"].params() == {"alpha": 1.0, "beta": 0.25, "k": 200, "weighting": "rank"}
    assert components["knn"].params() == {"k": 200, "shrink": 10.0, "weighting": "rank"}
    assert nmf.params() == {"factors": 16, "weighting": "log1p", "max_iter": 50, "l2": 0.0, "seed": 0,
                            "min_users": 3, "max_items": None}
    assert isinstance(components["als"], IALS)
    assert components["als"].params() == {"factors": 64, "reg": 20.0, "alpha": 5.0, "iterations": 8,
                                          "weighting": "rank", "min_users": 3, "seed": 0}


def test_large_data_scales_the_configuration_with_its_size() -> None:
    mid = plan_for(100_000, 300_000, 2_000_000)
    big = plan_for(1_000_000, 1_000_000, 20_000_000)
    for plan in (mid, big):
        assert plan.name == "large" and plan.holdout == "sampled"
        assert plan.ease["precision"] == "float32" and plan.nmf["max_items"] == 100_000
        assert plan.als is None and "als" not in plan.components()  # per-row Python solves: too slow there
    assert (mid.rp3["k"], mid.knn["k"]) == (200, 200)  # 300k items x 200 neighbours: 60M cells
    assert (big.rp3["k"], big.knn["k"]) == (100, 100)  # 1M items: k halved, 100M cells
    assert big.max_validation_users == 300 < mid.max_validation_users <= 1200


def test_engine_train_follows_the_plan_for_its_data() -> None:
    data, tags, _links = build_world()
    engine = RecommenderEngine.train(data, tags=tags, progress=lambda _m: None)
    assert engine.hybrid.components["ease"].params()["precision"] == "float64"  # small data: default plan
    large = plan_for(10**6, 10**6, 2 * 10**7)
    said: list[str] = []
    engine = RecommenderEngine.train(data, tags=tags, plan=large, progress=said.append)
    assert engine.hybrid.components["ease"].params()["precision"] == "float32"
    assert engine.hybrid.components["nmf"].params()["max_items"] == 100_000
    # Sampled holdout: components fitted once, on the data minus the validation users' held-out rows.
    assert [m for m in said if m.startswith("fitting ")] == []
    assert len([m for m in said if m.startswith("tuning: fitting ")]) == len(engine.hybrid.components)
    tuning = engine.hybrid.tuning
    assert tuning is not None and 0 < tuning.validation_users <= large.max_validation_users
    held_out = data.matrix.nnz - int(engine.hybrid.components["pop"].counts.sum())
    assert 0 < held_out <= tuning.validation_users * 5  # 20 % of 5-item histories: 1 row each
    assert np.isfinite(tuning.validation_ndcg)
