"""Who may hold a Last.fm profile: re-linking and verification keep claims honest.

Through `AccountService`, on both engines (SQLite by default, PostgreSQL with
SONANCE_TEST_DATABASE_URL), against the local Last.fm fake:
- re-linking a verified account to someone else's profile leaves an unverified claim with no
  session key, so the profile's real owner can still claim and verify it;
- verifying a profile evicts other members' unverified claims on it, the way /unlink would (the
  row and its tokens go, the listens already imported stay, a running import stops);
- a claim on a profile someone else verified is still refused, also when the claim and the
  verification happen at the same moment in two processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.accounts import AccountService
from core.asker import Asker
from core.db.models import LinkedAccount
from core.db.repositories import AccountRepository, ListenRepository, UserRepository
from core.errors import InvalidInput
from core.services import Services, build_services
from tests.conftest import make_settings
from tests.fakes.lastfm_server import LastfmFake

MALLORY, VICTOR, ALICE, BOB = 10, 20, 30, 40  # Discord ids


def history(name: str, n: int) -> list[tuple[int, str, str, str]]:
    """`n` plays that belong to `name` alone."""
    return [(1_700_000_000 + 60 * i, f"{name} artist {i % 5}", f"{name} album", f"{name} track {i}")
            for i in range(n)]


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Services, LastfmFake]]:
    async with LastfmFake() as fake:
        # A generous rate limit: the timing of the race test is the claim's, not the limiter's.
        settings = make_settings(database_url, tmp_path, LASTFM_REQUESTS_PER_SECOND=200,
                                 **fake.settings_overrides())
        built = await build_services(settings, upgrade_schema=False)
        await built.start_clients()
        try:
            yield built, fake
        finally:
            await built.close()


async def member(services: Services, discord_id: int) -> Asker:
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(discord_id, f"user{discord_id}")
    return Asker(user.id, discord_id)


async def verify(service: AccountService, fake: LastfmFake, asker: Asker, lastfm_user: str) -> str:
    """The browser path: Last.fm approves a token for `lastfm_user`, the member confirms the page.
    Returns the session key Last.fm issued."""
    token = f"tok-{asker.discord_id}-{lastfm_user}"
    fake.authorise_token(token, lastfm_user)
    pending = await service.begin_lastfm(token, service.signer().issue(asker.discord_id, "lastfm"))
    linked = await service.confirm_link(pending.token)
    assert linked.username == lastfm_user
    return [key for key, name in fake.sessions.items() if name == lastfm_user][-1]  # in issue order


async def lastfm_row(services: Services, asker: Asker) -> LinkedAccount | None:
    async with services.session() as s:
        return await AccountRepository.without_cipher(s).get(asker.user_id, "lastfm")


async def tokens(services: Services, account: LinkedAccount) -> tuple[str | None, str | None]:
    async with services.session() as s:
        return AccountRepository(s, services.cipher).tokens(account)


async def listens(services: Services, asker: Asker) -> int:
    async with services.session() as s:
        return await ListenRepository(s).count_listens(asker.user_id)


async def test_relinking_a_verified_account_to_someone_elses_profile_drops_the_proof_and_the_key(
        world: tuple[Services, LastfmFake]) -> None:
    services, fake = world
    fake.add_user("mallory", scrobbles=history("mallory", 20))
    fake.add_user("victim", scrobbles=history("victim", 30))
    service = AccountService(services)
    mallory, victor = await member(services, MALLORY), await member(services, VICTOR)

    mallory_key = await verify(service, fake, mallory, "mallory")
    row = await lastfm_row(services, mallory)
    assert row is not None and row.verified and await tokens(services, row) == (mallory_key, None)

    await service.link_lastfm(mallory, "victim")  # a claim on a profile nobody verified
    await service.wait_imports()
    row = await lastfm_row(services, mallory)
    assert row is not None and row.external_id == "victim"
    assert row.verified is False, "a claim must not inherit the proof made for another profile"
    assert (row.access_token_enc, row.refresh_token_enc, row.token_expires_at, row.scope) == (None, None, None, None)
    assert await tokens(services, row) == (None, None), "mallory's session key must not sit on victim's row"
    [view] = (await service.overview(mallory)).accounts
    assert view.username == "victim" and view.verified is False
    async with services.session() as s:
        assert not await AccountRepository.without_cipher(s).verified_by_other("lastfm", "victim", victor.user_id)

    claimed = await service.link_lastfm(victor, "victim")  # the real owner is not refused
    assert claimed.username == "victim"
    victor_key = await verify(service, fake, victor, "victim")
    await service.wait_imports()
    row = await lastfm_row(services, victor)
    assert row is not None and row.verified and await tokens(services, row) == (victor_key, None)
    assert await lastfm_row(services, mallory) is None, "the verification evicts mallory's claim"


async def test_relinking_to_the_same_profile_keeps_the_proof(world: tuple[Services, LastfmFake]) -> None:
    """Only a change of profile drops the proof: Last.fm names are case-insensitive."""
    services, fake = world
    fake.add_user("Shared", scrobbles=history("Shared", 5))
    service = AccountService(services)
    owner = await member(services, VICTOR)
    key = await verify(service, fake, owner, "Shared")
    result = await service.link_lastfm(owner, "shared")
    await service.wait_imports()
    assert result.already_linked
    row = await lastfm_row(services, owner)
    assert row is not None and row.verified and await tokens(services, row) == (key, None)


async def test_verifying_a_profile_evicts_an_earlier_claim_like_unlink(
        world: tuple[Services, LastfmFake], caplog: pytest.LogCaptureFixture) -> None:
    services, fake = world
    fake.add_user("bob", scrobbles=history("bob", 40))
    service = AccountService(services)
    alice, bob = await member(services, ALICE), await member(services, BOB)

    await service.link_lastfm(alice, "bob")  # alice's unverified claim imports bob's scrobbles
    await service.wait_imports()
    imported = await listens(services, alice)
    assert imported == 40

    with caplog.at_level(logging.INFO, logger="core.accounts"):
        bob_key = await verify(service, fake, bob, "bob")
    await service.wait_imports()

    assert await lastfm_row(services, alice) is None, "alice's claim on bob's profile must go"
    assert (await service.overview(alice)).accounts == []
    assert await listens(services, alice) == imported, "like /unlink, the imported listens stay"
    row = await lastfm_row(services, bob)
    assert row is not None and row.external_id == "bob" and row.verified
    assert await tokens(services, row) == (bob_key, None)
    assert await listens(services, bob) == 40

    evicted = [r for r in caplog.records if "another member verified" in r.getMessage()]
    assert len(evicted) == 1 and evicted[0].levelno == logging.INFO
    assert getattr(evicted[0], "user_id", None) == alice.user_id and "lastfm" in evicted[0].getMessage()
    assert all(bob_key not in r.getMessage() and bob_key not in str(r.__dict__) for r in caplog.records)

    with pytest.raises(InvalidInput, match="already linked and verified by another"):
        await service.link_lastfm(alice, "bob")


async def test_the_eviction_stops_the_claims_running_import(world: tuple[Services, LastfmFake]) -> None:
    """An import of the evicted claim that is still running writes nothing more into its history."""
    services, fake = world
    fake.add_user("bob", scrobbles=history("bob", 40))
    service = AccountService(services)
    alice, bob = await member(services, ALICE), await member(services, BOB)
    # /link's one-play check, then alice's import's first page: held while bob verifies.
    fake.fail_next("slow", delay=2.0, method="user.getRecentTracks", user="bob", count=2)
    assert (await service.link_lastfm(alice, "bob")).import_started
    await asyncio.sleep(0.3)
    await verify(service, fake, bob, "bob")
    await service.wait_imports()
    assert await lastfm_row(services, alice) is None
    assert await listens(services, alice) == 0, "the evicted claim's import kept writing"
    assert await listens(services, bob) == 40


async def test_a_claim_after_the_verification_is_still_refused(world: tuple[Services, LastfmFake]) -> None:
    services, fake = world
    fake.add_user("bob", scrobbles=history("bob", 10))
    service = AccountService(services)
    alice, bob = await member(services, ALICE), await member(services, BOB)
    await verify(service, fake, bob, "bob")
    with pytest.raises(InvalidInput, match="already linked and verified by another"):
        await service.link_lastfm(alice, "BOB")
    await service.wait_imports()
    assert await lastfm_row(services, alice) is None
    row = await lastfm_row(services, bob)
    assert row is not None and row.verified


async def test_a_claim_and_a_verification_at_the_same_moment_end_with_the_owner_alone(
        world: tuple[Services, LastfmFake]) -> None:
    """Two processes, one claim and one verification of the same profile, the verification started
    from before the claim to after it has finished (so through the claim's check and write):
    whichever lands first, the claimant never ends up holding the verified profile."""
    services, fake = world
    processes = [AccountService(services), AccountService(services)]
    alice, bob = await member(services, ALICE), await member(services, BOB)
    clock = asyncio.get_running_loop().time
    for warmup in ("warm", "warmer"):  # the second claim, on warm connections, sets the pace
        fake.add_user(warmup, scrobbles=history(warmup, 3))
        started = clock()
        await processes[0].link_lastfm(alice, warmup)
        claim_takes = clock() - started
        await processes[0].wait_imports()

    async def confirm_after(delay: float, token: str) -> object:
        await asyncio.sleep(delay)
        return await processes[1].confirm_link(token)

    for round_ in range(10):
        name = f"bob{round_}"
        fake.add_user(name, scrobbles=history(name, 3))
        fake.authorise_token(f"tok-race-{round_}", name)
        pending = await processes[1].begin_lastfm(f"tok-race-{round_}", processes[1].signer().issue(BOB, "lastfm"))
        results = await asyncio.gather(processes[0].link_lastfm(alice, name),
                                       confirm_after(claim_takes * round_ / 6, pending.token),
                                       return_exceptions=True)
        for result in results:
            assert not isinstance(result, BaseException) or isinstance(result, InvalidInput), result
        for process in processes:
            await process.wait_imports()
        claimant = await lastfm_row(services, alice)
        assert claimant is None or claimant.external_id.lower() != name, f"round {round_}: the claim survived"
        owner = await lastfm_row(services, bob)
        assert owner is not None and owner.external_id == name and owner.verified


async def test_relinking_spotify_to_another_account_never_keeps_the_old_tokens(services: Services) -> None:
    """The same `link` serves Spotify: a new identity starts from its own tokens only."""
    async with services.session() as s:
        user = (await UserRepository(s).get_or_create_discord(BOB, "bob")).id
    expiry = datetime.now(UTC) + timedelta(hours=1)
    async with services.session() as s:
        accounts = AccountRepository(s, services.cipher)
        await accounts.link(user, "spotify", "sp-one", verified=True, access_token="at-1", refresh_token="rt-1",
                            expires_at=expiry, scope="user-read-recently-played")
    async with services.session() as s:
        accounts = AccountRepository(s, services.cipher)
        account = await accounts.link(user, "spotify", "sp-two", verified=True, access_token="at-2")
        assert accounts.tokens(account) == ("at-2", None), "sp-one's refresh token stayed on sp-two"
        assert account.scope is None and account.token_expires_at is None and account.verified
    async with services.session() as s:
        accounts = AccountRepository(s, services.cipher)
        account = await accounts.link(user, "spotify", "sp-three")
        assert accounts.tokens(account) == (None, None) and account.verified is False
