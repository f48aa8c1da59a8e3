"""Periodic jobs (sync, retrain, weekly DMs) with exactly one scheduler leader across bot processes.

Design, and why:

* **One leader.** Several bot processes (shards, a rolling deploy) may run at once, but a sync or a
  retrain must not run twice. A background task renews the database lease ``scheduler-leader``
  (`SchedulingRepository.acquire_lease`, which works across processes on SQLite and PostgreSQL)
  every ``renew_every_s``. While this process holds it, an APScheduler runs; the first failed renewal
  (lost lease *or* database error) shuts it down and cancels running jobs. A renewal attempt is
  bounded so that the step-down always happens before the lease can expire and be taken by another
  process (``renew_every_s + attempt timeout < lease_ttl_s``). Leases compare wall clocks of the
  processes, so hosts need NTP-synchronised clocks (skew must stay well below the lease TTL).
* **Persistent job store.** APScheduler's `SQLAlchemyJobStore` keeps jobs (and their next run time)
  in ``apscheduler_jobs`` in the same database, so a restart or a change of leader does not reset a
  daily job's clock: a job whose trigger did not change keeps its stored next run time. The table
  belongs to APScheduler (`core.db.schema_scope.FOREIGN_TABLES` keeps Alembic away from it).
* **Trampolines.** The store pickles a job's function as a textual ``module:function`` reference,
  so closures and bound methods (our live, per-process callables holding `Services`) cannot be
  stored. Every job therefore points at the module-level `run_registered_job(job_id)`, which looks
  the live callable up in a process-local registry that the leader fills when it takes over.
* **No blocking the event loop.** The store is synchronous (psycopg2 / sqlite3). On SQLite a sync
  write from the loop thread waiting for a lock held by an aiosqlite transaction that needs the loop
  to commit would deadlock until the busy timeout. So every job-store access runs on one dedicated
  worker thread per leadership term; only job coroutines run on the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from functools import partial
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.executors.base import run_coroutine_job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import make_url

from core.db.repositories.scheduling import SchedulingRepository
from core.services import Services

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler-leader"
JOBSTORE_TABLE = "apscheduler_jobs"

JobFunc = Callable[[], Awaitable[Any]]
#: How often the similar-graph job looks for artists (and tracks) whose Last.fm neighbours are due.
SIMILAR_GRAPH_MINUTES = 1

# --- the process-local registry behind the trampolines ---------------------------------------------

#: job id → live callable of the scheduler that currently leads *in this process*. At most one
#: `SonanceScheduler` per process holds the lease, so job ids never collide here.
_LIVE: dict[str, JobFunc] = {}


async def run_registered_job(job_id: str) -> None:
    """The only function the job store references (as ``core.scheduler:run_registered_job``).

    It must stay module-level and keep its name: renaming it orphans every stored job.
    """
    target = _LIVE.get(job_id)
    if target is None:  # a stale submission racing a step-down, or a job from another version
        log.debug("scheduled job %r has no live callable in this process; skipped", job_id)
        return
    await target()


# --- job definitions ---------------------------------------------------------------------------------


@dataclass
class JobSet:
    """The engine's periodic work; every job is optional so each layer can add its own when ready.

    ``extra`` maps a job id to ``(trigger_kwargs, callable)``; trigger_kwargs look like
    ``{"trigger": "interval", "seconds": 5}`` or ``{"trigger": "cron", "hour": 3}`` and may carry
    ``misfire_grace_time`` and ``jitter``.
    """

    sync_active: JobFunc | None = None
    sync_dormant: JobFunc | None = None
    retrain: JobFunc | None = None
    weekly_dms: JobFunc | None = None
    similar_graph: JobFunc | None = None
    memberships: JobFunc | None = None
    extra: dict[str, tuple[dict[str, Any], JobFunc]] = field(default_factory=dict)


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    func: JobFunc
    trigger: str  # "interval" | "cron"
    trigger_args: dict[str, Any]
    misfire_grace_time: int | None
    jitter: float | None

    def build_trigger(self) -> IntervalTrigger | CronTrigger:
        kwargs = dict(self.trigger_args, timezone=UTC)
        if self.jitter:
            kwargs["jitter"] = self.jitter
        if self.trigger == "interval":
            return IntervalTrigger(**kwargs)
        if self.trigger == "cron":
            return CronTrigger(**kwargs)
        raise ValueError(f"job {self.job_id!r}: unsupported trigger {self.trigger!r}")

    @property
    def name(self) -> str:
        """Stored as the job's name: an unchanged schedule lets a new leader keep the next run time."""
        schedule = json.dumps({"trigger": self.trigger, "args": self.trigger_args, "jitter": self.jitter},
                              sort_keys=True, default=str)
        return f"{self.job_id} {schedule}"


