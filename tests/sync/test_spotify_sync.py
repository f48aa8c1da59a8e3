"""Spotify sync against the local Spotify API + Accounts fake and a real database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.config import Settings
from core.db.models import LinkedAccount, Listen, Track
from core.db.repositories import AccountRepository, ListenRepository, UserRepository
from core.services import Services
from core.sources.http import RetryPolicy
from core.sources.spotify import SpotifyClient
from core.sync.engine import SyncReport
from core.sync.spotify_sync import SpotifySync
from tests.conftest import make_settings
from tests.fakes.spotify_server import SpotifyFake, make_track

BASE_MS = 1_700_000_000_000
FAST_RETRY = RetryPolicy(attempts=3, base_delay_s=0.02, max_delay_s=0.05, max_retry_after_s=5.0)


@pytest.fixture
async def spotify_fake() -> AsyncIterator[SpotifyFake]:
    async with SpotifyFake() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, tmp_path: Path, spotify_fake: SpotifyFake) -> Settings:
    """The shared `services` fixture, pointed at the fake (overrides conftest's `settings`)."""
    return make_settings(database_url, tmp_path, **spotify_fake.settings_overrides())


@pytest.fixture
async def sync(services: Services) -> SpotifySync:
    await services.start_clients()
    assert services.spotify is not None and services.limiters is not None and services.http is not None
    # the production client, with quicker backoff so outage tests stay fast (Retry-After still rules)
    services.spotify = SpotifyClient(services.settings, services.http, services.limiters.spotify,
                                     retry=FAST_RETRY, timeout_s=2)
    return SpotifySync(services, owner="test-worker")


def played(fake: SpotifyFake, user: str, n: int, offset: int = 0) -> None:
    fake.users[user].recent.extend(
        (BASE_MS + (offset + i) * 240_000, make_track(f"t{offset + i}", f"Song {offset + i}", f"Band {(offset + i) % 3}",
                                                     "LP"))
        for i in range(n))


async def link(services: Services, fake: SpotifyFake, user: str, *, discord_id: int = 7001,
               lastfm_too: bool = False) -> tuple[int, int, dict[str, str]]:
    grant = fake.grant(user)
    async with services.session() as s:
        owner = await UserRepository(s).get_or_create_discord(discord_id, user)
        account = await AccountRepository(s, services.cipher).link(
            owner.id, "spotify", user, access_token=grant["access_token"], refresh_token=grant["refresh_token"],
            expires_at=datetime.fromtimestamp(time.time() + 3600, UTC), scope=grant["scope"])
        if lastfm_too:
            await AccountRepository.without_cipher(s).link(owner.id, "lastfm", f"{user}-fm")
        return owner.id, account.id, grant


async def account_row(services: Services, account_id: int) -> LinkedAccount:
    async with services.session() as s:
        account = await AccountRepository.without_cipher(s).by_id(account_id)
        assert account is not None
        return account


async def test_first_sync_ingests_recent_plays_then_nothing_new(services: Services, sync: SpotifySync,
                                                                spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("alice")
    played(spotify_fake, "alice", 12)
    user_id, account_id, _ = await link(services, spotify_fake, "alice")

    first = await sync.sync_account(account_id)
    assert first.status == "ok" and first.fetched == 12 and first.inserted == 12
    account = await account_row(services, account_id)
    assert account.sync_cursor == {"after_ms": BASE_MS + 11 * 240_000}
    assert account.last_sync_status == "ok" and account.last_failure_reason is None
    assert account.lock_owner is None
    assert account.last_listen_at == datetime.fromtimestamp((BASE_MS + 11 * 240_000) / 1000, UTC)
    async with services.session() as s:
        assert await ListenRepository(s).count_listens(user_id) == 12
        sources = set((await s.execute(select(Listen.source))).scalars())
        spotify_ids = set((await s.execute(select(Track.spotify_id))).scalars())
    assert sources == {"spotify"} and spotify_ids == {f"t{i}" for i in range(12)}

    again = await sync.sync_account(account_id)
    assert again.status == "ok" and again.fetched == 0 and again.inserted == 0
    assert (await account_row(services, account_id)).sync_cursor == {"after_ms": BASE_MS + 11 * 240_000}
    assert sum("recently-played" in path for _, _, path, _ in spotify_fake.log) == 2

    played(spotify_fake, "alice", 3, offset=12)
    newer = await sync.sync_account(account_id)
    assert newer.fetched == 3 and newer.inserted == 3


async def test_expired_access_token_is_refreshed_and_stored_encrypted(services: Services, sync: SpotifySync,
                                                                     spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("bob")
    played(spotify_fake, "bob", 4)
    _, account_id, grant = await link(services, spotify_fake, "bob")
    spotify_fake.expire_access_tokens("bob")  # Spotify answers 401 "The access token expired"

    report = await sync.sync_account(account_id)
    assert report.status == "ok" and report.inserted == 4
    assert [r["grant_type"] for r in spotify_fake.token_requests] == ["refresh_token"]
    new_access = next(t for t, (user, expires) in spotify_fake.access.items()
                      if user == "bob" and expires > time.time())
    assert new_access != grant["access_token"]

    async with services.engine.connect() as conn:  # the raw bytes on disk, not through the ORM
        row = (await conn.execute(select(LinkedAccount.__table__.c.access_token_enc,
                                         LinkedAccount.__table__.c.refresh_token_enc)
                                  .where(LinkedAccount.__table__.c.id == account_id))).one()
    raw_access, raw_refresh = bytes(row[0]), bytes(row[1])
    assert new_access.encode() not in raw_access and grant["refresh_token"].encode() not in raw_refresh
    account = await account_row(services, account_id)
    assert AccountRepository(None, services.cipher).tokens(account) == (new_access, grant["refresh_token"])  # type: ignore[arg-type]
    assert account.token_expires_at is not None and account.token_expires_at.timestamp() > time.time() + 3000

    # the next run uses the stored (new) token directly: no further refresh
    assert (await sync.sync_account(account_id)).status == "ok"
    assert len(spotify_fake.token_requests) == 1


async def test_revoked_token_is_a_stored_reason(services: Services, sync: SpotifySync,
                                                spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("carol")
    played(spotify_fake, "carol", 2)
    user_id, account_id, _ = await link(services, spotify_fake, "carol")
    spotify_fake.revoke("carol")

    report = await sync.sync_account(account_id)
    assert report.status == "error" and report.reason == "spotify_token_revoked"
    account = await account_row(services, account_id)
    assert account.last_failure_reason == "spotify_token_revoked" and account.last_sync_status == "error"
    assert account.last_failure_message and account.lock_owner is None
    async with services.session() as s:
        assert await ListenRepository(s).count_listens(user_id) == 0


async def test_outage_keeps_cursor_and_reason_is_spotify_unavailable(services: Services, sync: SpotifySync,
                                                                     spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("dan")
    played(spotify_fake, "dan", 3)
    _, account_id, _ = await link(services, spotify_fake, "dan")
    assert (await sync.sync_account(account_id)).inserted == 3
    cursor = (await account_row(services, account_id)).sync_cursor

    played(spotify_fake, "dan", 2, offset=3)
    spotify_fake.fail_next("http", status=503, count=10, path="recently-played")
    report = await sync.sync_account(account_id)
    assert report.status == "error" and report.reason == "spotify_unavailable"
    account = await account_row(services, account_id)
    assert account.sync_cursor == cursor and account.last_failure_reason == "spotify_unavailable"

    spotify_fake.failures.clear()
    assert (await sync.sync_account(account_id)).inserted == 2
    assert (await account_row(services, account_id)).last_failure_reason is None


async def test_429_retry_after_is_honoured(services: Services, sync: SpotifySync, spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("erin")
    played(spotify_fake, "erin", 5)
    _, account_id, _ = await link(services, spotify_fake, "erin")
    spotify_fake.fail_next("429", retry_after=0.4, path="recently-played")

    report = await sync.sync_account(account_id)
    assert report.status == "ok" and report.inserted == 5
    calls = [t for t, _, path, _ in spotify_fake.log if "recently-played" in path]
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.4


async def test_lastfm_users_get_spotify_ids_but_no_double_counted_listens(
        services: Services, sync: SpotifySync, spotify_fake: SpotifyFake) -> None:
    spotify_fake.add_user("fay")
    played(spotify_fake, "fay", 4)
    user_id, account_id, _ = await link(services, spotify_fake, "fay", lastfm_too=True)

    report = await sync.sync_account(account_id)
    assert report.status == "ok" and report.fetched == 4 and report.inserted == 0
    assert report.message and "Last.fm" in report.message
    assert (await account_row(services, account_id)).sync_cursor == {"after_ms": BASE_MS + 3 * 240_000}
    async with services.session() as s:
        assert await ListenRepository(s).count_listens(user_id) == 0


async def test_sync_due_picks_spotify_accounts_and_a_busy_account_is_skipped(
        services: Services, sync: SpotifySync, spotify_fake: SpotifyFake) -> None:
    for n, name in enumerate(("gus", "hal")):
        spotify_fake.add_user(name)
        played(spotify_fake, name, 2 + n)
    _, gus, _ = await link(services, spotify_fake, "gus", discord_id=1)
    _, hal, _ = await link(services, spotify_fake, "hal", discord_id=2)
    async with services.session() as s:  # another process holds hal's lock
        assert await AccountRepository.without_cipher(s).try_lock(hal, "other-process", timedelta(minutes=5))

    reports = {r.account_id: r for r in await sync.sync_due()}
    assert reports[gus].status == "ok" and reports[gus].inserted == 2
    assert reports[hal].status == "busy"
    again = await sync.sync_due()
    assert [(r.account_id, r.status) for r in again] == [(hal, "busy")], "gus is not due right after a sync"


async def relinked_mid_sync(services: Services, sync: SpotifySync, spotify_fake: SpotifyFake,
                            old_account_fails: bool) -> tuple[SyncReport, int, int]:
    """A sync of "old-sp" waits for Spotify (slow, or refused again and again) while the member links
    "new-sp" on the same row. Returns (the sync's report, user id, account id)."""
    spotify_fake.add_user("old-sp")
    spotify_fake.add_user("new-sp")
    played(spotify_fake, "old-sp", 5)
    user_id, account_id, _ = await link(services, spotify_fake, "old-sp")
    if old_account_fails:
        spotify_fake.fail_next("429", retry_after=0.5, count=20, path="/v1/me/player/recently-played", user="old-sp")
    else:
        spotify_fake.fail_next("slow", delay=1.0, path="/v1/me/player/recently-played", user="old-sp")
    running = asyncio.create_task(sync.sync_account(account_id))
    await asyncio.sleep(0.2)
    grant = spotify_fake.grant("new-sp")
    async with services.session() as s:
        await AccountRepository(s, services.cipher).link(user_id, "spotify", "new-sp",
                                                         access_token=grant["access_token"])
    return await running, user_id, account_id


async def test_a_sync_of_a_relinked_account_writes_nothing(services: Services, sync: SpotifySync,
                                                           spotify_fake: SpotifyFake) -> None:
    """Keyed by identity (issue 16 §1): the member links another Spotify account while a sync of the
    old one waits for Spotify; that sync stops as `stale` without writing the old account's plays."""
    report, user_id, account_id = await relinked_mid_sync(services, sync, spotify_fake, old_account_fails=False)
    assert report.status == "stale" and report.inserted == 0
    async with services.session() as s:
        assert await ListenRepository(s).count_listens(user_id) == 0
    row = await account_row(services, account_id)
    assert row.external_id == "new-sp" and row.last_sync_status is None and row.lock_owner is None


async def test_a_failing_sync_of_a_relinked_account_does_not_mark_the_new_one(
        services: Services, sync: SpotifySync, spotify_fake: SpotifyFake) -> None:
    """Spotify keeps refusing the old account while its sync retries, and the member links another
    account meanwhile: the old sync's failure must not be written onto the new account's row."""
    report, _, account_id = await relinked_mid_sync(services, sync, spotify_fake, old_account_fails=True)
    assert report.status == "error" and report.inserted == 0
    row = await account_row(services, account_id)
    assert row.external_id == "new-sp" and row.last_sync_status is None and row.last_failure_reason is None
