"""Scoring in a worker process: same results as in-process, warm-up, status, and fallback."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.config import Settings
from core.domain import Kind
from core.recommender.engine import RecommenderEngine
from core.recommender.service import RecommendService
from core.services import Services, build_services
from tests.bot.world import MEMBERS, seed_world
from tests.recommender_service.askers import asker_for

ALICE = MEMBERS["alice"].fake.id


@pytest.fixture
async def world_with_worker(settings: Settings) -> AsyncIterator[Services]:
    services = await build_services(settings.model_copy(update={"worker_processes": 1}), upgrade_schema=False)
    services.extras["world_ids"] = await seed_world(services)
    yield services
    await services.close()


async def _picks(service: RecommendService) -> list[tuple[int, float]]:
    result = await service.recommend(await asker_for(service.services, ALICE), count=8, discovery=0.0)
    return [(s.rec.item_id, round(s.rec.score, 5)) for s in result.items]


async def test_worker_scores_exactly_like_the_event_loop(world_with_worker: Services) -> None:
    service = RecommendService.of(world_with_worker)
    assert service.status() == {"recommender": "not loaded", "scoring_workers": "idle"}
    await service.retrain(Kind.ARTIST, tune=False)
    await service.warm_up()  # loads the model in the worker and waits for it
    assert service.status() == {"recommender": "ready", "scoring_workers": "ready"}
    loaded = service.model(Kind.ARTIST)
    assert loaded is not None and loaded.path is not None

    from core.recommender.requests import RecommendRequest, UserHistory
    history = UserHistory.from_rows([1, 2, 3], [10.0, 5.0, 1.0], [None, None, None])
    request = RecommendRequest(count=10)
    in_worker = await service.scoring.recommend(loaded.path, loaded.version, history, request)
    # The worker serves the saved artifact: identical to loading it here, and to the freshly trained
    # engine up to float32 rounding of the saved arrays.
    from_artifact = RecommenderEngine.load(loaded.path).recommend(history, request)
    assert [(r.item_id, r.score, r.evidence) for r in in_worker] == [(r.item_id, r.score, r.evidence)
                                                                     for r in from_artifact]
    trained = loaded.engine.recommend(history, request)
    assert [r.item_id for r in in_worker] == [r.item_id for r in trained]
    assert [r.score for r in in_worker] == pytest.approx([r.score for r in trained], rel=1e-5)
    assert len(await _picks(service)) == 8  # the full request path through the worker


async def test_a_missing_artifact_falls_back_to_the_event_loop(world_with_worker: Services) -> None:
    service = RecommendService.of(world_with_worker)
    await service.retrain(Kind.ARTIST, tune=False)
    loaded = service.model(Kind.ARTIST)
    assert loaded is not None and loaded.path is not None
    shutil.rmtree(Path(loaded.path))  # e.g. pruned by a newer training in another process
    warming = service.scoring.warm(loaded.path, loaded.version)
    assert warming is not None
    await warming  # the worker cannot load it: logged, not raised
    assert service.status()["scoring_workers"] == "unavailable"
    assert not service.scoring.ready(loaded.version)
    assert len(await _picks(service)) == 8  # still answered, on the event loop
