"""Repositories against a real database (SQLite or PostgreSQL, see conftest)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from core.db.models import ArtistPlays, Base, LinkedAccount
from core.db.repositories import (
    AccountRepository,
    CatalogRepository,
    ListenRepository,
    PersonalDataRepository,
    SchedulingRepository,
    UserRepository,
)
from core.db.repositories.listens import NewListen
from core.errors import ConfigError
from core.services import Services

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


async def _catalog(services: Services) -> tuple[int, int, int]:
    async with services.session() as s:
        catalog = CatalogRepository(s)
        artists = await catalog.ensure_artists([{"name_key": "radiohead", "name": "Radiohead"},
                                                {"name_key": "bjork", "name": "Björk"}])
        tracks = await catalog.ensure_tracks([
            {"artist_id": artists["radiohead"], "title_key": "creep", "title": "Creep"},
            {"artist_id": artists["bjork"], "title_key": "joga", "title": "Jóga"}])
        return artists["radiohead"], tracks[(artists["radiohead"], "creep")], tracks[(artists["bjork"], "joga")]


async def test_ensure_is_idempotent_and_returns_stable_ids(services: Services) -> None:
    first = await _catalog(services)
    second = await _catalog(services)
    assert first == second


async def test_listens_are_idempotent_and_feed_artist_plays(services: Services) -> None:
    radiohead, creep, _ = await _catalog(services)
    listens = [NewListen(creep, radiohead, T0 + timedelta(minutes=i), "lastfm") for i in range(5)]
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(1001, "ana")
        assert await ListenRepository(s).add_listens(user.id, listens) == 5
    async with services.session() as s:  # re-sync of the same page, plus one new listen
        more = [*listens, NewListen(creep, radiohead, T0 + timedelta(hours=2), "lastfm")]
        assert await ListenRepository(s).add_listens(user.id, more) == 1
    async with services.session() as s:
        repo = ListenRepository(s)
        assert await repo.count_listens(user.id) == 6
        plays = await repo.user_artist_plays(user.id)
        assert [(p.artist_id, p.plays) for p in plays] == [(radiohead, 6)]
        assert plays[0].last_played_at == T0 + timedelta(hours=2)
        assert await repo.latest_played_at(user.id) == T0 + timedelta(hours=2)


async def test_a_failed_unit_of_work_writes_nothing(services: Services) -> None:
    radiohead, creep, _ = await _catalog(services)
    with pytest.raises(RuntimeError):
        async with services.session() as s:
            user = await UserRepository(s).get_or_create_discord(1002, "bo")
            await ListenRepository(s).add_listens(user.id, [NewListen(creep, radiohead, T0, "lastfm")])
            raise RuntimeError("crash mid-sync")
    async with services.session() as s:
        assert await UserRepository(s).by_discord_id(1002) is None
        assert (await s.execute(select(ArtistPlays))).first() is None


async def test_tokens_are_encrypted_at_rest(services: Services) -> None:
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(1003, "cy")
        await AccountRepository(s, services.cipher).link(
            user.id, "spotify", "cy-spotify", access_token="plain-access-token-123",
            refresh_token="plain-refresh-token-456", expires_at=T0)
    async with services.engine.connect() as conn:
        raw = (await conn.execute(text("SELECT access_token_enc, refresh_token_enc FROM linked_accounts"))).one()
    for value in raw:
        assert b"plain-" not in bytes(value)
    async with services.session() as s:
        repo = AccountRepository(s, services.cipher)
        account = await repo.get(user.id, "spotify")
        assert account is not None
        assert repo.tokens(account) == ("plain-access-token-123", "plain-refresh-token-456")
        with pytest.raises(ConfigError, match="SONANCE_SECRET_KEY"):
            AccountRepository.without_cipher(s).tokens(account)


async def test_relinking_another_account_resets_sync_state(services: Services) -> None:
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(1004, "di")
        repo = AccountRepository(s, services.cipher)
        account = await repo.link(user.id, "lastfm", "di_fm")
        await repo.record_sync(account.id, status="ok", cursor={"page": 7}, history_complete=True)
    async with services.session() as s:
        repo = AccountRepository(s, services.cipher)
        again = await repo.link(user.id, "lastfm", "someone_else")
        assert again.id == account.id and again.sync_cursor is None and not again.history_complete


async def test_sync_lock_is_exclusive_until_released_or_expired(services: Services) -> None:
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(1005, "ed")
        account = await AccountRepository.without_cipher(s).link(user.id, "lastfm", "ed_fm")

    async def take(owner: str, ttl: timedelta = timedelta(minutes=5)) -> bool:
        async with services.session() as s:
            return await AccountRepository.without_cipher(s).try_lock(account.id, owner, ttl)

    results = await asyncio.gather(*(take(f"worker-{i}") for i in range(5)))
    assert sum(results) == 1
    winner = f"worker-{results.index(True)}"
    assert not await take("late-comer")
    async with services.session() as s:
        await AccountRepository.without_cipher(s).unlock(account.id, winner)
    assert await take("late-comer", ttl=timedelta(seconds=-1))  # taken, but already expired…
    assert await take("next")  # …so the next worker may take it


async def test_dm_slot_is_claimed_once_and_only_while_dms_are_wanted(services: Services) -> None:
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(1006, "fa")

    async def claim(owner: str, slot: str = "2026-W48") -> bool:
        async with services.session() as s:
            return await SchedulingRepository(s).claim_dm_slot(user.id, slot, owner)

    assert not await claim("before-opting-in")  # weekly DMs are opt-in
    async with services.session() as s:
        await UserRepository(s).update_settings(user.id, dm_enabled=True)
    assert sum(await asyncio.gather(*(claim(f"proc-{i}") for i in range(4)))) == 1
    assert not await claim("after-restart")
    async with services.session() as s:
        await UserRepository(s).update_settings(user.id, dm_enabled=False)
    assert not await claim("next-week", "2026-W49")


async def test_lease_and_single_use_nonce(services: Services) -> None:
    async with services.session() as s:
        repo = SchedulingRepository(s)
        assert await repo.acquire_lease("scheduler", "a", timedelta(seconds=30))
        assert not await repo.acquire_lease("scheduler", "b", timedelta(seconds=30))
        assert await repo.acquire_lease("scheduler", "a", timedelta(seconds=30))  # renew
        expires = datetime.now(UTC) + timedelta(minutes=10)
        assert await repo.consume_nonce("n-1", expires)
        assert not await repo.consume_nonce("n-1", expires)


async def test_visibility_rules(services: Services) -> None:
    guild, other_guild = 77, 88
    async with services.session() as s:
        users = UserRepository(s)
        public = await users.get_or_create_discord(2001, "public")
        private = await users.get_or_create_discord(2002, "private")
        hidden_here = await users.get_or_create_discord(2003, "hidden-here")
        outsider = await users.get_or_create_discord(2004, "outsider")
        for u in (public, private, hidden_here):
            await users.ensure_membership(guild, u.id)
        await users.ensure_membership(other_guild, outsider.id)
        await users.update_settings(private.id, privacy_level="private")
        await users.set_guild_visibility(guild, hidden_here.id, False)
        assert await users.visible_member_ids(guild) == [public.id]
        await users.set_guild_visibility(guild, private.id, True)  # opened explicitly for this guild
        assert await users.visible_member_ids(guild) == sorted([public.id, private.id])
        await users.update_settings(public.id, hide_username=True)
        assert (await users.display_names([public.id]))[public.id] == "a listener"


async def _populate_two_users(services: Services) -> tuple[int, int]:
    radiohead, creep, joga = await _catalog(services)
    async with services.session() as s:
        users = UserRepository(s)
        a = await users.get_or_create_discord(3001, "alice")
        b = await users.get_or_create_discord(3002, "bob")
        for user, track in ((a, creep), (b, joga)):
            await users.ensure_membership(5, user.id)
            await users.update_settings(user.id, dm_enabled=True)
            await AccountRepository(s, services.cipher).link(user.id, "lastfm", f"fm{user.id}", access_token="sk")
            await ListenRepository(s).add_listens(user.id, [NewListen(track, radiohead, T0, "lastfm")])
            await SchedulingRepository(s).claim_dm_slot(user.id, "2026-W48", "p")
        return a.id, b.id


async def test_forget_deletes_every_row_about_the_user(services: Services) -> None:
    alice, bob = await _populate_two_users(services)
    async with services.session() as s:
        counts = await PersonalDataRepository(s).forget(alice)
    assert counts["users"] == 1 and counts["listens"] == 1
    async with services.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                refs_users = any(fk.column.table.name == "users" for fk in column.foreign_keys)
                if refs_users or (table.name == "users" and column.name == "id"):
                    left = (await conn.execute(select(table).where(column == alice))).all()
                    assert left == [], f"{table.name}.{column.name} still has rows about the user"
        assert (await conn.execute(select(LinkedAccount).where(LinkedAccount.user_id == bob))).all()


async def test_export_has_everything_about_the_user_and_nothing_else(services: Services) -> None:
    alice, _bob = await _populate_two_users(services)
    async with services.session() as s:
        data = await PersonalDataRepository(s).export(alice)
    assert {"users", "listens", "linked_accounts", "user_settings", "guild_memberships",
            "dm_deliveries", "artist_plays"} <= set(data)
    for table, rows in data.items():
        for row in rows:
            owner = row.get("user_id", row.get("id"))
            assert owner == alice, f"{table} leaks another user's row: {row}"
    account = data["linked_accounts"][0]
    assert account["access_token_enc"] == "[secret stored encrypted; not exported]"
