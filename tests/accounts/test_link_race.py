"""Re-linking during an import (issue 16 §1): each account ends holding exactly its own scrobbles.

On both engines (SQLite by default, PostgreSQL with SONANCE_TEST_DATABASE_URL). The Last.fm fake
serves users with distinct histories; a slow first page keeps an import running (nothing of it
committed yet) while the member links another account:
- in this process (slash-command claim, then the web confirmation of another account): the old
  import is cancelled and awaited, the new account's history is imported;
- in another process (an import this process cannot cancel): the import stops as `stale` at its
  next write, because it is keyed by the Last.fm user it started with;
- eight simultaneous confirmations of eight different accounts for one member, through two service
  instances (two processes): one consistent outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core.accounts import AccountService
from core.asker import Asker
from core.db.models import Artist, Listen, Track
from core.db.repositories import AccountRepository, UserRepository
from core.services import Services, build_services
from core.sync.engine import LastfmSync
from tests.conftest import make_settings
from tests.fakes.lastfm_server import LastfmFake

DISCORD_ID = 4242
HOLD_S = 2.0  # how long the fake holds an import's first page: the window the race happens in


def history(name: str, n: int) -> list[tuple[int, str, str, str]]:
    """`n` plays that belong to `name` alone (their artists carry the name)."""
    return [(1_700_000_000 + 60 * i, f"{name} artist {i % 7}", f"{name} album", f"{name} track {i}") for i in range(n)]


def expected(name: str, n: int) -> set[tuple[int, str, str]]:
    return {(uts, artist, track) for uts, artist, _album, track in history(name, n)}


async def stored(services: Services, user_id: int) -> set[tuple[int, str, str]]:
    async with services.session() as s:
        rows = (await s.execute(select(Listen.played_at, Artist.name, Track.title)
                                .join(Track, Track.id == Listen.track_id).join(Artist, Artist.id == Track.artist_id)
                                .where(Listen.user_id == user_id))).all()
    return {(int(_utc(played).timestamp()), artist, title) for played, artist, title in rows}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Services, LastfmFake, int]]:
    async with LastfmFake() as fake:
        built = await build_services(make_settings(database_url, tmp_path, **fake.settings_overrides()),
                                     upgrade_schema=False)
        await built.start_clients()
        async with built.session() as s:
            member = (await UserRepository(s).get_or_create_discord(DISCORD_ID, "alice")).id
        try:
            yield built, fake, member
        finally:
            await built.close()


def hold_first_page(fake: LastfmFake, user: str, *, requests: int = 1) -> None:
    fake.fail_next("slow", delay=HOLD_S, method="user.getRecentTracks", user=user, count=requests)


async def confirm_web_auth(service: AccountService, fake: LastfmFake, lastfm_user: str) -> str:
    """The browser path: Last.fm approves a token for `lastfm_user`, the callback exchanges it."""
    fake.authorise_token(f"tok-{lastfm_user}", lastfm_user)
    pending = await service.begin_lastfm(f"tok-{lastfm_user}", service.signer().issue(DISCORD_ID, "lastfm"))
    assert pending.username == lastfm_user
    return pending.token


async def assert_account_is(services: Services, member: int, name: str, plays: int) -> None:
    assert await stored(services, member) == expected(name, plays), "the account holds another's listens"
    async with services.session() as s:
        account = await AccountRepository.without_cipher(s).get(member, "lastfm")
    assert account is not None and account.external_id == name
    assert account.history_complete and account.last_sync_status == "ok"
    assert account.sync_cursor and account.sync_cursor["user"] == name and account.lock_owner is None


async def test_relinking_in_the_browser_during_an_import_cancels_it_and_imports_the_new_account(
        world: tuple[Services, LastfmFake, int]) -> None:
    services, fake, member = world
    fake.add_user("alpha", scrobbles=history("alpha", 300))
    fake.add_user("beta", scrobbles=history("beta", 250))
    service = AccountService(services)
    hold_first_page(fake, "alpha", requests=2)  # /link's own one-play check, then the import's first page
    first = await service.link_lastfm(Asker(member, DISCORD_ID), "alpha")  # the slash-command claim
    assert first.import_started
    await asyncio.sleep(0.3)  # alpha's import is running, its first page held by the fake
    token = await confirm_web_auth(service, fake, "beta")
    linked = await service.confirm_link(token)
    assert linked.username == "beta" and linked.import_started, "beta's history must be imported"
    await service.wait_imports()
    await assert_account_is(services, member, "beta", 250)


async def test_an_import_in_another_process_stops_at_its_next_write(
        world: tuple[Services, LastfmFake, int]) -> None:
    services, fake, member = world
    fake.add_user("alpha", scrobbles=history("alpha", 300))
    fake.add_user("beta", scrobbles=history("beta", 250))
    async with services.session() as s:
        account_id = (await AccountRepository.without_cipher(s).link(member, "lastfm", "alpha")).id
    assert services.lastfm is not None
    elsewhere = LastfmSync(services, services.lastfm, owner="scheduler-process")  # not cancellable from here
    hold_first_page(fake, "alpha")
    stale = asyncio.create_task(elsewhere.sync_account(account_id))
    await asyncio.sleep(0.3)
    service = AccountService(services)
    linked = await service.confirm_link(await confirm_web_auth(service, fake, "beta"))
    assert linked.import_started, "the other process's lock must not block the new account's import"
    report = await stale
    assert report.status == "stale" and report.inserted == 0
    await service.wait_imports()
    await assert_account_is(services, member, "beta", 250)


async def test_eight_simultaneous_confirmations_for_one_member_give_one_consistent_account(
        world: tuple[Services, LastfmFake, int]) -> None:
    services, fake, member = world
    names = [f"fm{i}" for i in range(8)]
    for i, name in enumerate(names):
        fake.add_user(name, scrobbles=history(name, 120 + 10 * i))
        hold_first_page(fake, name)
    processes = [AccountService(services), AccountService(services)]  # two processes, one database
    tokens = [await confirm_web_auth(processes[i % 2], fake, name) for i, name in enumerate(names)]
    results = await asyncio.gather(*(processes[i % 2].confirm_link(t) for i, t in enumerate(tokens)))
    assert sorted(r.username for r in results) == names
    for process in processes:
        await process.wait_imports()
    async with services.session() as s:
        account = await AccountRepository.without_cipher(s).get(member, "lastfm")
    assert account is not None and account.external_id in names
    final = account.external_id
    await assert_account_is(services, member, final, 120 + 10 * names.index(final))
