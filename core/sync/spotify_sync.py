"""Spotify listening sync: a *supplement* to Last.fm, never the primary history.

Why only a supplement: Spotify's Web API exposes no listening history, only "recently played", and
that endpoint keeps the **last 50 plays** per user. A sync that runs after more than 50 new plays
has silently lost the older ones, and nothing can fetch them back. Last.fm keeps every scrobble
forever, so for anyone with both accounts Last.fm is the record of truth and Spotify adds:
- listens for users who linked only Spotify (polled often: `sync_due` follows the active cadence),
- Spotify track ids on catalog tracks (what playlist export needs), for everyone.

Double counting: Last.fm stamps a scrobble at the play's *start*, Spotify's `played_at` is its
*end*, so the same play arrives with two timestamps and the (user, played_at, track) uniqueness
cannot merge them. To keep play counts honest, Spotify plays of a user who also linked Last.fm are
**not** stored as listens by default (`ingest_with_lastfm=False`): Last.fm already has them when the
user scrobbles Spotify, which is why people link both.

Guarantees, the same as `LastfmSync`'s: one sync per account at a time (`try_lock`); the plays and
the cursor that follows them (`{"after_ms": …}` in `sync_cursor`) commit in ONE transaction, so a
crash re-reads the same plays and inserts nothing twice; a refreshed token is stored (encrypted) in
its own transaction the moment Spotify issues it, so a later failure cannot lose it; failures become
stored reason codes (`spotify_token_revoked`, `spotify_forbidden`, `spotify_unavailable`) and an
outage keeps the cursor.
"""

from __future__ import annotations

import logging

from core.db.repositories import AccountRepository, CatalogRepository
from core.errors import AccountProblem, NotFound, SourceUnavailable
from core.services import Services
from core.sources.spotify import REVOKED, SpotifyClient, SpotifyUserApi
from core.sources.spotify_models import RecentlyPlayed, SpotifyPlay
from core.sync.engine import (
    LOCK_TTL,
    StaleImport,
    SyncReport,
    default_owner,
    hold_lock,
    invalidate_user_caches,
    sync_due_accounts,
)
from core.sync.ingest import RawListen, catalog_keys, ingest_listens
from core.sync.spotify_tokens import stored_tokens, token_persister

log = logging.getLogger(__name__)

SOURCE = "spotify"
#: Spotify's recently-played window: a batch this full may have pushed older plays out of reach.
WINDOW = 50


def _raw(plays: list[SpotifyPlay]) -> list[RawListen]:
    return [RawListen(artist=p.track.artist, track=p.track.name, album=p.track.album, played_at=p.played_at,
                      source=SOURCE, spotify_track_id=p.track.id)
            for p in plays if p.track.artist and p.track.name]


def _spotify_ids(plays: list[SpotifyPlay]) -> dict[tuple[str, str], str]:
    """(artist name_key, track title_key) -> Spotify id, keyed exactly as `ingest_listens` keys tracks."""
    out: dict[tuple[str, str], str] = {}
    for p in plays:
        keys = catalog_keys(p.track.artist, p.track.name) if p.track.id else None
        if keys is not None:
            out[(keys[2], keys[3])] = p.track.id
    return out


