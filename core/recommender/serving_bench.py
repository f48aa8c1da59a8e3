"""`sonance bench recommend`'s serving figure through the service, as a member's /recommend runs it.

`core.recommender.bench` times the engine alone. Here the synthetic catalogue goes into a scratch
SQLite database (artists, then the timed listeners and their plays), the model is trained on it
by the code `sonance train` runs, with the configuration `components.plan_for` picks for its size,
and registered as the active artifact; then each request is `RecommendService.recommend`:
the listener's history, feedback and recently shown items read from the database, scoring in the
scoring worker process (`SONANCE_WORKER_PROCESSES=1`, the default), the evidence, names from the
database and the list recorded as shown.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.asker import Asker
from core.config import Settings
from core.db.repositories import CatalogRepository, SchedulingRepository, UserRepository
from core.db.repositories.listens import ListenRepository, PlayRow
from core.domain import Kind
from core.recommender.bench import SyntheticPlays, percentiles, synthetic_plays, train_benchmark
from core.recommender.engine import RecommenderEngine
from core.recommender.training import ARTIFACT_KIND, metrics_of
from core.services import Services, build_services


async def _store_catalogue(services: Services, plays: SyntheticPlays) -> SyntheticPlays:
    """Every synthetic artist as a database row; the plays, tags and names re-keyed by row id."""
    n_items = len(plays.names)
    async with services.session() as session:
        ids = await CatalogRepository(session).ensure_artists(
            {"name_key": f"synthetic-{i}", "name": plays.names[i], "external_ref": f"synthetic:{i}"}
            for i in range(1, n_items + 1))
    row_id = np.zeros(n_items + 1, dtype=np.int64)
    row_id[1:] = [ids[f"synthetic-{i}"] for i in range(1, n_items + 1)]
    tags = {source: {int(row_id[i]): t for i, t in by_item.items()} for source, by_item in plays.tags.items()}
    return SyntheticPlays(plays.user_ids, row_id[plays.item_ids], plays.plays, plays.last_played_s, tags,
                          {int(row_id[i]): name for i, name in plays.names.items()})


async def _store_listeners(services: Services, plays: SyntheticPlays, users: np.ndarray) -> list[int]:
    """The timed listeners and their plays as database rows; returns their user ids."""
    refs = [f"synthetic:{int(u)}" for u in users]
    mine = np.isin(plays.user_ids, users)
    async with services.session() as session:
        ids = await UserRepository(session).ensure_dataset_users("synthetic", refs)
        summed: dict[tuple[int, int], tuple[int, float]] = {}
        for u, i, n, t in zip(plays.user_ids[mine].tolist(), plays.item_ids[mine].tolist(),
                              plays.plays[mine].tolist(), plays.last_played_s[mine].tolist(), strict=True):
            key = (ids[f"synthetic:{u}"], i)
            old = summed.get(key, (0, 0.0))
            summed[key] = (old[0] + int(n), max(old[1], t))
        await ListenRepository(session).set_artist_plays(
            [PlayRow(u, i, n, datetime.fromtimestamp(t, UTC)) for (u, i), (n, t) in summed.items()])
    return [ids[r] for r in refs]


async def service_benchmark(n_users: int, n_items: int, *, requests: int = 300, seed: int = 0,
                            say: Callable[[str], None] | None = None) -> tuple[RecommenderEngine, SyntheticPlays,
                                                                                dict[str, Any]]:
    """Train at this size as production does, then time `requests` recommendations through the
    service. Returns the engine, the (re-keyed) plays and the figures: training stages and
    ``service`` p50/p95/max ms."""
    say = say or (lambda _m: None)
    with tempfile.TemporaryDirectory(prefix="sonance-bench-recommend-") as scratch:
        settings = Settings(_env_file=None, DATABASE_URL=f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}",  # type: ignore[call-arg]
                            SONANCE_DATA_DIR=Path(scratch) / "data", SONANCE_WORKER_PROCESSES=1)
        services = await build_services(settings)
        try:
            say(f"building synthetic {n_users:,} x {n_items:,} plays")
            plays = synthetic_plays(n_users, n_items, seed=seed)
            say("storing the catalogue in the database")
            plays = await _store_catalogue(services, plays)
            engine, path, training = train_benchmark(n_users, n_items, settings.model_dir, seed=seed, say=say,
                                                     plays=plays)
            async with services.session() as session:
                await SchedulingRepository(session).add_artifact(
                    kind=ARTIFACT_KIND, version=path.name, path=str(path), metrics=metrics_of(engine, [], 0.0),
                    n_users=engine.n_users, n_items=len(engine.items), granularity=str(Kind.ARTIST), activate=True)
            rng = np.random.default_rng(seed)
            chosen = np.sort(rng.choice(np.unique(plays.user_ids), min(requests, n_users), replace=False))
            say(f"storing {len(chosen)} listeners' plays in the database")
            user_ids = await _store_listeners(services, plays, chosen)
            service = services.recommend
            say("loading the model in the service and its scoring worker")
            await service.warm_up(Kind.ARTIST)
            timings: list[float] = []
            for user_id in user_ids[:5] + user_ids:  # five warm-up requests
                started = time.perf_counter()
                # Dataset listeners have no Discord account: the asker's snowflake is never used.
                await service.recommend(Asker(user_id, 0, None), kind=Kind.ARTIST, count=10)
                timings.append((time.perf_counter() - started) * 1000)
            figures = {"training": training,
                       "service": {**percentiles(timings[5:]), "worker": service.scoring.status(),
                                   "includes": "history, feedback and recently shown read from SQLite, scoring "
                                               "worker round-trip, evidence, names, recorded as shown"}}
        finally:
            await services.close()
    return engine, plays, figures
