"""Incremental, crash-safe, exclusive listening-history sync from Last.fm.

The contract:
- **Exclusive**: an account is synced by one worker at a time, across processes (a conditional
  UPDATE on `linked_accounts.lock_*`, renewed on every page; an expired lock can be taken over).
- **Keyed by identity**: a run captures the Last.fm username it starts with and re-checks it in the
  same transaction as every batch it writes (and its final status). If the member re-linked another
  Last.fm account meanwhile, the run stops as `stale` and writes nothing more: a stale import can
  never put one account's listens, cursor or "complete" flag on another.
- **Crash-safe**: each page's listens and the cursor that follows them commit in ONE transaction,
  so a sync killed mid-way resumes from its cursor and loses nothing (see `lastfm_history`).
- **Idempotent**: listens are unique per (user, played_at, track); re-reading the boundary second
  or a whole page inserts nothing.
- **Failures are stored, not raised**: a private profile or an unknown user becomes a reason code
  the bot shows in /account; a service outage keeps the cursor so the next run catches up; other
  accounts' syncs go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.cache import Cache
from core.db.repositories import AccountRepository
from core.db.types import utcnow
from core.errors import AccountProblem, SourceUnavailable
from core.services import Services
from core.sources.lastfm import LastfmClient
from core.sources.lastfm_history import HistoryCursor, HistoryPage, iterate_history
from core.sync.ingest import CatalogIds, RawListen, ingest_listens

log = logging.getLogger(__name__)

LOCK_TTL = timedelta(minutes=5)
#: Cache namespaces holding per-user results that new listens make stale.
USER_DERIVED_NAMESPACES = ("recs", "compat", "leaderboard", "top")

Progress = Callable[[HistoryPage], None]


@dataclass(frozen=True)
class SyncReport:
    account_id: int
    status: str  # ok | busy | error | stale (the account was re-linked to another identity mid-run)
    pages: int = 0
    fetched: int = 0
    inserted: int = 0
    reason: str | None = None
    message: str | None = None
    complete: bool = False


class StaleImport(Exception):
    """The account now links another external identity than the one this run started with."""


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def hold_lock(accounts: AccountRepository, account_id: int, owner: str, external_id: str) -> None:
    """Re-take the sync lock before writing a batch, in the batch's transaction (see
    `AccountRepository.try_lock`): `StaleImport` when the account was re-linked to another identity
    meanwhile, `RuntimeError` when another worker took the lock. Every provider's sync writes
    through this one check."""
    if not await accounts.try_lock(account_id, owner, LOCK_TTL, external_id=external_id):
        if not await accounts.links(account_id, external_id):
            raise StaleImport(external_id)
        raise RuntimeError("sync lock lost to another worker")


def _raw(rows: list) -> list[RawListen]:  # type: ignore[type-arg]
    return [RawListen(artist=r.artist, track=r.track, album=r.album, played_at=r.played_at, source="lastfm",
                      artist_mbid=r.artist_mbid, track_mbid=r.track_mbid, album_mbid=r.album_mbid,
                      track_url=r.url) for r in rows]


async def invalidate_user_caches(cache: Cache, user_id: int) -> None:
    for namespace in USER_DERIVED_NAMESPACES:
        await cache.delete_matching(namespace, f"u{user_id}:")


class LastfmSync:
    """Syncs Last.fm accounts; one instance per process, shared by the scheduler and commands."""

    def __init__(self, services: Services, client: LastfmClient, *, owner: str | None = None,
                 prefetch: int = 2, commit_rows: int = 1000) -> None:
        self.services = services
        self.client = client
        self.owner = owner or default_owner()
        self.prefetch = prefetch
        self.commit_rows = commit_rows  # plays per transaction: fewer round trips, same crash safety

    async def _cursor_for(self, account_id: int) -> tuple[int, str, HistoryCursor]:
        async with self.services.session() as session:
            account = await AccountRepository.without_cipher(session).by_id(account_id)
            if account is None or account.provider != "lastfm":
                raise LookupError(f"no Last.fm account {account_id}")
            stored = account.sync_cursor
            if stored and not stored.get("done") and stored.get("user", "").lower() == account.external_id.lower():
                cursor = HistoryCursor.from_dict(stored)
            elif account.history_complete and account.last_listen_at is not None:
                cursor = HistoryCursor.incremental(account.external_id, int(account.last_listen_at.timestamp()))
            else:
                cursor = HistoryCursor.full(account.external_id)
            await AccountRepository.without_cipher(session).record_sync(
                account_id, status="running", reason=account.last_failure_reason,
                message=account.last_failure_message)
            return account.user_id, account.external_id, cursor

    async def sync_account(self, account_id: int, progress: Progress | None = None) -> SyncReport:
        """Sync one account now; returns what happened (never raises for source problems)."""
        async with self.services.session() as session:
            if not await AccountRepository.without_cipher(session).try_lock(account_id, self.owner, LOCK_TTL):
                return SyncReport(account_id, "busy", message="another sync of this account is running")
        pages = fetched = inserted = 0
        newest = None
        identity: str | None = None  # the Last.fm username this run imports; every write re-checks it
        try:
            user_id, username, cursor = await self._cursor_for(account_id)
            identity = username
            batches: asyncio.Queue[list[HistoryPage] | BaseException | None] = asyncio.Queue(maxsize=2)
            known = CatalogIds()  # this run's resolved spellings; dropped with the run if a batch fails

            async def fetch() -> None:
                """Producer: reads pages ahead while the previous batch is being written."""
                buffered: list[HistoryPage] = []
                try:
                    async for page in iterate_history(self.client, cursor, prefetch=self.prefetch):
                        buffered.append(page)
                        if sum(len(p.rows) for p in buffered) >= self.commit_rows or page.cursor.done:
                            await batches.put(buffered)
                            buffered = []
                    if buffered:
                        await batches.put(buffered)
                    await batches.put(None)
                except asyncio.CancelledError:
                    # The writer failed and is stopping us: handing this over would block forever on a
                    # full queue nobody reads any more (the sync, its lock and sync_due would hang).
                    raise
                except BaseException as exc:  # handed to the writer, which re-raises it in order
                    await batches.put(exc)

            async def commit(batch: list[HistoryPage]) -> int:
                """Store a batch's plays and the cursor that follows them in one transaction."""
                async with self.services.session() as session:
                    accounts = AccountRepository.without_cipher(session)
                    await hold_lock(accounts, account_id, self.owner, username)
                    result = await ingest_listens(session, user_id, _raw([r for p in batch for r in p.rows]), known,
                                                  account_id=account_id)
                    await accounts.save_cursor(account_id, batch[-1].cursor.to_dict())
                return result.inserted

            producer = asyncio.create_task(fetch(), name=f"lastfm-fetch-{account_id}")
            try:
                while (batch := await batches.get()) is not None:
                    if isinstance(batch, BaseException):
                        raise batch
                    inserted += await commit(batch)
                    for page in batch:
                        pages += 1
                        fetched += len(page.rows)
                        newest = page.cursor.newest_uts or newest
                        if progress is not None:
                            progress(page)
            finally:
                if not producer.done():
                    producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)
            async with self.services.session() as session:
                last = datetime.fromtimestamp(newest, UTC) if newest else None
                accounts = AccountRepository.without_cipher(session)
                if not await accounts.links(account_id, username):
                    raise StaleImport(username)
                await accounts.record_sync(account_id, status="ok", history_complete=True, last_listen_at=last,
                                           external_id=username)
            if inserted:
                await invalidate_user_caches(self.services.cache, user_id)
            log.info("synced %s: %d pages, %d plays read, %d new", username, pages, fetched, inserted,
                     extra={"account_id": account_id, "user_id": user_id, "job": "sync"})
            return SyncReport(account_id, "ok", pages, fetched, inserted, complete=True)
        except StaleImport:
            log.info("sync stopped: the account was re-linked to another Last.fm user mid-run",
                     extra={"account_id": account_id, "job": "sync", "inserted": inserted})
            return SyncReport(account_id, "stale", pages, fetched, inserted, message="account re-linked")
        except AccountProblem as exc:
            await self._record_failure(account_id, exc.reason, exc.user_message, identity)
            return SyncReport(account_id, "error", pages, fetched, inserted, exc.reason, exc.user_message)
        except SourceUnavailable as exc:
            await self._record_failure(account_id, "lastfm_unavailable", exc.user_message, identity)
            return SyncReport(account_id, "error", pages, fetched, inserted, "lastfm_unavailable", exc.user_message)
        except Exception:
            # Anything else (e.g. the database restarted mid-batch): committed batches and their cursor
            # stay, so the next run resumes. Record the failure so the account does not look "running"
            # until then (that also stops a re-link from starting an import); best effort, as the
            # database may still be unreachable. The caller (sync_due) logs and reports the exception.
            with contextlib.suppress(Exception):
                await self._record_failure(account_id, "internal_error",
                                           "The last sync was interrupted; it will be retried.", identity)
            raise
        finally:
            async with self.services.session() as session:
                await AccountRepository.without_cipher(session).unlock(account_id, self.owner, external_id=identity)

    async def _record_failure(self, account_id: int, reason: str, message: str, identity: str | None) -> None:
        """Store the failure on the account, unless it was re-linked: it is not the new account's."""
        log.warning("lastfm sync failed: %s", reason, extra={"account_id": account_id, "job": "sync"})
        async with self.services.session() as session:
            await AccountRepository.without_cipher(session).record_sync(account_id, status="error", reason=reason,
                                                               message=message[:500], external_id=identity)

    async def sync_due(self, *, concurrency: int = 4, active_minutes: int = 15) -> list[SyncReport]:
        """The scheduler's job: sync Last.fm accounts whose cadence has come.

        The shared Last.fm limiter keeps all of them together within the API's budget.
        """
        return await sync_due_accounts(self.services, "lastfm", self.sync_account,
                                       concurrency=concurrency, active_minutes=active_minutes)


async def sync_due_accounts(services: Services, provider: str, sync_one: Callable[[int], Awaitable[SyncReport]],
                            *, concurrency: int = 4, active_minutes: int = 15) -> list[SyncReport]:
    """Sync every `provider` account whose cadence has come: active listeners (a listen in the last
    14 days) every `active_minutes`, dormant ones daily. One account's failure — even a bug in its
    data — does not stop the others."""
    now = utcnow()
    async with services.session() as session:
        due = await AccountRepository.without_cipher(session).due_for_sync(
            provider, active_before=now - timedelta(minutes=active_minutes),
            dormant_before=now - timedelta(days=1), active_since=now - timedelta(days=14))
    gate = asyncio.Semaphore(concurrency)

    async def one(account_id: int) -> SyncReport:
        async with gate:
            try:
                return await sync_one(account_id)
            except Exception:
                log.exception("%s sync crashed", provider, extra={"account_id": account_id, "job": "sync"})
                return SyncReport(account_id, "error", reason="internal_error")

    return list(await asyncio.gather(*(one(a.id) for a in due)))
