"""The base corpus: HetRec's 1,892 listeners imported into a near-empty database, so that a fresh
server's first recommendations are learnt from more than a few dozen members (issue 12: NDCG@10
0.216 -> 0.302 on 30-member communities).

Rules, and why:
- **Never in the way.** `sonance run` starts the import as a background task
  (`start_base_import`); the download and the import itself run on a worker thread with their own
  event loop and database engine, so parsing 280,000 rows never stalls the bot's loop. A failure
  (no network, a checksum mismatch, a malformed file) logs one line and the bot carries on.
- **Only when it helps.** "Near-empty" means fewer than `SONANCE_BASE_MAX_MEMBERS` (default 100)
  listeners of the server's own with any plays; base listeners do not count. A database that already
  holds the base corpus is left alone, so restarts are free, and the import itself is idempotent.
  A database lease keeps two processes from importing at once: the importer renews a short lease
  while it works, so one killed mid-import frees it within `LEASE_TTL`; a process that finds the
  lease taken waits for it, then checks again (it imports only if the base is still missing).
- **Never members.** Base listeners have `users.origin = 'hetrec'` and no Discord id: they have no
  guild membership, so /whoknows, leaderboards, /compat, /matches and exports cannot reach them
  (`UserRepository.visible_member_ids` also checks the Discord id, as a second line).
- **Removable.** `drop_base_corpus` (`sonance db drop-base`) deletes base listeners and every row
  about them, keeping members' data and the catalogue; the next training learns without them. It
  takes the same lease, so a drop during an import waits for it and then drops what it imported.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from core.config import Settings
from core.datasets import downloads_dir, fetch_hetrec, find_hetrec_dir
from core.db.engine import create_engine, session_factory
from core.db.repositories import SchedulingRepository, UserRepository
from core.db.repositories.personal_data import PersonalDataRepository
from core.db.repositories.users import BASE_ORIGIN
from core.errors import ConfigError, NotEnoughHistory, SonanceError
from core.services import Services

log = logging.getLogger(__name__)

LEASE_NAME = "base-corpus-import"
#: Short, and renewed every `LEASE_RENEW_S` while the import runs: a killed importer's lease must not
#: keep the next start from importing for long (the import is only tried at start).
LEASE_TTL = timedelta(minutes=2)
LEASE_RENEW_S = 30.0
LEASE_POLL_S = 2.0  # how often a process that found the lease taken asks again
T = TypeVar("T")


@dataclass(frozen=True)
class BaseImportOutcome:
    status: str  # imported | skipped | failed
    reason: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def resolve_base_folder(settings: Settings) -> Path:
    """Where the base corpus's files are, downloading HetRec when `hetrec` is chosen and no copy is
    at hand (blocking: call it in a thread). Raises ConfigError / ImportFileError with one line."""
    choice = settings.base_dataset.strip()
    if choice.lower() == "hetrec":
        for candidate in (downloads_dir(settings), settings.dataset_dir):
            if candidate is not None and (found := find_hetrec_dir(candidate)) is not None:
                return found
        log.info("base corpus: downloading HetRec from %s", settings.base_dataset_url)
        return fetch_hetrec(settings)
    folder = find_hetrec_dir(Path(choice).expanduser())
    if folder is None:
        raise ConfigError(f"SONANCE_BASE_DATASET={choice}: no HetRec files (user_artists.dat) in that folder.")
    return folder


async def base_import_needed(services: Services) -> str | None:
    """Why the base corpus should NOT be imported now (None: import it)."""
    settings = services.settings
    if settings.base_dataset.strip().lower() == "none":
        return "SONANCE_BASE_DATASET=none"
    async with services.session() as session:
        counts = await UserRepository(session).listener_counts()
    if counts.get(BASE_ORIGIN, 0) > 0:
        return f"already present ({counts[BASE_ORIGIN]:,} base listeners)"
    own = sum(n for origin, n in counts.items() if origin != BASE_ORIGIN)
    if own >= settings.base_max_members:
        return f"not needed ({own:,} listeners of this server's own, SONANCE_BASE_MAX_MEMBERS={settings.base_max_members})"
    return None


def _download_and_import(settings: Settings) -> tuple[Path, dict[str, int]]:
    folder = resolve_base_folder(settings)
    log.info("base corpus: importing %s in the background", folder)
    return folder, _import_on_own_loop(settings.async_database_url, folder)


async def _in_daemon_thread(func: Callable[..., T], *args: Any) -> T:
    """Run `func` on a daemon thread and await its result.

    Why not `asyncio.to_thread`: the default executor is joined when the loop closes, so a SIGTERM
    during a download would wait for it. A daemon thread dies with the process; its import is one
    transaction, so nothing half-written is left behind."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(setter: Callable[[Any], None], value: Any) -> None:
        if not future.done():
            setter(value)

    def target() -> None:
        try:
            result = func(*args)
        except BaseException as exc:  # handed to the awaiting task, which logs it
            if not loop.is_closed():
                loop.call_soon_threadsafe(deliver, future.set_exception, exc)
        else:
            if not loop.is_closed():
                loop.call_soon_threadsafe(deliver, future.set_result, result)

    threading.Thread(target=target, name="sonance-base-corpus", daemon=True).start()
    return await future


