"""The recommender's models as served: a `ModelRegistry` over the saved artifacts in the database.

One engine per granularity (artist, album, track). The active `model_artifacts` row names the
version to serve; another process (the CLI, another shard) may activate a newer one, picked up
within the registry's refresh interval. With no artifact but listening data, training starts in the
background (`core.recommender.training`, in a worker thread) and a first request waits a little,
then is told "still learning". Scoring workers load each served version ahead of requests.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.db.repositories import SchedulingRepository
from core.db.repositories.recommendations import RecommendationRepository
from core.domain import Kind, Recommendation
from core.errors import NotEnoughHistory, SonanceError
from core.recommender.engine import RecommenderEngine
from core.recommender.registry import ModelRegistry, Served
from core.recommender.requests import RecommendRequest, UserHistory
from core.recommender.scoring_worker import ScoringWorkers
from core.recommender.training import ARTIFACT_KIND, train_from_db

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger(__name__)


class StillLearning(SonanceError):
    user_message = ("I'm still learning everyone's taste from the listening data (training a model). "
                    "Try again in a minute!")


class NoItemData(NotEnoughHistory):
    """Album/track recommendations without item-level listens: say so instead of faking it."""


@dataclass(frozen=True)
class LoadedModel:
    """An engine and the artifact version it came from; replaced whole, never mutated."""

    engine: RecommenderEngine
    version: str
    path: Path | None = None  # its saved artifact, which scoring workers load


class ArtifactSource:
    """`ModelSource` of recommender engines: the active artifact row, its folder, `train_from_db`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._active: dict[Kind, tuple[str, Path]] = {}  # the newest active row seen per kind

    async def newest(self, key: Kind) -> str | None:
        async with self.services.session() as session:
            artifact = await SchedulingRepository(session).active_artifact(ARTIFACT_KIND, str(key))
        if artifact is None:
            return None
        self._active[key] = (str(artifact.version), Path(artifact.path))
        return str(artifact.version)

    async def load(self, key: Kind, version: str) -> Served[LoadedModel] | None:
        active = self._active.get(key)
        if active is None or active[0] != version:
            return None
        path = active[1]
        try:
            engine = await asyncio.to_thread(RecommenderEngine.load, path)
        except SonanceError:
            log.warning("active %s artifact %s unreadable", key, version, exc_info=True)
            return None
        return Served(LoadedModel(engine, version, path), version)

    async def build(self, key: Kind, *, tune: bool = True) -> Served[LoadedModel]:
        engine, metrics = await train_from_db(self.services, kind=key, tune=tune)
        path = Path(metrics["path"]) if metrics.get("path") else None
        version = str(metrics["version"])
        return Served(LoadedModel(engine, version, path), version, dict(metrics))

    async def can_build(self, key: Kind) -> bool:
        async with self.services.session() as session:
            if await SchedulingRepository(session).active_artifact(ARTIFACT_KIND, str(key)) is not None:
                return True  # an unreadable artifact was trained from data that is still there
            return bool(await RecommendationRepository(session).has_item_plays(str(key)))

    def nothing_to_build(self, key: Kind) -> SonanceError:
        if key == Kind.ARTIST:
            return NotEnoughHistory("There's no listening data to learn from yet. Once members link Last.fm "
                                    "(/link) or an admin imports a dataset, I can recommend artists.")
        return NoItemData(f"{key.capitalize()} recommendations need synced listening history (individual "
                          f"listens with {key}s), and there isn't any yet. Link Last.fm with /link so I can "
                          "sync it, or ask for artists instead.")

    def still_building(self, key: Kind) -> SonanceError:
        return StillLearning()


class ServedModels:
    """The recommender's registry plus its scoring workers (one per process, see `RecommendService`)."""

    def __init__(self, services: Services, *, refresh_interval_s: float = 60.0,
                 first_train_wait_s: float = 25.0) -> None:
        self.registry: ModelRegistry[Kind, LoadedModel] = ModelRegistry(
            ArtifactSource(services), name="recommender", refresh_interval_s=refresh_interval_s,
            first_build_wait_s=first_train_wait_s)
        self.scoring = ScoringWorkers(services.settings.worker_processes)

    def model(self, kind: Kind | str = Kind.ARTIST) -> LoadedModel | None:
        served = self.registry.current(Kind(kind))
        return None if served is None else served.value

    async def ensure(self, kind: Kind | str = Kind.ARTIST) -> LoadedModel:
        return (await self.registry.ensure(Kind(kind))).value

    async def retrain(self, kind: Kind | str = Kind.ARTIST, *, tune: bool = True) -> dict[str, Any]:
        """Train from the DB off the event loop and swap the new engine in; returns the metrics
        (with ``version``). Concurrent calls for one kind share a run."""
        served = await self.registry.rebuild(Kind(kind), tune=tune)
        return {"version": served.version, **served.info}

    async def retrain_all(self, *, tune: bool = True) -> dict[str, dict[str, Any]]:
        """Every granularity with listening data, one after the other; a kind without data is skipped.

        Why all three: album and track models were otherwise trained once, on their first request,
        and never again, so albums and tracks listened to after that could never be recommended.
        Returns per kind either the metrics or {"skipped": reason}.
        """
        results: dict[str, dict[str, Any]] = {}
        for kind in (Kind.ARTIST, Kind.ALBUM, Kind.TRACK):
            try:
                results[str(kind)] = await self.retrain(kind, tune=tune)
            except NotEnoughHistory as exc:
                results[str(kind)] = {"skipped": exc.user_message}
        return results

    async def warm_up(self, kind: Kind = Kind.ARTIST) -> None:
        """Load the served model and its scoring workers now (at bot start), not on the first request.

        With data but no saved model yet this starts the first training; with no data it quietly
        does nothing (the model is trained once listens arrive).
        """
        try:
            loaded = await self.ensure(kind)
        except SonanceError as exc:
            log.info("recommender warm-up skipped: %s", exc)
            return
        if loaded.path is not None:
            task = self.scoring.warm(loaded.path, loaded.version)
            if task is not None:
                await task

    async def score(self, loaded: LoadedModel, history: UserHistory, request: RecommendRequest
                    ) -> list[Recommendation]:
        """Score in a worker process when there is one (see `scoring_worker`), else on the loop.

        Not in a worker thread: serving takes ~5 ms (p95 4.8 ms on HetRec; `sonance bench recommend`)
        and numpy's many short GIL releases made a thread and the loop trade the lock back and forth:
        under 50 concurrent /recommend, ~5 ms more CPU per request than scoring on the loop.
        """
        if self.scoring.enabled and loaded.path is not None:
            if self.scoring.ready(loaded.version):
                try:
                    return await self.scoring.recommend(loaded.path, loaded.version, history, request)
                except Exception:
                    log.warning("scoring worker failed for model %s; scoring in-process", loaded.version,
                                exc_info=True)
            else:
                self.scoring.warm(loaded.path, loaded.version)
        return loaded.engine.recommend(history, request)

    def status(self) -> dict[str, str]:
        """For /healthz: whether the artist model is loaded and the scoring workers are ready."""
        return {"recommender": "ready" if self.model(Kind.ARTIST) is not None else "not loaded",
                "scoring_workers": self.scoring.status()}

    async def aclose(self) -> None:
        """Let a running training finish its DB write, then stop the workers."""
        await self.registry.aclose()
        await self.scoring.aclose()
