"""Privacy, end to end: the real bot against the fake Discord, the Last.fm/Spotify fakes, the web
callbacks and the test database (SQLite, or PostgreSQL + Redis with SONANCE_TEST_* set).

What this proves:
- `/forget` + confirm leaves no row about the user in any table and no cache key about them. The user
  first gets data in *every* personal table through the product's own paths (listens, a 👍 click,
  /recommend, /playlist, /dm, /tune, /privacy, OAuth-linked accounts with tokens, a weekly-DM claim,
  memberships of two servers); the check walks `Base.metadata` independently of the code under test,
  so a new table is covered the day it is added.
- `/export` returns every row about the user and nothing that is only about someone else.
- A member hidden in a server (by /privacy, per server or everywhere) never appears in that server's
  /leaderboard, /whoknows or /matches (the exact JSON the bot sent is searched).
- A user who is not a member of a server never appears there, however well they would rank.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Column, Table, select

from bot.client import create_bot
from bot.web import build_web_app
from core.cache import KEY_PREFIX, InProcessCache
from core.config import Settings
from core.db.models import USERLESS_TABLES, Base
from core.db.repositories import SchedulingRepository, UserRepository
from core.services import Services, build_services
from core.sync.ingest import RawListen, ingest_listens
from tests.bot.world import GUILD_ID, MEMBERS, NOW, OTHER_GUILD_ID, fake_world, seed_world
from tests.conftest import REDIS_URL, make_settings
from tests.fakes.discord_payloads import FakeUser
from tests.fakes.discord_server import FakeDiscord, InteractionRecord, SentMessage, running_bot
from tests.fakes.lastfm_server import LastfmFake
from tests.fakes.oauth_browser import callback_and_confirm
from tests.fakes.spotify_server import SpotifyFake

PUBLIC_BASE = "http://127.0.0.1:8080"
SPOTIFY_REDIRECT = f"{PUBLIC_BASE}/callback/spotify"
FB_UP = re.compile(r"^sonance:fb:(\d+):up$")
WHY = re.compile(r"^sonance:why:(\d+)$")
#: Zed: a Discord user who is a member of the other server only, with a taste that would top every board.
ZED = FakeUser(id=1_300_000_000_000_000_199, username="zed", global_name="Zedekiah")


# ------------------------------------------------------------------------------------ fixtures
# (imported by test_security / test_operations: one world for the reliability suite)


@pytest.fixture
async def lastfm_fake() -> AsyncIterator[LastfmFake]:
    async with LastfmFake() as fake:
        yield fake


@pytest.fixture
async def spotify_fake() -> AsyncIterator[SpotifyFake]:
    async with SpotifyFake(redirect_uri=SPOTIFY_REDIRECT) as fake:
        yield fake


@pytest.fixture
def bot_settings(database_url: str, tmp_path: Path, lastfm_fake: LastfmFake, spotify_fake: SpotifyFake) -> Settings:
    """No DISCORD_DEV_GUILD_ID: commands sync globally, so they work in both servers of the world."""
    return make_settings(database_url, tmp_path, SONANCE_PUBLIC_BASE_URL=PUBLIC_BASE,
                         **lastfm_fake.settings_overrides(), **spotify_fake.settings_overrides())


@pytest.fixture
async def world_services(bot_settings: Settings) -> AsyncIterator[Services]:
    services = await build_services(bot_settings, upgrade_schema=False)
    if REDIS_URL:  # keys left by earlier tests in this Redis db would blur the cache checks
        await _flush_redis()
    services.extras["world_ids"] = await seed_world(services)
    yield services
    await services.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    guilds, users = fake_world()
    guilds[0].members = [m.fake.id for m in MEMBERS.values()]
    guilds[1].members = [ZED.id, MEMBERS["carol"].fake.id]
    async with FakeDiscord(guilds=guilds, users=[*users, ZED]) as server:
        yield server


@pytest.fixture
async def sonance(fake: FakeDiscord, world_services: Services) -> AsyncIterator[FakeDiscord]:
    bot = create_bot(world_services, guild_ready_timeout=0.05)
    async with running_bot(bot, fake):
        yield fake


@pytest.fixture
async def web(world_services: Services) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_web_app(world_services))) as client:
        yield client


# ------------------------------------------------------------------------------------ helpers


async def _flush_redis() -> None:
    from redis import asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    await client.flushdb()
    await client.aclose()


def wid(services: Services, name: str) -> int:
    """A world member's users.id."""
    return int(services.extras["world_ids"][name])


