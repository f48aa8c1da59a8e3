"""Leader election, the persistent job store and job isolation of `core.scheduler`.

Two `SonanceScheduler`s in one test stand for two bot processes: each has its own `Services`
(engine, pool) and owner, and only the lease decides which one runs jobs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from core.config import Settings
from core.db.models import Lease
from core.db.types import utcnow
from core.scheduler import LEASE_NAME, JobSet, SonanceScheduler, job_specs, sync_database_url
from core.services import Services, build_services

TTL = 1.5
RENEW = 0.3
FAST = {"trigger": "interval", "seconds": 0.2}


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def services2(settings: Settings) -> AsyncIterator[Services]:
    """A second process's services on the same database."""
    built = await build_services(settings, upgrade_schema=False)
    yield built
    await built.close()


def counting_jobs(counts: Counter[str], who: str) -> JobSet:
    async def tick() -> None:
        counts[who] += 1

    return JobSet(extra={"tick": (FAST, tick)})


def make(services: Services, jobs: JobSet, owner: str) -> SonanceScheduler:
    return SonanceScheduler(services, jobs, owner=owner, lease_ttl_s=TTL, renew_every_s=RENEW)


async def stop_all(*schedulers: SonanceScheduler) -> None:
    for scheduler in schedulers:
        await scheduler.stop()


def test_sync_database_url() -> None:
    assert sync_database_url("sqlite+aiosqlite:///./x.db") == "sqlite:///./x.db"
    assert (sync_database_url("postgresql+asyncpg://u:p@h:5432/db")
            == "postgresql+psycopg2://u:p@h:5432/db")


def test_renew_must_be_shorter_than_ttl(services: Services) -> None:
    with pytest.raises(ValueError):
        SonanceScheduler(services, JobSet(), lease_ttl_s=1, renew_every_s=1)


async def test_one_leader_runs_jobs_and_the_other_takes_over(services: Services, services2: Services) -> None:
    counts: Counter[str] = Counter()
    a = make(services, counting_jobs(counts, "a"), "owner-a")
    b = make(services2, counting_jobs(counts, "b"), "owner-b")
    assert a.status() == {"scheduler": "stopped", "jobs": 1}
    a.start()
    b.start()
    try:
        await wait_until(lambda: a.is_leader or b.is_leader)
        await asyncio.sleep(1.5)
        assert [a.is_leader, b.is_leader].count(True) == 1
        leader, standby = (a, b) if a.is_leader else (b, a)
        lead, other = ("a", "b") if leader is a else ("b", "a")
        assert counts[lead] >= 3
        assert counts[other] == 0
        assert leader.status() == {"scheduler": "leader", "jobs": 1}
        assert standby.status() == {"scheduler": "standby", "jobs": 1}

        stopped_at = time.monotonic()
        await leader.stop()
        assert leader.status()["scheduler"] == "stopped"
        frozen = counts[lead]
        await wait_until(lambda: standby.is_leader, within=TTL + 2 * RENEW + 1)
        assert time.monotonic() - stopped_at <= TTL + 2 * RENEW + 1
        await wait_until(lambda: counts[other] >= 3)
        assert counts[lead] == frozen  # the old leader never ran a job again
    finally:
        await stop_all(a, b)


async def test_crashed_leader_is_replaced_after_the_lease_expires(services: Services,
                                                                  services2: Services) -> None:
    counts: Counter[str] = Counter()
    a = make(services, counting_jobs(counts, "a"), "owner-a")
    a.start()
    await wait_until(lambda: a.is_leader)
    # A crash: the process vanishes without releasing its lease.
    assert a._loop_task is not None
    a._loop_task.cancel()
    await asyncio.gather(a._loop_task, return_exceptions=True)
    assert not a.is_leader

    b = make(services2, counting_jobs(counts, "b"), "owner-b")
    b.start()
    try:
        await asyncio.sleep(TTL / 2)
        assert not b.is_leader  # a's lease is still valid
        await wait_until(lambda: b.is_leader, within=TTL + RENEW + 1)
        await wait_until(lambda: counts["b"] >= 2)
    finally:
        await stop_all(a, b)