class SpotifySync:
    """Syncs Spotify accounts; one instance per process (`services.spotify_sync`)."""

    def __init__(self, services: Services, client: SpotifyClient | None = None, *, owner: str | None = None,
                 ingest_with_lastfm: bool = False) -> None:
        self.services = services
        self._client = client
        self.owner = owner or default_owner()
        self.ingest_with_lastfm = ingest_with_lastfm

    @property
    def client(self) -> SpotifyClient:
        """The Spotify client, looked up late: `services.spotify` exists only after `start_clients`."""
        client = self._client or self.services.spotify
        if client is None:
            raise SourceUnavailable(SOURCE, "Spotify isn't configured on this bot.", detail="no Spotify client")
        return client

    async def _prepare(self, account_id: int) -> tuple[int, str, SpotifyUserApi, int | None, bool]:
        """(user id, Spotify user id, API handle, stored cursor, whether Last.fm is the primary history)."""
        async with self.services.session() as session:
            accounts = AccountRepository(session, self.services.cipher)
            account = await accounts.by_id(account_id)
            if account is None or account.provider != SOURCE:
                raise LookupError(f"no Spotify account {account_id}")
            tokens = stored_tokens(accounts, account)
            if tokens is None:
                raise AccountProblem(*REVOKED)
            after = (account.sync_cursor or {}).get("after_ms")
            lastfm = await accounts.get(account.user_id, "lastfm")
            await accounts.record_sync(account_id, status="running", reason=account.last_failure_reason,
                                       message=account.last_failure_message)
            identity = account.external_id
            api = self.client.for_user(tokens, on_refresh=token_persister(self.services, account_id, job="sync",
                                                                          identity=identity))
            return account.user_id, identity, api, int(after) if after is not None else None, lastfm is not None

    async def sync_account(self, account_id: int) -> SyncReport:
        """Sync one account now; returns what happened (never raises for source or account problems)."""
        async with self.services.session() as session:
            if not await AccountRepository.without_cipher(session).try_lock(account_id, self.owner, LOCK_TTL):
                return SyncReport(account_id, "busy", message="another sync of this account is running")
        fetched = inserted = 0
        identity: str | None = None  # the Spotify user this run reads; its write re-checks it (see engine.py)
        try:
            user_id, identity, api, after_ms, lastfm_primary = await self._prepare(account_id)
            batch: RecentlyPlayed = await api.recently_played(after_ms=after_ms, limit=WINDOW)
            fetched = len(batch.plays)
            store_listens = self.ingest_with_lastfm or not lastfm_primary
            async with self.services.session() as session:
                accounts = AccountRepository.without_cipher(session)
                await hold_lock(accounts, account_id, self.owner, identity)
                if store_listens and batch.plays:
                    inserted = (await ingest_listens(session, user_id, _raw(batch.plays))).inserted
                await CatalogRepository(session).fill_track_spotify_ids(_spotify_ids(batch.plays))
                cursor = {"after_ms": batch.after_ms} if batch.after_ms is not None else {}
                await accounts.save_cursor(account_id, cursor)
                newest = batch.plays[-1].played_at if batch.plays else None
                await accounts.record_sync(account_id, status="ok", last_listen_at=newest)
            if inserted:
                await invalidate_user_caches(self.services.cache, user_id)
            message = None
            if after_ms is not None and fetched >= WINDOW:
                message = "more than 50 plays since the last sync: older ones are out of Spotify's reach"
                log.warning("spotify sync may have missed plays", extra={"account_id": account_id, "job": "sync"})
            elif not store_listens:
                message = "Last.fm is this user's primary history; Spotify plays were not stored as listens"
            log.info("spotify synced: %d plays read, %d new", fetched, inserted,
                     extra={"account_id": account_id, "user_id": user_id, "job": "sync"})
            return SyncReport(account_id, "ok", 1, fetched, inserted, message=message, complete=True)
        except StaleImport:
            log.info("spotify sync stopped: the account was re-linked mid-run", extra={"account_id": account_id})
            return SyncReport(account_id, "stale", 0, fetched, inserted, message="account re-linked")
        except AccountProblem as exc:
            await self._record_failure(account_id, exc.reason, exc.user_message, identity)
            return SyncReport(account_id, "error", 0, fetched, inserted, exc.reason, exc.user_message)
        except (SourceUnavailable, NotFound) as exc:
            await self._record_failure(account_id, "spotify_unavailable", exc.user_message, identity)
            return SyncReport(account_id, "error", 0, fetched, inserted, "spotify_unavailable", exc.user_message)
        finally:
            async with self.services.session() as session:
                await AccountRepository.without_cipher(session).unlock(account_id, self.owner, external_id=identity)

    async def _record_failure(self, account_id: int, reason: str, message: str, identity: str | None) -> None:
        """Record the failure on the account this run read (`identity`): were the row re-linked to
        another Spotify user meanwhile, the old account's failure is not the new one's."""
        log.warning("spotify sync failed: %s", reason, extra={"account_id": account_id, "job": "sync"})
        async with self.services.session() as session:
            await AccountRepository.without_cipher(session).record_sync(account_id, status="error", reason=reason,
                                                               message=message[:500], external_id=identity)

    async def sync_due(self, *, concurrency: int = 4, active_minutes: int = 15) -> list[SyncReport]:
        """The scheduler's job: Spotify accounts whose cadence has come (same cadences as Last.fm).

        Active listeners every `active_minutes` keeps them well inside the 50-play window; a dormant
        account checked daily that suddenly plays a lot may lose plays once, then turns active.
        Does nothing when Spotify is not configured.
        """
        if self._client is None and self.services.spotify is None:
            return []
        return await sync_due_accounts(self.services, SOURCE, self.sync_account,
                                       concurrency=concurrency, active_minutes=active_minutes)
