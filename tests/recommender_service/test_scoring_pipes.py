"""`PipeWorkers`, the scoring workers' transport: answers, errors, cancellation, a worker's death,
shutdown. (Each pool spawns interpreters that import numpy: the tests share pools where they can.)

The scoring itself through these workers is `tests/recommender_service/test_scoring_workers.py`.
"""

from __future__ import annotations

import asyncio
import operator
import os
import time

import pytest

from core.recommender.scoring_worker import BrokenProcessPool, PipeWorkers


async def test_answers_errors_and_cancelled_calls() -> None:
    pool = PipeWorkers(1)
    try:
        assert not pool.started
        pids = await asyncio.gather(*(pool.submit(os.getpid) for _ in range(3)))
        assert pool.started and len(set(pids)) == 1 and pids[0] != os.getpid()
        assert await asyncio.gather(*(pool.submit(operator.add, n, 1) for n in range(20))) == list(range(1, 21))
        with pytest.raises(ZeroDivisionError):  # raised here; the worker lives on
            await pool.submit(operator.truediv, 1, 0)
        slow = asyncio.ensure_future(pool.submit(time.sleep, 0.3))
        await asyncio.sleep(0.05)
        slow.cancel()  # its answer still comes, and must not be taken for the next call's
        assert await pool.submit(operator.add, 1, 1) == 2
        assert await pool.submit(os.getpid) == pids[0]
    finally:
        await pool.aclose()


async def test_named_workers_a_death_breaks_the_pool_and_aclose_stops_it() -> None:
    pool = PipeWorkers(2)
    try:
        first, second = await asyncio.gather(pool.submit(os.getpid, worker=0), pool.submit(os.getpid, worker=1))
        assert first != second
        dying = pool.submit(os._exit, 3, worker=0)
        waiting = pool.submit(os.getpid, worker=0)  # queued behind the call that kills the worker
        results = await asyncio.gather(dying, waiting, return_exceptions=True)
        assert all(isinstance(r, BrokenProcessPool) for r in results)
        assert not pool.started  # the next call starts a fresh pool
        assert await pool.submit(os.getpid) not in (first, second)
        assert pool._workers is not None
        processes = [w.process for w in pool._workers]
        busy = asyncio.ensure_future(pool.submit(time.sleep, 0.2))
        await asyncio.sleep(0.05)
    finally:
        await pool.aclose()
    assert busy.cancelled()
    assert not any(p.is_alive() for p in processes)
