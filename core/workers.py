"""Worker processes for CPU-bound work the event loop must not do itself (recommendation scoring,
compatibility cards).

Why processes: Python threads share one interpreter lock, and numpy or matplotlib work in a thread
trades that lock back and forth with the event loop (measured under `scripts/bench bot`: ~5 ms more
CPU per /recommend with scoring in a thread than on the loop). A spawned process runs on another
core while the loop serves Discord and the database.

Why a pipe per worker read by the event loop rather than `concurrent.futures.ProcessPoolExecutor`:
the executor moves every call through two threads of the bot process (its manager thread, which
also unpickles the answer, and a queue feeder thread), each woken per call, then wakes the loop
from the manager thread. Under `scripts/bench bot` those threads took ~0.5 ms of CPU per /recommend
besides the loop's own share. Here the loop pickles the call straight into an idle worker's pipe and
reads the answer when the pipe is readable; no thread of the bot process is involved. (It needs a
loop that can watch file handles: uvloop and the selector loops can.)

A pool starts on first use and is an accelerator, never a dependency: with `processes=0`, or when
a worker fails, `run` does the work in a thread instead, and callers that need state in the worker
(the scoring model) can check and fall back themselves.
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
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

__all__ = ["BrokenProcessPool", "ProcessWorkers"]


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


class ProcessWorkers:
    """`processes` spawned workers, started on first use, each fed one call at a time through its own
    pipe by the event loop (see the module docstring). A worker that dies breaks the pool: its calls
    and all waiting ones raise `BrokenProcessPool`, and the next call starts a fresh pool."""

    def __init__(self, processes: int, name: str = "worker") -> None:
        self.processes = processes
        self.name = name
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
                process = context.Process(target=_serve, args=(there,), name=f"sonance-{self.name.replace(' ', '-')}-{n}", daemon=True)
                process.start()
                there.close()
                worker = _Worker(process, here)
                workers.append(worker)
                loop.add_reader(here.fileno(), self._on_answer, worker)
        except BaseException:
            self._stop(workers, BrokenProcessPool(f"{self.name} workers could not start"))
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
                future.set_exception(BrokenProcessPool(f"a {self.name} worker exited"))
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
            log.warning("%s worker %s exited (exit code %s)", self.name, worker.process.name, worker.process.exitcode)
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
        self._stop(workers, BrokenProcessPool(f"a {self.name} worker exited"))

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
            task = loop.create_task(asyncio.to_thread(_reap, [w.process for w in workers]), name=f"{self.name}-reap")
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in a worker when enabled, else (or if the worker fails) in a thread."""
        if self.enabled:
            try:
                return await self.submit(fn, *args)
            except Exception:
                log.warning("%s worker failed; running %s in a thread", self.name, getattr(fn, "__name__", fn),
                            exc_info=True)
        return await asyncio.to_thread(fn, *args)

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
