"""The base corpus, end to end: the bot keeps answering while it downloads/imports, and base
listeners never appear anywhere members can see (/whoknows, /leaderboard, /compat, /matches,
/export, counts)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.config import Settings
from core.db.repositories import UserRepository
from core.db.repositories.users import BASE_ORIGIN
from core.services import Services
from core.sync.base_corpus import start_base_import
from tests.bot.driving import everything_sent, run
from tests.bot.world import GUILD_ID
from tests.conftest import make_settings
from tests.fakes.dataset_server import DatasetServer, write_hetrec, zip_folder
from tests.fakes.discord_server import FakeDiscord

BASE_USERS = 40


@pytest.fixture
async def dataset_server(tmp_path: Path) -> AsyncIterator[DatasetServer]:
    async with DatasetServer(zip_folder(write_hetrec(tmp_path / "hetrec-files", users=BASE_USERS))) as server:
        yield server


@pytest.fixture
def bot_settings(database_url: str, tmp_path: Path, dataset_server: DatasetServer) -> Settings:
    return make_settings(database_url, tmp_path, DISCORD_DEV_GUILD_ID=str(GUILD_ID),
                         SONANCE_PUBLIC_BASE_URL="http://127.0.0.1:8080", SONANCE_BASE_DATASET="hetrec",
                         SONANCE_BASE_DATASET_URL=dataset_server.url,
                         SONANCE_BASE_DATASET_SHA256=dataset_server.sha256,
                         SONANCE_DATASET_DIR=None)  # CI points this at the real HetRec: download the small one


async def whoknows(fake: FakeDiscord, user: str) -> dict[str, object]:
    record = await fake.dispatch(fake.slash("whoknows", {"artist": "Radiohead"}, user=user, guild=GUILD_ID))
    final = await record.wait_final(timeout=30)
    return final.body["embeds"][0]


async def test_the_bot_answers_while_the_base_corpus_is_imported(sonance: FakeDiscord, world_services: Services,
                                                                 dataset_server: DatasetServer) -> None:
    dataset_server.hold = asyncio.Event()
    task = start_base_import(world_services)
    await asyncio.wait_for(dataset_server.started.wait(), 10)

    embed = await whoknows(sonance, "alice")  # answered while the download hangs
    assert embed["title"] == "Who knows Radiohead?"
    _, similar = await run(sonance, "similar", "carol", {"artist": "Slowdive"})
    assert similar.embeds
    assert not task.done()

    dataset_server.hold.set()
    outcome = await asyncio.wait_for(task, 120)
    assert outcome.status == "imported" and outcome.counts["users"] == BASE_USERS
    async with world_services.session() as session:
        assert (await UserRepository(session).listener_counts())[BASE_ORIGIN] == BASE_USERS
    # a second start finds it there and does nothing
    assert (await asyncio.wait_for(start_base_import(world_services), 30)).status == "skipped"
    assert dataset_server.requests == 1


async def test_base_listeners_are_never_members(sonance: FakeDiscord, world_services: Services) -> None:
    outcome = await asyncio.wait_for(start_base_import(world_services), 120)
    assert outcome.status == "imported"
    async with world_services.session() as session:  # even a stray membership row shows nobody
        users = UserRepository(session)
        base = await users.by_external_refs(["hetrec:2", "hetrec:3"])
        for user_id in base.values():
            await users.ensure_membership(GUILD_ID, user_id)
        assert not set(base.values()) & set(await users.visible_member_ids(GUILD_ID))

    embed = await whoknows(sonance, "alice")
    lines = str(embed["description"]).split("\n")
    assert lines == ["🥇 **Alice**: 12 plays", "🥇 **Bob**: 12 plays", "🥉 **Carol**: 6 plays"]
    assert "3 listeners in Sonance Dev" in embed["footer"]["text"]  # type: ignore[index]

    _, board = await run(sonance, "leaderboard", "alice")
    assert board.embeds[0]["footer"]["text"].startswith("4 members ranked")  # alice, bob, carol, dave
    _, matches = await run(sonance, "matches", "alice")
    assert len(matches.embeds[0]["description"].splitlines()) <= 3
    record = await sonance.dispatch(sonance.slash("export", user="alice"))
    export = await record.wait_final(timeout=30)
    document = json.loads(export.files[0].data)
    assert all(row.get("user_id") in (None, document["tables"]["users"][0]["id"])
               for rows in document["tables"].values() for row in rows)

    sent = everything_sent(sonance)
    assert "hetrec:" not in sent and "Base Artist" not in sent  # no base listener, no base-only artist
