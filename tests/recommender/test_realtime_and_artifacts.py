"""Real time (no retraining between a listen and the next list) and artifact round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.recommender.artifacts import ArtifactError
from core.recommender.engine import RecommenderEngine
from core.recommender.requests import RecommendRequest, UserHistory
from tests.recommender.conftest import build_world, scene_items


@pytest.fixture(scope="module")
def engine() -> RecommenderEngine:
    data, tags, _links = build_world()
    return RecommenderEngine.train(data, tags=tags, tune=True)


def test_a_new_listen_changes_the_next_recommendations(engine: RecommenderEngine) -> None:
    before = UserHistory(scene_items(0)[:2], [20.0, 20.0])
    first = [r.item_id for r in engine.recommend(before, RecommendRequest(count=3))]
    # The user discovers scene 2 and plays three of its artists a lot.
    after = UserHistory([*before.items, *scene_items(2)[:3]], [*before.strengths, 80.0, 80.0, 80.0])
    second = [r.item_id for r in engine.recommend(after, RecommendRequest(count=3))]
    assert first != second
    assert set(second) & set(scene_items(2))


def test_save_load_round_trip_gives_identical_recommendations(engine: RecommenderEngine, tmp_path) -> None:
    path = engine.save(tmp_path / "artist")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "sonance-recommender" and manifest["format_version"] == 1
    loaded = RecommenderEngine.load(path)
    cold = UserHistory(scene_items(1)[:2], [10.0, 3.0])
    warm = UserHistory([*scene_items(1)[:4], *scene_items(0)[:3]], [10.0, 3.0, 7.0, 5.0, 2.0, 9.0, 4.0])
    # Blends sum in weight order, so the loaded engine must iterate both sets as the fitted one does
    # (float32 sums in another order differ in the last bits and can swap near-tied picks).
    for attr in ("weights", "cold_weights"):
        assert list(getattr(loaded.hybrid, attr).items()) == list(getattr(engine.hybrid, attr).items())
    for history in (cold, warm):  # both weight sets, bit for bit
        a = engine.recommend(history, RecommendRequest(count=6))
        b = loaded.recommend(history, RecommendRequest(count=6))
        assert [(r.item_id, r.score, r.evidence.items) for r in a] == \
            [(r.item_id, r.score, r.evidence.items) for r in b]
    # Saving again over the same folder replaces it atomically.
    engine.save(path)
    assert RecommenderEngine.load(path).hybrid.weights == engine.hybrid.weights


def test_artifact_refuses_newer_formats_and_pickles(engine: RecommenderEngine, tmp_path) -> None:
    path = engine.save(tmp_path / "m")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError):
        RecommenderEngine.load(path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps({"format": "sonance-recommender", "format_version": 1}))
    np.savez(bad / "arrays.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ArtifactError):
        RecommenderEngine.load(bad)


def test_tuning_records_weights_from_a_validation_split(engine: RecommenderEngine) -> None:
    tuning = engine.hybrid.tuning
    assert tuning is not None and tuning.validation_users > 0
    assert engine.hybrid.weights["ease"] == 1.0
