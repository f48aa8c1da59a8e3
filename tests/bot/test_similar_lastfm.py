"""/similar for any artist Last.fm knows, end to end: fake Discord -> the real bot -> fake Last.fm."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.config import Settings
from core.db.repositories import CatalogRepository, ListenRepository, UserRepository
from core.db.repositories.listens import PlayRow
from core.matching import artist_key
from core.services import Services
from tests.bot.driving import run
from tests.bot.world import GUILD_ID, NOW
from tests.conftest import make_settings
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.lastfm_server import LastfmFake


@pytest.fixture
async def lastfm_fake() -> AsyncIterator[LastfmFake]:
    async with LastfmFake() as fake:
        yield fake


@pytest.fixture
def bot_settings(database_url: str, tmp_path: Path, lastfm_fake: LastfmFake) -> Settings:
    """The bot tests' world, with Last.fm configured (conftest's world_services and sonance use it)."""
    return make_settings(database_url, tmp_path, DISCORD_DEV_GUILD_ID=str(GUILD_ID),
                         SONANCE_PUBLIC_BASE_URL="http://127.0.0.1:8080", **lastfm_fake.settings_overrides())


async def test_similar_for_an_artist_outside_the_catalogue_asks_lastfm(sonance: FakeDiscord,
                                                                       lastfm_fake: LastfmFake) -> None:
    lastfm_fake.similar["aurora"] = [("Sigrid", 1.0), ("Florence + the Machine", 0.62), ("Björk", 0.4)]
    _, final = await run(sonance, "similar", "carol", {"artist": "aurora"})
    embed = final.embeds[0]
    assert embed["title"] == "Artists like aurora"
    assert [line.split("** ", 1)[1].split(" · ")[0].strip("[]").split("](")[0]
            for line in embed["description"].splitlines()][:3] == ["Sigrid", "Florence + the Machine", "Björk"]
    assert embed["footer"]["text"] == "Similar to aurora on Last.fm"

    # the answer is stored: asked once, answered again from the graph
    await run(sonance, "similar", "alice", {"artist": "AURORA"})
    assert len(lastfm_fake.requests_for("artist.getSimilar")) == 1


async def test_similar_for_an_artist_lastfm_does_not_know(sonance: FakeDiscord, lastfm_fake: LastfmFake) -> None:
    _, final = await run(sonance, "similar", "carol", {"artist": "Qwxz Nobody"})
    assert final.content == "I don't know an artist called “Qwxz Nobody”, and neither does Last.fm."
    assert not final.embeds
    assert len(lastfm_fake.requests_for("artist.getSimilar")) == 1


async def test_similar_for_a_modelled_artist_still_uses_the_model(sonance: FakeDiscord,
                                                                  lastfm_fake: LastfmFake) -> None:
    _, final = await run(sonance, "similar", "carol", {"artist": "Slowdive"})
    assert final.embeds[0]["footer"]["text"] == "From what listeners who play them also play, and shared tags"
    assert lastfm_fake.requests_for("artist.getSimilar") == []


async def test_similar_while_lastfm_is_down_says_so(sonance: FakeDiscord, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.fail_next("http", status=503, count=10, method="artist.getSimilar")
    _, final = await run(sonance, "similar", "carol", {"artist": "Unseen Band"})
    assert final.content == "Last.fm is unavailable right now. Please try again later."  # not our id "lastfm"


async def test_similar_for_a_modelled_artist_nothing_here_ties_to_asks_lastfm(
        sonance: FakeDiscord, world_services: Services, lastfm_fake: LastfmFake) -> None:
    """One listener, who plays nothing else: the model knows the artist but no evidence ties it to
    anyone, so Last.fm's neighbours answer instead of "Nothing close enough yet."."""
    async with world_services.session() as session:
        ids = await CatalogRepository(session).ensure_artists([{"name_key": artist_key("Lonely Drone"),
                                                                "name": "Lonely Drone"}])
        loner = await UserRepository(session).ensure_dataset_users("import", ["dataset:loner"])
        await ListenRepository(session).set_artist_plays(
            [PlayRow(loner["dataset:loner"], ids[artist_key("Lonely Drone")], 40, NOW)])
    lastfm_fake.similar["lonely drone"] = [("Stars of the Lid", 1.0), ("Eliane Radigue", 0.7)]
    _, final = await run(sonance, "similar", "carol", {"artist": "Lonely Drone"})
    embed = final.embeds[0]
    assert embed["footer"]["text"] == "Similar to Lonely Drone on Last.fm"
    assert "Stars of the Lid" in embed["description"] and "Eliane Radigue" in embed["description"]