async def test_losing_the_lease_stops_jobs(services: Services) -> None:
    counts: Counter[str] = Counter()
    a = make(services, counting_jobs(counts, "a"), "owner-a")
    a.start()
    try:
        await wait_until(lambda: counts["a"] >= 2)
        async with services.session() as session:  # another process took the lease
            await session.execute(update(Lease).where(Lease.name == LEASE_NAME)
                                  .values(owner="thief", expires_at=utcnow() + timedelta(hours=1)))
        await wait_until(lambda: not a.is_leader, within=RENEW + 1)
        assert a.status()["scheduler"] == "standby"
        frozen = counts["a"]
        await asyncio.sleep(0.8)
        assert counts["a"] == frozen
    finally:
        await a.stop()


async def test_jobs_persist_in_the_job_store_and_keep_their_clock(services: Services) -> None:
    async def noop() -> None:
        return None

    jobs = JobSet(sync_active=noop, sync_dormant=noop, retrain=noop, weekly_dms=noop,
                  extra={"tick": (FAST, noop)})
    first = make(services, jobs, "owner-a")
    first.start()
    await wait_until(lambda: first.is_leader)
    await first.stop()

    async with services.engine.connect() as conn:
        rows = dict((await conn.execute(text("SELECT id, next_run_time FROM apscheduler_jobs"))).all())
    assert set(rows) == {"sync_active", "sync_dormant", "retrain", "weekly_dms", "tick"}
    assert rows["sync_dormant"] > time.time() + 23 * 3600  # daily, stored as a UTC timestamp

    # A restart (or a new leader) keeps the daily job's clock instead of pushing it a day later,
    # and drops jobs that are no longer in the JobSet.
    second = make(services, JobSet(sync_dormant=noop, retrain=noop), "owner-b")
    second.start()
    try:
        await wait_until(lambda: second.is_leader)
        await asyncio.sleep(0.3)
    finally:
        await second.stop()
    async with services.engine.connect() as conn:
        after = dict((await conn.execute(text("SELECT id, next_run_time FROM apscheduler_jobs"))).all())
    assert set(after) == {"sync_dormant", "retrain"}
    assert after["sync_dormant"] == pytest.approx(rows["sync_dormant"])


async def test_a_failing_job_does_not_stop_the_others(services: Services,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    counts: Counter[str] = Counter()

    async def boom() -> None:
        counts["boom"] += 1
        raise RuntimeError("kaput")

    async def tick() -> None:
        counts["tick"] += 1

    scheduler = make(services, JobSet(extra={"boom": (FAST, boom), "tick": (FAST, tick)}), "owner-a")
    caplog.set_level(logging.ERROR, logger="core.scheduler")
    scheduler.start()
    try:
        await wait_until(lambda: counts["boom"] >= 3 and counts["tick"] >= 3)
        assert scheduler.is_leader
    finally:
        await scheduler.stop()
    failures = [r for r in caplog.records if "'boom' failed" in r.getMessage()]
    assert failures and failures[0].exc_info is not None


async def test_stop_is_clean(services: Services) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    before = asyncio.all_tasks()
    scheduler = make(services, JobSet(extra={"slow": (FAST, slow)}), "owner-a")
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    await scheduler.stop()
    await scheduler.stop()  # idempotent

    assert cancelled == [True]  # the running job did not outlive leadership
    await asyncio.sleep(0.05)
    leftover: set[Any] = asyncio.all_tasks() - before
    assert not leftover, leftover
    assert scheduler.status() == {"scheduler": "stopped", "jobs": 1}
    async with services.session() as session:
        assert (await session.execute(select(Lease).where(Lease.name == LEASE_NAME))).first() is None


def test_similar_graph_job_runs_every_minute() -> None:
    async def noop() -> None:
        return None

    specs = {s.job_id: s for s in job_specs(JobSet(similar_graph=noop), sync_active_minutes=15)}
    assert specs["similar_graph"].trigger == "interval"
    assert specs["similar_graph"].trigger_args == {"minutes": 1}


def test_membership_sweep_runs_often_enough_to_recheck_daily() -> None:
    from core.memberships import CHECKS_PER_RUN, RECHECK_AFTER, SWEEP_MINUTES

    async def noop() -> None:
        return None

    spec = {s.job_id: s for s in job_specs(JobSet(memberships=noop), sync_active_minutes=15)}["memberships"]
    assert spec.trigger == "interval" and spec.trigger_args == {"minutes": SWEEP_MINUTES}
    runs_per_recheck = RECHECK_AFTER.total_seconds() / (SWEEP_MINUTES * 60)
    assert runs_per_recheck * CHECKS_PER_RUN >= 10_000  # memberships a day the sweep can confirm