def job_specs(jobs: JobSet, sync_active_minutes: int, weekly_dm_check_s: float = 300.0) -> list[JobSpec]:
    """The schedule. Jitter staggers the work so that jobs started together do not hit APIs at once."""
    specs: list[JobSpec] = []
    if jobs.sync_active:
        specs.append(JobSpec("sync_active", jobs.sync_active, "interval", {"minutes": sync_active_minutes},
                             misfire_grace_time=sync_active_minutes * 60, jitter=30))
    if jobs.sync_dormant:
        specs.append(JobSpec("sync_dormant", jobs.sync_dormant, "interval", {"days": 1},
                             misfire_grace_time=6 * 3600, jitter=300))
    if jobs.retrain:  # at night (UTC) when nobody is listening; a late start after downtime is fine
        specs.append(JobSpec("retrain", jobs.retrain, "cron", {"hour": 4, "minute": 0},
                             misfire_grace_time=6 * 3600, jitter=120))
    if jobs.weekly_dms:  # every 5 min (by default) the DM job looks for users whose local weekly slot has come
        every = {"minutes": 5} if weekly_dm_check_s == 300 else {"seconds": weekly_dm_check_s}  # stored name kept
        specs.append(JobSpec("weekly_dms", jobs.weekly_dms, "interval", every,
                             misfire_grace_time=300, jitter=min(10.0, weekly_dm_check_s / 4)))
    if jobs.similar_graph:  # every minute: new artists get their Last.fm neighbours within minutes of a
        # sync (the budget: ~3,000 artists within 15 minutes); a run finds nothing due otherwise
        specs.append(JobSpec("similar_graph", jobs.similar_graph, "interval", {"minutes": SIMILAR_GRAPH_MINUTES},
                             misfire_grace_time=60, jitter=5))
    if jobs.memberships:  # members who left a guild leave its boards (core.memberships says why and how fast)
        from core.memberships import SWEEP_MINUTES

        specs.append(JobSpec("memberships", jobs.memberships, "interval", {"minutes": SWEEP_MINUTES},
                             misfire_grace_time=SWEEP_MINUTES * 60, jitter=30))
    for job_id, (trigger_kwargs, func) in jobs.extra.items():
        args = dict(trigger_kwargs)
        trigger = args.pop("trigger", "interval")
        grace = args.pop("misfire_grace_time", 60)
        jitter = args.pop("jitter", None)
        specs.append(JobSpec(job_id, func, trigger, args, misfire_grace_time=grace, jitter=jitter))
    ids = [s.job_id for s in specs]
    if len(ids) != len(set(ids)):
        raise ValueError(f"duplicate job ids in JobSet: {ids}")
    return specs


def sync_database_url(async_url: str) -> str:
    """The job store needs a sync driver: sqlite+aiosqlite → sqlite, postgresql+asyncpg → psycopg2."""
    url = make_url(async_url)
    backend = url.get_backend_name()
    driver = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg2"}.get(backend)
    if driver is None:
        raise ValueError(f"unsupported database for the job store: {backend}")
    return url.set(drivername=driver).render_as_string(hide_password=False)