def did(name: str) -> int:
    """A world member's Discord id."""
    return ZED.id if name == "zed" else MEMBERS[name].fake.id


#: Every interaction record `run` produced, so leak checks can read exactly what a command sent.
RECORDS: list[InteractionRecord] = []


async def run(fake: FakeDiscord, name: str, user: str, options: dict[str, Any] | None = None, *,
              guild: int = GUILD_ID, subcommand: str | None = None) -> SentMessage:
    record = await fake.dispatch(fake.slash(name, options or {}, subcommand=subcommand, user=fake.user(user),
                                            guild=guild))
    RECORDS.append(record)
    final = await record.wait_final(timeout=60.0)
    assert not record.rejected_callbacks, record.rejected_callbacks
    return final


async def click(fake: FakeDiscord, custom_id: str, user: str, message: SentMessage | None = None) -> SentMessage:
    record = await fake.dispatch(fake.button(custom_id, message=message, user=fake.user(user)))
    return await record.wait_final(timeout=30.0)


def buttons(message: SentMessage) -> list[dict[str, Any]]:
    return [c for row in message.components for c in row.get("components", [])]


def sent_since(mark: int) -> str:
    """Every JSON body (and uploaded file) the bot sent in answer to the interactions `run` dispatched
    since `mark` (an index into RECORDS): callbacks, follow-ups and edits."""
    parts = []
    for record in RECORDS[mark:]:
        for event in record.events:
            parts.append(json.dumps(event.body, default=str, ensure_ascii=False))
            parts.extend(f.data.decode("utf-8", "replace") for f in event.files)
    return "\n".join(parts)


def user_columns(table: Table) -> list[Column[Any]]:
    return [c for c in table.columns if any(fk.column.table.name == "users" for fk in c.foreign_keys)]


def referenced_columns(table: Table) -> set[str]:
    """Columns of `table` that some foreign key points at."""
    return {fk.column.name for other in Base.metadata.sorted_tables for c in other.columns
            for fk in c.foreign_keys if fk.column.table is table}


