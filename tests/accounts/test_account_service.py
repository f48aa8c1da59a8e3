"""AccountService without Discord: nonce single use across processes, privacy rules, export limits,
claim protection, reason texts."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.accounts import REASON_TEXT, AccountService, DatabaseNonceStore, reason_text
from core.asker import Asker
from core.db.repositories import AccountRepository, UserRepository
from core.errors import ConfigError, InvalidInput, SonanceError
from core.services import Services, build_services
from core.sources.oauth_state import OAuthStateError
from tests.conftest import make_settings
from tests.fakes.lastfm_server import LastfmFake

GUILD, OTHER = 111, 222


async def _user(services: Services, discord_id: int, *guilds: int) -> int:
    async with services.session() as s:
        users = UserRepository(s)
        user = await users.get_or_create_discord(discord_id, f"user{discord_id}")
        for guild in guilds:
            await users.ensure_membership(guild, user.id)
        return user.id


async def _visible(services: Services, guild: int) -> list[int]:
    async with services.session() as s:
        return await UserRepository(s).visible_member_ids(guild)


async def test_nonces_are_single_use_across_service_instances(services: Services) -> None:
    """Two AccountService instances stand for two processes sharing one database."""
    first, second = AccountService(services), AccountService(services)
    state = first.signer().issue(42, "spotify")
    assert await second.signer().verify(state, "spotify") == 42
    with pytest.raises(OAuthStateError):
        await first.signer().verify(state, "spotify")
    store = DatabaseNonceStore(services)
    assert await store.consume("n-1", 60) is True
    assert await store.consume("n-1", 60) is False


async def test_signer_needs_a_secret_key(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(database_url, tmp_path, SONANCE_SECRET_KEY="")
    built = await build_services(settings, upgrade_schema=False)
    try:
        with pytest.raises(ConfigError, match="SONANCE_SECRET_KEY"):
            AccountService(built).signer()
    finally:
        await built.close()


async def test_privacy_choices_follow_visible_member_ids_rules(services: Services) -> None:
    service = AccountService(services)
    me = await _user(services, 1, GUILD, OTHER)
    other = await _user(services, 2, GUILD)
    here, there, dms = Asker(me, 1, GUILD), Asker(me, 1, OTHER), Asker(me, 1, None)
    assert me in await _visible(services, GUILD)

    result = await service.set_privacy(here, visibility="private", scope="guild", hide_username=None)
    assert (result.privacy_level, result.guild_visible, result.visible_here) == ("public", False, False)
    assert me not in await _visible(services, GUILD) and me in await _visible(services, OTHER)

    result = await service.set_privacy(here, visibility="public", scope="everywhere", hide_username=None)
    assert result.cleared_overrides == 1 and result.visible_here is True
    assert me in await _visible(services, GUILD) and me in await _visible(services, OTHER)

    result = await service.set_privacy(there, visibility="guild", scope=None, hide_username=True)
    assert (result.privacy_level, result.hide_username, result.visible_here) == ("guild", True, True)
    assert me not in await _visible(services, GUILD) and me in await _visible(services, OTHER)

    await service.set_privacy(here, visibility="private", scope="everywhere", hide_username=None)
    assert me not in await _visible(services, GUILD) and me not in await _visible(services, OTHER)
    assert other in await _visible(services, GUILD)

    with pytest.raises(InvalidInput):
        await service.set_privacy(dms, visibility="guild", scope=None, hide_username=None)
    dm = await service.set_privacy(dms, visibility="public", scope=None, hide_username=False)
    assert dm.privacy_level == "public" and dm.visible_here is None and dm.hide_username is False


async def test_export_is_gzipped_when_too_big_and_refused_when_still_too_big(services: Services) -> None:
    service = AccountService(services)
    seven = Asker(await _user(services, 7, GUILD), 7, GUILD)
    plain = await service.export(seven)
    assert plain.filename == "sonance-export-7.json" and set(plain.tables) == {"users", "guild_memberships"}
    small = await service.export(seven, max_bytes=len(plain.data) - 1)
    assert small.filename.endswith(".json.gz")
    assert json.loads(gzip.decompress(small.data))["tables"]["users"][0]["discord_id"] == 7
    with pytest.raises(SonanceError, match="too large"):
        await service.export(seven, max_bytes=10)
    assert (await service.export(Asker(999_999, 999))).empty  # a row id nobody has


async def test_forget_unknown_user_deletes_nothing(services: Services) -> None:
    result = await AccountService(services).forget(Asker(999_999, 123456))  # a row id nobody has
    assert result.rows == {} and result.total_rows == 0


def test_every_reason_code_has_friendly_text() -> None:
    for code in ("lastfm_private", "lastfm_user_not_found", "lastfm_unavailable", "spotify_token_revoked"):
        assert code in REASON_TEXT and "_" not in REASON_TEXT[code].split(".")[0].replace("/link", "")
    assert reason_text(None) is None
    assert reason_text("brand_new_code", "stored message") == "stored message"
    assert reason_text("brand_new_code") == "The last sync failed; it will be retried."


@pytest.fixture
async def lastfm_services(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Services, LastfmFake]]:
    async with LastfmFake() as fake:
        built = await build_services(make_settings(database_url, tmp_path, **fake.settings_overrides()),
                                     upgrade_schema=False)
        await built.start_clients()
        try:
            yield built, fake
        finally:
            await built.close()


async def test_a_verified_account_cannot_be_claimed_by_someone_else(
        lastfm_services: tuple[Services, LastfmFake]) -> None:
    services, fake = lastfm_services
    fake.add_user("Shared", scrobbles=[(1_700_000_000, "A", "B", "C")])
    owner, claimant = Asker(await _user(services, 1), 1), Asker(await _user(services, 2), 2)
    async with services.session() as s:
        await AccountRepository(s, services.cipher).link(owner.user_id, "lastfm", "Shared", verified=True,
                                                         access_token="sk")
    service = AccountService(services)
    with pytest.raises(InvalidInput, match="already linked and verified by another"):
        await service.link_lastfm(claimant, "shared")
    result = await service.link_lastfm(owner, "Shared")  # the owner re-linking is fine
    assert result.username == "Shared" and result.already_linked
    assert result.verify_url is not None and "cb=" in result.verify_url
    await service.wait_imports()
    with pytest.raises(InvalidInput):
        await service.link_lastfm(owner, "has space")
