"""Recommendation scoring in worker processes, so the event loop keeps its core.

Scoring is numpy work on short arrays (~5 ms a request): on the loop it takes the loop's one core,
in a thread it fights the loop for the GIL (~5 ms more CPU a request, measured under `sonance
bench bot`). A worker process scores in parallel with everything the loop does (Discord I/O, the
database, rendering); the bot process only pickles a short history in and ten recommendations out.

Each worker loads the engine from the model's saved artifact the first time it sees that version
(`ScoringWorkers.warm` asks for that on the first request for a version, or at bot start) and
keeps only the newest. Any failure here (a pruned artifact, a crashed worker) is the caller's cue
to score in-process instead: the worker is an accelerator, never a dependency.

Why a pipe per worker read by the event loop (`PipeWorkers`) rather than `core.workers`'
`ProcessPoolExecutor`: the executor moves every call through two threads of the bot process (its
manager thread, which also unpickles the answer, and a queue feeder thread), each woken per call,
then wakes the loop from the manager thread. Under `scripts/bench bot` those threads took ~0.5 ms
of CPU per /recommend besides the loop's own share. Here the loop pickles the request straight into
an idle worker's pipe and reads the answer when the pipe is readable; no thread of the bot process
is involved.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from core.domain import Recommendation
from core.recommender.engine import RecommenderEngine
from core.recommender.requests import RecommendRequest, UserHistory

T = TypeVar("T")

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


def _serve(conn: Connection) -> None:
    """A worker's life: answer (fn, args) calls from the pipe, one at a time, until it closes.

    The answer is (True, result) or (False, exception). SIGINT is ignored: a Ctrl-C in a terminal
    reaches the whole process group, and the bot stops its workers itself by closing their pipes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[bool, Any] = (True, fn(*args))
        except Exception as exc:
            reply = (False, exc)
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
        except Exception as exc:  # an answer that does not pickle: say so instead
            conn.send((False, RuntimeError(f"unpicklable answer from {getattr(fn, '__name__', fn)}: {exc!r}")))


# --- the pool -------------------------------------------------------------------------------------


class _Worker:
    """One spawned process, its end of the pipe, the call it is working on and the calls waiting."""

    __slots__ = ("conn", "in_flight", "process", "waiting")

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.in_flight: asyncio.Future[Any] | None = None
        self.waiting: collections.deque[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]]] = (
            collections.deque())

    @property
    def load(self) -> int:
        return len(self.waiting) + (self.in_flight is not None)


class PipeWorkers:
    """`processes` spawned workers, started on first use, each fed one call at a time through its own
    pipe by the event loop (see the module docstring). A worker that dies breaks the pool: its calls
    and all waiting ones raise `BrokenProcessPool`, and the next call starts a fresh pool."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._workers: list[_Worker] | None = None
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.processes > 0

    @property
    def started(self) -> bool:
        return self._workers is not None

    def _start(self) -> list[_Worker]:
        loop = asyncio.get_running_loop()
        # spawn, not fork: the bot process has threads (database drivers) and a running loop.
        context = multiprocessing.get_context("spawn")
        workers: list[_Worker] = []
        try:
            for n in range(self.processes):
                here, there = context.Pipe()
                process = context.Process(target=_serve, args=(there,), name=f"sonance-scoring-{n}", daemon=True)
                process.start()
                there.close()
                worker = _Worker(process, here)
                workers.append(worker)
                loop.add_reader(here.fileno(), self._on_answer, worker)
        except BaseException:
            self._stop(workers, BrokenProcessPool("scoring workers could not start"))
            raise
        self._workers = workers
        return workers

    async def submit(self, fn: Callable[..., T], *args: Any, worker: int | None = None) -> T:
        """Run `fn(*args)` in a worker (the least busy, or number `worker`); both must pickle.
        Raises what `fn` raised, or `BrokenProcessPool` when the worker died."""
        workers = self._workers if self._workers is not None else self._start()
        chosen = workers[worker] if worker is not None else min(workers, key=lambda w: w.load)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        chosen.waiting.append((future, fn, args))
        self._feed(chosen)
        return await future

    def _feed(self, worker: _Worker) -> None:
        """Send the next waiting call if the worker is idle (one call in its pipe at a time, so a
        write never waits for a busy worker to read)."""
        while worker.in_flight is None and worker.waiting:
            future, fn, args = worker.waiting.popleft()
            if future.done():  # its caller gave up while it waited
                continue
            try:
                worker.conn.send((fn, args))
            except (EOFError, OSError):
                future.set_exception(BrokenProcessPool("a scoring worker exited"))
                self._broken()
                return
            except Exception as exc:  # the call itself does not pickle
                future.set_exception(exc)
                continue
            worker.in_flight = future

    def _on_answer(self, worker: _Worker) -> None:
        try:
            ok, value = worker.conn.recv()
        except (EOFError, OSError):
            log.warning("scoring worker %s exited (exit code %s)", worker.process.name, worker.process.exitcode)
            self._broken()
            return
        except Exception as exc:  # an answer that does not unpickle here: that call fails, the worker lives
            ok, value = False, exc
        future, worker.in_flight = worker.in_flight, None
        if future is not None and not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        self._feed(worker)

    def _broken(self) -> None:
        workers, self._workers = self._workers or [], None
        self._stop(workers, BrokenProcessPool("a scoring worker exited"))

    def _stop(self, workers: list[_Worker], error: BaseException | None) -> None:
        """Close every pipe (a worker exits when its pipe closes), fail or cancel every call, and reap
        the processes in the background."""
        loop = asyncio.get_running_loop()
        for worker in workers:
            loop.remove_reader(worker.conn.fileno())
            worker.conn.close()
            pending = [worker.in_flight] if worker.in_flight is not None else []
            pending += [future for future, _fn, _args in worker.waiting]
            worker.in_flight = None
            worker.waiting.clear()
            for future in pending:
                if not future.done():
                    if error is None:
                        future.cancel()
                    else:
                        future.set_exception(error)
        if workers:
            task = loop.create_task(asyncio.to_thread(_reap, [w.process for w in workers]), name="scoring-reap")
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def aclose(self) -> None:
        workers, self._workers = self._workers or [], None
        self._stop(workers, None)
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)


def _reap(processes: list[Any], timeout_s: float = 10.0) -> None:
    for process in processes:
        process.join(timeout_s)
        if process.is_alive():
            process.kill()
            process.join()


# --- bot side -------------------------------------------------------------------------------------


class ScoringWorkers:
    """Scoring workers for the recommender (a process-wide component of `RecommendService`).

    Nothing starts until a model is served: `warm` (called on the first request for a model
    version) starts the pool and loads the model there in the background, and until that is done
    requests score in-process, so a new model never makes anyone wait for a worker.
    """

    def __init__(self, processes: int) -> None:
        self.pool = PipeWorkers(processes)
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