def default_owner() -> str:
    """Unique per process *and* per instance, readable in the leases table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# --- APScheduler with job-store I/O off the event loop ------------------------------------------------


class _LoopExecutor(AsyncIOExecutor):
    """Runs coroutine jobs on the loop although jobs are submitted from the job-store thread."""

    def _do_submit_job(self, job: Any, run_times: list[Any]) -> None:
        def callback(f: ThreadFuture[Any]) -> None:
            self._pending_futures.discard(f)
            if f.cancelled():  # we stepped down; `_invoke` has already logged it
                return
            try:
                events = f.result()
            except BaseException as exc:  # cancelled on shutdown, or an APScheduler internal error
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, events)

        coro = run_coroutine_job(job, job._jobstore_alias, run_times, self._logger.name)
        f = asyncio.run_coroutine_threadsafe(coro, self._eventloop)
        f.add_done_callback(callback)
        self._pending_futures.add(f)

    def shutdown(self, wait: bool = True) -> None:
        for f in list(self._pending_futures):  # copy: the store thread may add concurrently
            f.cancel()
        self._pending_futures.clear()


class _OffLoopScheduler(AsyncIOScheduler):
    """`AsyncIOScheduler` whose job processing (all job-store queries) runs on a worker thread."""

    def __init__(self, io: ThreadPoolExecutor, **options: Any) -> None:
        self._io = io
        super().__init__(**options)

    def _create_default_executor(self) -> AsyncIOExecutor:
        return _LoopExecutor()

    def wakeup(self) -> None:  # called from the loop and from the store thread
        loop = self._eventloop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wakeup_on_loop)

    def _wakeup_on_loop(self) -> None:
        if self.state == STATE_STOPPED or self._eventloop is None:
            return
        self._stop_timer()
        try:
            fut = self._eventloop.run_in_executor(self._io, self._process_jobs_safely)
        except RuntimeError:  # the store thread has been shut down: we are stepping down
            return
        fut.add_done_callback(self._after_processing)

    def _process_jobs_safely(self) -> float | None:
        # A failed update_job (e.g. the database went away) must not end the wake-up cycle.
        try:
            return self._process_jobs()
        except Exception:
            log.exception("scheduler: processing jobs failed; retrying in %ss", self.jobstore_retry_interval)
            return self.jobstore_retry_interval

    def _after_processing(self, fut: asyncio.Future[float | None]) -> None:
        if self.state == STATE_STOPPED or self._eventloop is None or fut.cancelled():
            return
        wait = fut.result() if fut.exception() is None else self.jobstore_retry_interval
        self._start_timer(wait)


# --- the leader-elected scheduler ----------------------------------------------------------------------


class SonanceScheduler:
    """Runs a `JobSet` in exactly one of the bot's processes at a time."""

    def __init__(self, services: Services, jobs: JobSet, owner: str | None = None,
                 lease_ttl_s: float | None = None, renew_every_s: float | None = None) -> None:
        settings = services.settings
        lease_ttl_s = settings.scheduler_lease_s if lease_ttl_s is None else lease_ttl_s
        # A third of the TTL: a standby notices an expired lease within that, and a leader whose
        # renewal hangs still steps down before the lease can expire (see the module docstring).
        renew_every_s = lease_ttl_s / 3 if renew_every_s is None else renew_every_s
        if renew_every_s >= lease_ttl_s:
            raise ValueError("renew_every_s must be shorter than lease_ttl_s, or leadership lapses")
        self.services = services
        self.owner = owner or default_owner()
        self.lease_ttl_s = lease_ttl_s
        self.renew_every_s = renew_every_s
        # Bounded so that a hanging database still lets us step down before the lease expires.
        self._attempt_timeout_s = max(0.05, (lease_ttl_s - renew_every_s) / 2)
        self._specs = job_specs(jobs, settings.sync_active_minutes, settings.weekly_dm_check_s)
        self._store_url = sync_database_url(services.settings.async_database_url)
        self._loop_task: asyncio.Task[None] | None = None
        self._stop_event = asyncio.Event()
        self._aps: _OffLoopScheduler | None = None
        self._io: ThreadPoolExecutor | None = None
        self._leading = False  # reported: the lease is held *and* the jobs are registered
        self._jobs_open = False  # gate checked by every job run; closed first when stepping down
        self._stopped = False
        self._running_jobs: set[asyncio.Task[Any]] = set()

    # --- public API ------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def job_ids(self) -> list[str]:
        return [s.job_id for s in self._specs]

    def status(self) -> dict[str, Any]:
        """For /healthz; never touches the database."""
        if self._loop_task is None or self._stopped:
            state = "stopped"
        else:
            state = "leader" if self._leading else "standby"
        return {"scheduler": state, "jobs": len(self._specs)}

    def start(self) -> None:
        """Begin competing for leadership (needs a running event loop)."""
        if self._loop_task is not None:
            return
        self._stopped = False
        self._loop_task = asyncio.get_running_loop().create_task(self._leadership_loop(),
                                                                  name=f"scheduler-leader:{self.owner}")

    async def stop(self) -> None:
        """Graceful: stop competing, shut APScheduler down (cancelling running jobs), free the lease."""
        if self._loop_task is None or self._stopped:
            self._stopped = True
            return
        self._stopped = True
        self._stop_event.set()
        self._loop_task.cancel()
        try:
            await self._loop_task
        except asyncio.CancelledError:
            pass
        await self._step_down("stopping")
        await self._release_lease()

    # --- leadership ------------------------------------------------------------------------------

    async def _release_lease(self) -> None:
        """Hand over at once instead of making the next leader wait out the TTL."""
        try:
            async with asyncio.timeout(self._attempt_timeout_s * 2):
                async with self.services.session() as session:
                    await SchedulingRepository(session).release_lease(LEASE_NAME, self.owner)
        except Exception:  # the lease then simply expires after its TTL
            log.warning("scheduler %s: could not release the leader lease", self.owner, exc_info=True)

    async def _try_lease(self) -> bool:
        async with asyncio.timeout(self._attempt_timeout_s):
            async with self.services.session() as session:
                return await SchedulingRepository(session).acquire_lease(
                    LEASE_NAME, self.owner, timedelta(seconds=self.lease_ttl_s))

    async def _leadership_loop(self) -> None:
        try:
            while not self._stop_event.is_set():
                try:
                    held = await self._try_lease()
                except Exception as exc:  # incl. TimeoutError: unsure means not leader
                    log.warning("scheduler %s: lease renewal failed (%s); standing by",
                                self.owner, exc.__class__.__name__)
                    held = False
                if held and not self._leading:
                    try:
                        await self._take_over()
                    except Exception:
                        log.exception("scheduler %s: starting APScheduler failed; standing by", self.owner)
                        await self._step_down("start failed")
                        await self._release_lease()  # let a healthy process lead meanwhile
                elif not held and self._aps is not None:
                    await self._step_down("lease lost")
                try:
                    await asyncio.wait_for(self._stop_event.wait(), self.renew_every_s)
                except TimeoutError:
                    pass
        finally:
            if self._aps is not None:  # cancelled while leading: never leave jobs running unattended
                await asyncio.shield(self._step_down("leadership loop ended"))

    async def _take_over(self) -> None:
        loop = asyncio.get_running_loop()
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sonance-jobstore")
        engine_options: dict[str, Any] = (
            {"connect_args": {"check_same_thread": False, "timeout": 15}}
            if make_url(self._store_url).get_backend_name() == "sqlite"
            else {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2})
        store = SQLAlchemyJobStore(url=self._store_url, tablename=JOBSTORE_TABLE, engine_options=engine_options)
        self._aps = _OffLoopScheduler(self._io, jobstores={"default": store}, event_loop=loop, timezone=UTC,
                                      jobstore_retry_interval=max(1.0, self.renew_every_s))
        self._jobs_open = True
        for spec in self._specs:
            _LIVE[spec.job_id] = partial(self._invoke, spec)
        await loop.run_in_executor(self._io, self._start_and_register, self._aps)
        self._leading = True
        log.info("scheduler %s: leader; running %d job(s)", self.owner, len(self._specs))

    def _start_and_register(self, aps: _OffLoopScheduler) -> None:
        """On the store thread: start paused, sync the stored jobs with the JobSet, then resume."""
        aps.start(paused=True)
        wanted = {s.job_id for s in self._specs}
        for job in aps.get_jobs():
            if job.id not in wanted:  # a job dropped from the JobSet (or left by another version)
                aps.remove_job(job.id)
        for spec in self._specs:
            existing = aps.get_job(spec.job_id)
            extra: dict[str, Any] = {}
            if existing is not None and existing.name == spec.name and existing.next_run_time:
                extra["next_run_time"] = existing.next_run_time  # keep the clock across restarts
            aps.add_job(run_registered_job, trigger=spec.build_trigger(), args=[spec.job_id], id=spec.job_id,
                        name=spec.name, replace_existing=True, coalesce=True, max_instances=1,
                        misfire_grace_time=spec.misfire_grace_time, **extra)
        aps.resume()

    async def _step_down(self, why: str) -> None:
        was_leading = self._leading
        self._leading = self._jobs_open = False
        for spec in self._specs:  # first, so that nothing already submitted can still start
            if (live := _LIVE.get(spec.job_id)) is not None and getattr(live, "func", None) == self._invoke:
                del _LIVE[spec.job_id]
        aps, io = self._aps, self._io
        self._aps = self._io = None
        if io is not None:  # let an in-flight registration / job-store query finish (it may still
            # submit a job: the emptied registry turns it into a no-op); a new term gets a new thread
            await asyncio.get_running_loop().run_in_executor(None, partial(io.shutdown, wait=True))
        if aps is not None and aps.state != STATE_STOPPED:
            try:
                aps.shutdown(wait=False)
            except Exception:
                log.warning("scheduler %s: APScheduler shutdown failed", self.owner, exc_info=True)
        for task in list(self._running_jobs):
            task.cancel()
        if self._running_jobs:
            await asyncio.gather(*self._running_jobs, return_exceptions=True)
        await asyncio.sleep(0)  # let APScheduler's loop-side shutdown (timer, executor) run
        if was_leading:
            log.info("scheduler %s: standing down (%s)", self.owner, why)

    # --- running one job -------------------------------------------------------------------------

    async def _invoke(self, spec: JobSpec) -> None:
        """A job's failure is logged with its id and never reaches APScheduler or other jobs."""
        if not self._jobs_open:
            return
        task = asyncio.current_task()
        if task is not None:
            self._running_jobs.add(task)
        started = time.monotonic()
        try:
            await spec.func()
        except asyncio.CancelledError:
            # Only a step-down cancels a job; ending quietly keeps APScheduler from logging an error.
            log.info("scheduled job %r cancelled (scheduler stepping down)", spec.job_id)
        except Exception:
            log.exception("scheduled job %r failed", spec.job_id)
        else:
            log.debug("scheduled job %r done in %.2fs", spec.job_id, time.monotonic() - started)
        finally:
            if task is not None:
                self._running_jobs.discard(task)
