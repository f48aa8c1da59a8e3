"""Recommendation scoring in worker processes, so the event loop keeps its core.

Scoring is numpy work on short arrays (~5 ms a request): on the loop it takes the loop's one core,
in a thread it fights the loop for the GIL (~5 ms more CPU a request, measured under `sonance
bench bot`). A worker process scores in parallel with everything the loop does (Discord I/O, the
database, rendering); the bot process only pickles a short history in and ten recommendations out.

Each worker loads the engine from the model's saved artifact the first time it sees that version
(`ScoringWorkers.warm` asks for that on the first request for a version, or at bot start) and
keeps only the newest. Any failure here (a pruned artifact, a crashed worker) is the caller's cue
to score in-process instead: the worker is an accelerator, never a dependency.

The workers are `core.workers.ProcessWorkers`: a pipe per worker, read by the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from core.domain import Recommendation
from core.recommender.engine import RecommenderEngine
from core.recommender.requests import RecommendRequest, UserHistory
from core.workers import ProcessWorkers

log = logging.getLogger(__name__)

# --- worker side ----------------------------------------------------------------------------------

_engines: dict[str, RecommenderEngine] = {}  # version -> engine; only the newest is kept


def _engine(path: str, version: str) -> RecommenderEngine:
    engine = _engines.get(version)
    if engine is None:
        engine = RecommenderEngine.load(Path(path))
        _engines.clear()
        _engines[version] = engine
    return engine


def _load(path: str, version: str) -> str:
    _engine(path, version)
    return version


def _recommend(path: str, version: str, history: UserHistory, request: RecommendRequest) -> list[Recommendation]:
    return _engine(path, version).recommend(history, request)


# --- bot side -------------------------------------------------------------------------------------


class ScoringWorkers:
    """Scoring workers for the recommender (a process-wide component of `RecommendService`).

    Nothing starts until a model is served: `warm` (called on the first request for a model
    version) starts the pool and loads the model there in the background, and until that is done
    requests score in-process, so a new model never makes anyone wait for a worker.
    """

    def __init__(self, processes: int) -> None:
        self.pool = ProcessWorkers(processes, "scoring")
        self._ready: str | None = None  # the model version every worker was asked to load
        self._warming: str | None = None
        self._failed: str | None = None  # a version the workers could not load (served in-process)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.pool.enabled

    def ready(self, version: str) -> bool:
        return self.pool.started and self._ready == version

    def status(self) -> str:
        """For /healthz: off | idle | warming | ready | unavailable (scoring in-process)."""
        if not self.enabled:
            return "off"
        if self.pool.started and self._ready is not None and self._ready == self._warming:
            return "ready"
        if self._warming is not None and self._failed == self._warming:
            return "unavailable"
        return "warming" if self._warming is not None else "idle"

    def warm(self, path: Path, version: str) -> asyncio.Task[None] | None:
        """Start loading `version` in the workers (once per version) without waiting for it; returns
        the loading task when this call started one."""
        if not self.enabled or version in (self._ready, self._warming):
            return None
        self._warming = version

        async def load() -> None:
            try:
                await asyncio.gather(*(self.pool.submit(_load, str(path), version, worker=n)
                                       for n in range(self.pool.processes)))
            except Exception:
                log.warning("scoring workers could not load model %s; scoring in-process", version, exc_info=True)
                self._failed = version
                return
            if self._warming == version:
                self._ready = version

        task = asyncio.get_running_loop().create_task(load(), name=f"scoring-warm-{version}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def recommend(self, path: Path, version: str, history: UserHistory,
                        request: RecommendRequest) -> list[Recommendation]:
        """Score in a worker; raises whatever went wrong (callers fall back to in-process scoring)."""
        try:
            return await self.pool.submit(_recommend, str(path), version, history, request)
        except BrokenProcessPool:
            self._ready, self._warming = None, None  # the next request warms a fresh pool
            raise

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.pool.aclose()