async def rows_about(services: Services, user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row about the user, found independently of `PersonalDataRepository`: rows whose
    users-FK column holds the id, then (to any depth) rows whose FK points at such a row."""
    found: dict[str, list[dict[str, Any]]] = {}
    keys: dict[str, dict[str, set[Any]]] = {}  # table -> referenced column -> values about the user
    async with services.engine.connect() as conn:
        users = Base.metadata.tables["users"]
        found["users"] = [dict(r) for r in (await conn.execute(select(users).where(users.c.id == user_id))).mappings()]
        keys["users"] = {"id": {user_id}} if found["users"] else {}
        changed = True
        while changed:
            changed = False
            for table in Base.metadata.sorted_tables:
                if table.name == "users":
                    continue
                rows: dict[tuple[Any, ...], dict[str, Any]] = {}
                for column in table.columns:
                    for fk in column.foreign_keys:
                        values = keys.get(fk.column.table.name, {}).get(fk.column.name)
                        if not values:
                            continue
                        result = await conn.execute(select(table).where(column.in_(sorted(values))))
                        for r in result.mappings():
                            pk = tuple(r[c.name] for c in table.primary_key.columns)
                            rows[pk] = dict(r)
                if rows and len(rows) != len(found.get(table.name, [])):
                    found[table.name] = list(rows.values())
                    referenced = keys.setdefault(table.name, {})
                    for col in referenced_columns(table):
                        referenced[col] = {r[col] for r in rows.values() if r[col] is not None}
                    changed = True
    return {t: rs for t, rs in found.items() if rs}


async def whole_database_text(services: Services) -> str:
    async with services.engine.connect() as conn:
        parts = []
        for table in Base.metadata.sorted_tables:
            rows = (await conn.execute(select(table))).mappings().all()
            parts.append(json.dumps([dict(r) for r in rows], default=str, ensure_ascii=False))
    return "\n".join(parts)


async def cache_keys(services: Services) -> list[str]:
    cache = services.cache
    if isinstance(cache, InProcessCache):
        return list(cache._data)  # the in-process store has no SCAN; its dict is the truth
    from redis import asyncio as aioredis

    assert REDIS_URL
    client = aioredis.from_url(REDIS_URL)
    try:
        return [k.decode() async for k in client.scan_iter(match=f"{KEY_PREFIX}:*", count=500)]
    finally:
        await client.aclose()


def personal_tables() -> set[str]:
    return {t.name for t in Base.metadata.sorted_tables} - USERLESS_TABLES


# ------------------------------------------------------------------------------------ the full footprint


async def link_accounts(fake: FakeDiscord, services: Services, web: TestClient, lastfm: LastfmFake,
                        spotify: SpotifyFake, name: str) -> dict[str, str]:
    """Verify `name`'s Last.fm link and connect Spotify, both through the callback routes.
    Returns the secrets now stored for them (session key, access and refresh tokens)."""
    fm_name = f"{name}_fm"
    lastfm.add_user(fm_name, scrobbles=[(1_700_000_000 + 60 * i, "Burial", "Untrue", f"Archangel {i}")
                                        for i in range(3)])
    linked = await run(fake, "link", name, {"username": fm_name}, subcommand="lastfm")
    [verify] = buttons(linked)
    cb = parse_qs(urlsplit(verify["url"]).query)["cb"][0]
    state = parse_qs(urlsplit(cb).query)["state"][0]
    before = set(lastfm.sessions)
    lastfm.authorise_token(f"tok-{name}", fm_name)
    resp = await callback_and_confirm(web, "/callback/lastfm", {"state": state, "token": f"tok-{name}"})
    assert resp.status == 200, await resp.text()
    [session_key] = set(lastfm.sessions) - before

    prompt = await run(fake, "link", name, subcommand="spotify")
    spotify_state = parse_qs(urlsplit(buttons(prompt)[0]["url"]).query)["state"][0]
    access_before, refresh_before = set(spotify.access), set(spotify.refresh_tokens)
    code = spotify.issue_code(f"{name}-spotify")
    resp = await callback_and_confirm(web, "/callback/spotify", {"code": code, "state": spotify_state})
    assert resp.status == 200, await resp.text()
    [access] = set(spotify.access) - access_before
    [refresh] = set(spotify.refresh_tokens) - refresh_before
    await services.accounts.wait_imports()
    return {"session_key": session_key, "access_token": access, "refresh_token": refresh}


async def full_footprint(fake: FakeDiscord, services: Services, web: TestClient, lastfm: LastfmFake,
                         spotify: SpotifyFake, name: str = "alice", partner: str = "bob") -> dict[str, str]:
    """Give `name` data in every personal table through the product's own paths."""
    secrets = await link_accounts(fake, services, web, lastfm, spotify, name)
    # settings first: /tune and /privacy rightly drop cached results, which come last
    await run(fake, "dm", name, {"enabled": True, "day": "monday", "time": "08:30", "timezone": "Europe/Berlin"})
    await run(fake, "tune", name, {"text": "more shoegaze"})
    await run(fake, "privacy", name, {"visibility": "public", "scope": "guild"})
    await run(fake, "account", name, guild=OTHER_GUILD_ID)  # a membership of a second server
    await run(fake, "playlist", name, {"mode": "for me", "length": 10})
    await run(fake, "playlist", partner, {"mode": "blend", "member": did(name), "length": 10})  # partner_user_id
    recs = await run(fake, "recommend", name, {"count": 5})
    [first_up, *_] = [c for c in recs.custom_ids() if FB_UP.match(c)]
    await click(fake, first_up, name, recs)  # feedback
    [first_why, *_] = [c for c in recs.custom_ids() if WHY.match(c)]
    await click(fake, first_why, name, recs)  # a cached explanation keyed by the user
    await run(fake, "compat", name, {"member": did(partner)})  # compat cache entries
    await run(fake, "matches", name)
    await run(fake, "leaderboard", name)
    async with services.session() as s:  # a weekly-DM slot claimed (the scheduler's path)
        assert await SchedulingRepository(s).claim_dm_slot(wid(services, name), "2026-W47", "test-worker")
    return secrets


# ------------------------------------------------------------------------------------ /forget


async def test_forget_leaves_no_row_and_no_cache_key_about_the_user(
        sonance: FakeDiscord, world_services: Services, web: TestClient, lastfm_fake: LastfmFake,
        spotify_fake: SpotifyFake) -> None:
    services = world_services
    alice, bob = wid(services, "alice"), wid(services, "bob")
    secrets = await full_footprint(sonance, services, web, lastfm_fake, spotify_fake)

    before = await rows_about(services, alice)
    missing = personal_tables() - set(before)
    assert not missing, f"the footprint must touch every personal table; add data for: {sorted(missing)}"
    assert any(r["partner_user_id"] == alice and r["user_id"] == bob for r in before["playlists"])
    keys = await cache_keys(services)
    assert any(f"u{alice}:" in k for k in keys), keys  # the check below is not vacuous
    bob_before = await rows_about(services, bob)

    prompt = await run(sonance, "forget", "alice")
    click_record = await sonance.dispatch(sonance.button("sonance:forget:yes", message=prompt, user="alice"))
    done = await click_record.wait_for(lambda r: r.original_edits[-1] if r.original_edits else None, timeout=20)
    assert done.content.startswith("Done. Deleted ")

    after = await rows_about(services, alice)
    assert after == {}, f"rows about the user survived /forget: { {t: len(r) for t, r in after.items()} }"
    for table in Base.metadata.sorted_tables:  # belt and braces: no users-FK column holds the id
        for column in user_columns(table):
            async with services.engine.connect() as conn:
                left = (await conn.execute(select(table).where(column == alice))).all()
            assert not left, f"{table.name}.{column.name}"
    text = await whole_database_text(services)
    for needle in (str(did("alice")), "alice_fm", "alice-spotify", "Alice", *secrets.values()):
        assert needle not in text, f"{needle!r} is still stored somewhere"
    leftover = [k for k in await cache_keys(services) if f"u{alice}:" in k]
    assert not leftover, leftover

    # Bob keeps everything of his own, except the blend that was half Alice's.
    bob_after = await rows_about(services, bob)
    assert bob_after["listens"] == bob_before["listens"]
    assert bob_after["guild_memberships"] == bob_before["guild_memberships"]
    assert all(p["partner_user_id"] != alice for p in bob_after.get("playlists", []))


# ------------------------------------------------------------------------------------ /export


async def test_export_has_every_row_about_the_user_and_nothing_about_anyone_else(
        sonance: FakeDiscord, world_services: Services, web: TestClient, lastfm_fake: LastfmFake,
        spotify_fake: SpotifyFake) -> None:
    services = world_services
    alice = wid(services, "alice")
    secrets = await full_footprint(sonance, services, web, lastfm_fake, spotify_fake)
    await link_accounts(sonance, services, web, lastfm_fake, spotify_fake, "carol")  # someone else's secrets
    expected = await rows_about(services, alice)

    final = await run(sonance, "export", "alice")
    assert final.ephemeral
    [file] = final.files
    document = json.loads(file.data)
    assert document["discord_id"] == str(did("alice"))
    tables: dict[str, list[dict[str, Any]]] = document["tables"]

    assert set(tables) == set(expected), (set(tables) ^ set(expected))
    for name, rows in expected.items():
        table = Base.metadata.tables[name]
        pk = [c.name for c in table.primary_key.columns]
        want = sorted(tuple(str(r[c]) for c in pk) for r in rows)
        got = sorted(tuple(str(r[c]) for c in pk) for r in tables[name])
        assert got == want, f"{name}: export and database disagree"

    # every exported row is about alice: a users-FK column names her, or its parent row is hers
    exported_ids = {name: {str(r.get(c.name)) for r in rows for c in Base.metadata.tables[name].primary_key.columns}
                    for name, rows in tables.items()}
    for name, rows in tables.items():
        table = Base.metadata.tables[name]
        for row in rows:
            if name == "users":
                assert row["id"] == alice
                continue
            direct = any(row.get(c.name) == alice for c in user_columns(table))
            via = any(str(row.get(c.name)) in exported_ids.get(fk.column.table.name, set())
                      for c in table.columns for fk in c.foreign_keys if fk.column.table.name != "users")
            assert direct or via, f"{name} row is not about the user: {row}"

    text = file.data.decode()
    for other in ("carol", "dave", "erin"):
        assert str(did(other)) not in text and f"{other}_fm" not in text
    for secret in (*secrets.values(), "carol-spotify"):
        assert secret not in text  # tokens are never exported, not even the asker's own
    assert "[secret stored encrypted; not exported]" in text


# ------------------------------------------------------------------------------------ hidden members


@pytest.mark.parametrize("scope", ["guild", "everywhere"])
async def test_a_hidden_member_never_appears_on_boards_whoknows_or_matches(
        sonance: FakeDiscord, world_services: Services, scope: str) -> None:
    hidden = await run(sonance, "privacy", "carol", {"visibility": "private", "scope": scope})
    assert hidden.ephemeral and "hidden" in (hidden.content or "")
    mark = len(RECORDS)

    board = await run(sonance, "leaderboard", "alice")
    who = await run(sonance, "whoknows", "alice", {"artist": "Radiohead"})  # carol played it 6 times
    matches = await run(sonance, "matches", "alice")
    bob_matches = await run(sonance, "matches", "bob")
    refused = await run(sonance, "compat", "alice", {"member": did("carol")})
    assert board.embeds and who.embeds and matches.embeds and bob_matches.embeds
    assert "Alice" in who.embeds[0]["description"]  # the answers are real, not empty
    assert refused.ephemeral and "keeps their listening private" in (refused.content or "")

    sent = sent_since(mark)
    for needle in ("Carol", "carol", str(did("carol")), "Slowdive", "My Bloody Valentine"):
        assert needle not in sent, f"{needle!r} leaked after carol hid herself"

    # carol still sees her own results, privately
    own = await run(sonance, "matches", "carol")
    assert own.ephemeral


async def test_a_user_who_is_not_a_member_never_appears_there(
        sonance: FakeDiscord, world_services: Services) -> None:
    services = world_services
    async with services.session() as s:  # zed would top every board: alice's taste, ten times the plays
        zed = await UserRepository(s).get_or_create_discord(ZED.id, "Zedekiah")
        plays = [RawListen(artist=a, track=f"{a} song {k}", album=None, source="lastfm",
                           played_at=NOW - timedelta(minutes=k + 60 * i))
                 for i, a in enumerate(MEMBERS["alice"].artists) for k in range(40)]
        await ingest_listens(s, zed.id, plays)
    await run(sonance, "account", "zed", guild=OTHER_GUILD_ID)  # zed uses Sonance in the other server only

    # asked about by name, zed gets the same answer as a hidden member (the asker named them)
    top_zed = await run(sonance, "top", "alice", {"period": "overall", "member": ZED.id})
    assert "keeps their listening private" in (top_zed.content or "") and not top_zed.embeds

    mark = len(RECORDS)
    who = await run(sonance, "whoknows", "alice", {"artist": "Radiohead"})
    board = await run(sonance, "leaderboard", "alice")
    matches = await run(sonance, "matches", "alice")
    assert who.embeds and board.embeds and matches.embeds
    sent = sent_since(mark)
    for needle in ("Zedekiah", "zed", str(ZED.id)):
        assert needle not in sent, f"{needle!r}: a non-member appeared in the server"

    # and the other way round: in zed's server, the first server's members never appear
    mark = len(RECORDS)
    there = await run(sonance, "whoknows", "zed", {"artist": "Radiohead"}, guild=OTHER_GUILD_ID)
    assert "Zedekiah" in there.embeds[0]["description"]
    sent = sent_since(mark)
    for name in ("Alice", "Bob", "Dave"):
        assert name not in sent
