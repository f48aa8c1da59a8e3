"""A whole server's first hour, end to end (issue 13, "Done when"): three new members link Last.fm,
sync, recommend, compare, build a playlist and make the usual mistakes, against the fake Discord and
the fake Last.fm. Every interaction gets exactly one clean answer: the strict fake rejects a second
initial response (40060) and any touch of a deleted message (10008), and the autouse check of
tests/bot/conftest.py fails the test on a repeated message or an error after an answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.config import Settings
from core.db.repositories import AccountRepository, ListenRepository, UserRepository
from core.services import Services
from core.sync.engine import LastfmSync
from tests.bot.world import GUILD_ID, fake_world
from tests.conftest import make_settings
from tests.fakes.discord_payloads import FakeUser
from tests.fakes.discord_server import FakeDiscord, InteractionRecord, SentMessage
from tests.fakes.lastfm_server import LastfmFake

NEWCOMERS = {
    "fern": FakeUser(id=1_300_000_000_000_000_201, username="fern", global_name="Fern"),
    "gus": FakeUser(id=1_300_000_000_000_000_202, username="gus", global_name="Gus"),
    "hana": FakeUser(id=1_300_000_000_000_000_203, username="hana", global_name="Hana"),
}
#: Their Last.fm histories: fern and gus share electronic artists, hana plays shoegaze.
HISTORIES = {
    "fern": ["Radiohead", "Portishead", "Massive Attack", "Boards of Canada"],
    "gus": ["Radiohead", "Portishead", "Aphex Twin", "Björk"],
    "hana": ["Slowdive", "My Bloody Valentine", "Ride", "Cocteau Twins"],
}
START = int(time.time()) - 5 * 86_400  # active listeners: the sync job visits them every 15 minutes


def scrobbles(artists: list[str], start: int = START, per_artist: int = 15) -> list[tuple[int, str, str, str]]:
    return [(start + 60 * (i * per_artist + k), artist, f"{artist} album", f"{artist} song {k}")
            for i, artist in enumerate(artists) for k in range(per_artist - 2 * i)]


@pytest.fixture
async def lastfm_fake() -> AsyncIterator[LastfmFake]:
    async with LastfmFake() as fake:
        for name, artists in HISTORIES.items():
            fake.add_user(f"{name}_fm", scrobbles=scrobbles(artists))
        yield fake


@pytest.fixture
def bot_settings(database_url: str, tmp_path: Path, lastfm_fake: LastfmFake) -> Settings:
    return make_settings(database_url, tmp_path, DISCORD_DEV_GUILD_ID=str(GUILD_ID),
                         SONANCE_PUBLIC_BASE_URL="http://127.0.0.1:8080", **lastfm_fake.settings_overrides())


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    guilds, users = fake_world()
    async with FakeDiscord(guilds=guilds, users=[*users, *NEWCOMERS.values()]) as server:
        yield server


async def ask(fake: FakeDiscord, name: str, user: str, options: dict[str, object] | None = None, *,
              subcommand: str | None = None) -> tuple[InteractionRecord, SentMessage]:
    record = await fake.dispatch(fake.slash(name, options or {}, subcommand=subcommand, user=user, guild=GUILD_ID))
    final = await record.wait_final(timeout=60)
    await asyncio.sleep(0.2)  # anything sent after the answer (a second refusal) would arrive now
    assert len(record.visible_messages()) == 1 or not final.ephemeral, record.events
    return record, final


async def user_id(services: Services, name: str) -> int:
    async with services.session() as session:
        user = await UserRepository(session).by_discord_id(NEWCOMERS[name].id)
    assert user is not None
    return user.id


async def wait_for_history(services: Services, name: str, listens: int, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        async with services.session() as session:
            user = await UserRepository(session).by_discord_id(NEWCOMERS[name].id)
            account = await AccountRepository.without_cipher(session).get(user.id, "lastfm") if user else None
            count = await ListenRepository(session).count_listens(user.id) if user else 0
        if account is not None and account.history_complete and count == listens:
            return
        assert time.monotonic() < deadline, f"{name}: {count} of {listens} listens imported"
        await asyncio.sleep(0.1)


async def test_a_servers_first_hour_gets_one_clean_answer_per_interaction(
        sonance: FakeDiscord, world_services: Services, lastfm_fake: LastfmFake) -> None:
    fake = sonance
    # -- mistakes before linking: a user name that does not exist (a refusal does not spend /link's
    #    30 s cooldown: fern links right after), recommendations before any history
    _, unknown = await ask(fake, "link", "fern", {"username": "nosuchuser_xyz"}, subcommand="lastfm")
    assert unknown.ephemeral and unknown.content == "I couldn't find a Last.fm user called 'nosuchuser_xyz'."
    _, early = await ask(fake, "recommend", "gus")
    assert early.ephemeral and "/link lastfm" in (early.content or "")

    # -- three members link Last.fm; their histories are imported in the background
    for name in NEWCOMERS:
        _, linked = await ask(fake, "link", name, {"username": f"{name}_fm"}, subcommand="lastfm")
        assert linked.ephemeral and linked.content.startswith(f"Linked Last.fm **{name}\\_fm**"), linked.content
    for name, artists in HISTORIES.items():
        await wait_for_history(world_services, name, len(scrobbles(artists)))
    _, account = await ask(fake, "account", "fern")
    assert account.ephemeral and "Syncing normally" in account.embeds[0]["fields"][0]["value"]

    # -- a new scrobble arrives and the scheduled sync picks it up
    lastfm_fake.users["fern_fm"].plays.append((int(time.time()) - 60, "Burial", "Untrue", "Archangel"))
    assert world_services.lastfm is not None
    await LastfmSync(world_services, world_services.lastfm).sync_due(active_minutes=0)
    async with world_services.session() as session:
        fern = await user_id(world_services, "fern")
        assert await ListenRepository(session).count_listens(fern) == len(scrobbles(HISTORIES["fern"])) + 1

    # -- recommendations (the first one may have to wait for the first model)
    for name in NEWCOMERS:
        for _ in range(30):
            _, picks = await ask(fake, "recommend", name, {"count": 5})
            if "still learning" not in (picks.content or ""):
                break
            await asyncio.sleep(1)
        assert picks.embeds, picks.content
    _, similar = await ask(fake, "similar", "hana", {"artist": "Slowdive"})
    assert similar.embeds and similar.embeds[0]["title"] == "Artists like Slowdive"

    # -- compare: with a friend, and by mistake with yourself
    _, friends = await ask(fake, "compat", "fern", {"member": NEWCOMERS["gus"].id})
    assert not friends.ephemeral and "Radiohead" in str(friends.embeds[0])
    _, yourself = await ask(fake, "compat", "gus", {"member": NEWCOMERS["gus"].id})
    assert yourself.ephemeral and yourself.content.startswith("That's you!")

    # -- a playlist
    _, playlist = await ask(fake, "playlist", "hana", {"mode": "for me", "length": 10})
    assert not playlist.ephemeral and playlist.embeds

    # -- garbage options Discord lets through
    _, nobody = await ask(fake, "similar", "gus", {"artist": "qwxzjkv"})
    assert nobody.ephemeral and nobody.content == "I don't know an artist called “qwxzjkv”, and neither does Last.fm."
    _, typo = await ask(fake, "similar", "gus", {"artist": "portshead"})
    assert typo.ephemeral and typo.content.endswith("Did you mean **Portishead**?")
    _, no_tag = await ask(fake, "recommend", "fern", {"tag": "zzzz-not-a-genre", "count": 3})
    assert no_tag.ephemeral and no_tag.content == "I don't know a tag called “zzzz-not-a-genre”."
    _, tag_typo = await ask(fake, "recommend", "fern", {"tag": "shoegze", "count": 3})
    assert tag_typo.content == "I don't know a tag called “shoegze”. Did you mean **shoegaze**?"
    _, tune = await ask(fake, "tune", "fern", {"text": "   !!! ???"})
    assert tune.ephemeral and tune.content.startswith("I couldn't find anything to change in that.")
    _, who = await ask(fake, "whoknows", "gus", {"artist": "%%%"})
    assert who.ephemeral and who.content.startswith("I don't know an artist called **%%%** yet.")

    # -- everything the fake saw: one initial response each, nothing rejected, no stray messages
    assert len(fake.interactions) >= 19
    fake.assert_clean()
    fake.assert_one_answer_per_interaction()
