"""Worker processes for CPU-bound work the event loop must not do itself.

Why processes: Python threads share one interpreter lock, and numpy or matplotlib work in a thread
trades that lock back and forth with the event loop (measured under `scripts/bench bot`: ~5 ms more
CPU per /recommend with scoring in a thread than on the loop). A spawned process runs on another
core while the loop serves Discord and the database.

A pool starts on first use and is an accelerator, never a dependency: with `processes=0`, or when
a worker fails, the work runs in a thread as before (`run`), and callers that need state in the
worker (the scoring model) can check and fall back themselves.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class ProcessWorkers:
    """A lazily started pool of `processes` spawned workers."""

    def __init__(self, processes: int, name: str) -> None:
        self.processes = processes
        self.name = name
        self._pool: ProcessPoolExecutor | None = None

    @property
    def enabled(self) -> bool:
        return self.processes > 0

    @property
    def started(self) -> bool:
        return self._pool is not None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the bot process has threads (database drivers) and a running loop.
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def submit(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in a worker (both picklable); raises what went wrong, including a dead pool."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), fn, *args)
        except BrokenProcessPool:
            self._pool = None  # a worker died: the next call starts a fresh pool
            raise

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
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