def _import_on_own_loop(database_url: str, folder: Path) -> dict[str, int]:
    """The whole import on this (worker) thread: its own loop, engine and one transaction."""
    from core.sync.imports import import_hetrec

    def progress(rows: int) -> None:
        log.info("base corpus: %s rows read from %s", f"{rows:,}", folder)

    async def run() -> dict[str, int]:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                report = await import_hetrec(session, folder, progress)
            return dict(report.counts)
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def import_base_corpus(services: Services, *, retrain: bool = True) -> BaseImportOutcome:
    """Import the base corpus if the database is near-empty. Never raises for a bad download or file:
    those are logged in one line and reported as `failed`."""
    started = time.monotonic()
    why_not = await base_import_needed(services)
    if why_not is not None:
        log.info("base corpus: not importing: %s", why_not)
        return BaseImportOutcome("skipped", why_not)
    owner = f"base-import:{uuid.uuid4().hex[:8]}"
    await _take_lease(services, owner)
    try:
        why_not = await base_import_needed(services)  # another process may have imported it meanwhile
        if why_not is not None:
            log.info("base corpus: not importing: %s", why_not)
            return BaseImportOutcome("skipped", why_not)
        keeper = asyncio.get_running_loop().create_task(_keep_lease(services, owner), name="base-corpus-lease")
        try:
            folder, counts = await _in_daemon_thread(_download_and_import, services.settings)
        finally:
            keeper.cancel()
            await asyncio.wait([keeper])  # its session closed before the lease is released below
    except SonanceError as exc:
        log.warning("base corpus: not imported (%s); Sonance runs without it", exc.user_message)
        return BaseImportOutcome("failed", exc.user_message, seconds=time.monotonic() - started)
    except Exception as exc:  # e.g. a database error: still one line, and the bot keeps working
        log.warning("base corpus: not imported (%s: %s); Sonance runs without it", type(exc).__name__, exc)
        return BaseImportOutcome("failed", f"{type(exc).__name__}: {exc}", seconds=time.monotonic() - started)
    finally:
        async with services.session() as session:
            await SchedulingRepository(session).release_lease(LEASE_NAME, owner)
    seconds = time.monotonic() - started
    log.info("base corpus: imported in %.1fs: %s", seconds, ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if retrain:
        await _retrain(services)
    return BaseImportOutcome("imported", str(folder), counts, seconds)


async def _take_lease(services: Services, owner: str, on_wait: Callable[[], None] | None = None) -> None:
    """Take the import lease, waiting while another process holds it (it renews it while it works;
    a killed one's lapses within `LEASE_TTL`)."""
    waiting = False
    while True:
        async with services.session() as session:
            if await SchedulingRepository(session).acquire_lease(LEASE_NAME, owner, LEASE_TTL):
                return
        if not waiting:
            log.info("base corpus: another process is importing or dropping it; waiting for it to finish")
            if on_wait is not None:
                on_wait()
            waiting = True
        await asyncio.sleep(LEASE_POLL_S)


async def _keep_lease(services: Services, owner: str) -> None:
    """Renew the import lease until cancelled. A failed renewal is retried at the next beat: were the
    lease lost, a second process would import too, which the idempotent import survives."""
    while True:
        await asyncio.sleep(LEASE_RENEW_S)
        try:
            async with services.session() as session:
                if not await SchedulingRepository(session).acquire_lease(LEASE_NAME, owner, LEASE_TTL):
                    log.warning("base corpus: another process took over the import lease")
        except Exception as exc:  # e.g. SQLite busy behind the import's own transaction: try again
            log.info("base corpus: could not renew the import lease (%s: %s)", type(exc).__name__, exc)


async def _retrain(services: Services) -> None:
    """Learn from the base corpus now rather than at the nightly retrain (in a worker thread)."""
    from core.recommender.service import RecommendService

    recommender = RecommendService.of(services)
    try:
        if recommender.training_in_progress():  # started before the import (e.g. the warm-up): let it
            await recommender.retrain()  # finish, then train again so the new model sees the base
        await recommender.retrain()
    except NotEnoughHistory as exc:
        log.info("base corpus: no retrain (%s)", exc.user_message)
    except Exception:
        log.warning("base corpus: retraining after the import failed; the nightly retrain will use it",
                    exc_info=True)


def start_base_import(services: Services) -> asyncio.Task[BaseImportOutcome]:
    """Start `import_base_corpus` in the background (for `sonance run`); the caller keeps the task."""
    return asyncio.get_running_loop().create_task(import_base_corpus(services), name="base-corpus-import")


async def drop_base_corpus(services: Services, on_wait: Callable[[], None] | None = None) -> dict[str, int]:
    """Delete the base listeners and every row about them (one transaction); members' data and the
    catalogue stay. Returns rows deleted per table.

    It holds the import lease while it deletes: run during an import, it would otherwise delete
    nothing and the import would commit right after. It waits for that import instead (`on_wait` is
    called once when it starts waiting, for the CLI to say so), then drops what it imported."""
    owner = f"base-drop:{uuid.uuid4().hex[:8]}"
    await _take_lease(services, owner, on_wait)
    try:
        async with services.session() as session:
            counts = await PersonalDataRepository(session).forget_dataset_listeners(BASE_ORIGIN)
    finally:
        async with services.session() as session:
            await SchedulingRepository(session).release_lease(LEASE_NAME, owner)
    log.info("base corpus dropped: %s", counts)
    return counts
