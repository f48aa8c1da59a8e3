"""What /recommend, /similar and "Why?" say when the answer is empty, short or questioned, end to end
against the fake Discord (the real bot, the real services, the world of tests/bot/world.py).

Why these tests: a review found answers that were true but not about what happened (an empty tag
list answered with a sentence about history size), short lists never explained, /similar padded with
unrelated artists, "Why?" repeating the card's line, and typed names echoed with live Markdown.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.config import Settings
from core.db.repositories import CatalogRepository, ListenRepository, UserRepository
from core.db.repositories.listens import PlayRow
from core.matching import artist_key
from core.services import Services
from tests.bot.driving import click, run
from tests.bot.world import CLUSTERS, GUILD_ID, NOW
from tests.conftest import make_settings
from tests.fakes.discord_server import FakeDiscord, SentMessage
from tests.fakes.lastfm_server import LastfmFake

WHY = re.compile(r"^sonance:why:(\d+)$")
WINDOW = "I skip what you already play and what I showed you in the last 30 days."


@pytest.fixture
async def lastfm_fake() -> AsyncIterator[LastfmFake]:
    async with LastfmFake() as fake:
        yield fake


@pytest.fixture
def bot_settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """The bot tests' world; with Last.fm configured (the local fake) for tests that ask for it."""
    lastfm = request.getfixturevalue("lastfm_fake").settings_overrides() if "lastfm_fake" in request.fixturenames \
        else {}
    return make_settings(database_url, tmp_path, DISCORD_DEV_GUILD_ID=str(GUILD_ID),
                         SONANCE_PUBLIC_BASE_URL="http://127.0.0.1:8080", **lastfm)


def listed(message: SentMessage) -> list[str]:
    """Item names in the embed description, in order (link syntax removed)."""
    description = message.embeds[0]["description"]
    return [re.sub(r"^\[(.*)\]\(.*\)$", r"\1", m.split(" · ")[0])
            for m in re.findall(r"\*\*\d+\.\*\* (.+)", description)]


def footer(message: SentMessage) -> str:
    return str(message.embeds[0]["footer"]["text"])


# --- 1. empty lists say what happened --------------------------------------------------------------

async def test_an_emptied_tag_list_says_nothing_fresh_is_left_not_how_big_the_history_is(
        sonance: FakeDiscord) -> None:
    """alice's first list shows all 16 artists she doesn't play (the reviewer's 10 happened to hold
    every shoegaze one); the tag list then is empty because of the repeat window, and the answer
    says exactly that (before: the small-history note alone)."""
    _, first = await run(sonance, "recommend", "alice", {"count": 16})
    assert "Page 1/4" in footer(first)
    _, empty = await run(sonance, "recommend", "alice", {"tag": "shoegaze"})
    assert empty.ephemeral and not empty.embeds
    assert empty.content == f"No fresh picks tagged shoegaze right now: {WINDOW}"


async def test_a_tag_whose_artists_you_all_play_says_so(sonance: FakeDiscord) -> None:
    """carol plays My Bloody Valentine, the only "noise pop" artist: nothing to recommend, and not
    because of anything shown."""
    _, answer = await run(sonance, "recommend", "carol", {"tag": "noise pop"})
    assert answer.ephemeral and answer.content == "You already play every artist tagged noise pop I know."


async def test_a_list_with_nothing_fresh_left_says_why(sonance: FakeDiscord) -> None:
    """dave's list of 25 holds every artist he doesn't play; the next list has nothing new. A 👎 he
    gave is named too (only reasons that apply to him are)."""
    _, full = await run(sonance, "recommend", "dave", {"count": 25})
    _, empty = await run(sonance, "recommend", "dave", {"count": 5})
    assert empty.ephemeral and empty.content == f"No fresh artist picks right now: {WINDOW}"
    down = next(c for c in full.custom_ids() if c.endswith(":down"))
    await click(sonance, down, "dave", full)
    _, again = await run(sonance, "recommend", "dave", {"count": 5})
    assert again.content == ("No fresh artist picks right now: I skip what you already play, what I showed you "
                             "in the last 30 days and what you gave a 👎.")


async def test_an_echoed_tag_cannot_format_the_answer(sonance: FakeDiscord) -> None:
    _, answer = await run(sonance, "recommend", "alice", {"tag": "__shoe*gaze__"})
    assert answer.ephemeral and (answer.content or "").startswith(r"I don't know a tag called “\_\_shoe\*gaze\_\_”.")


# --- 2. a short list is explained, with the history note ---------------------------------------------

async def test_a_short_list_says_how_many_and_why_next_to_the_history_note(sonance: FakeDiscord) -> None:
    """dave plays 3 of the world's 20 artists: 17 fresh picks for 25 asked. Nothing was shown to him
    yet, so the note names only what applies (before: the history note alone, no "Only 17")."""
    _, answer = await run(sonance, "recommend", "dave", {"count": 25})
    assert footer(answer).startswith("Based on only 3 artists you play, so these lean on tags and popularity. "
                                     "Only 17 fresh picks: I skip what you already play. · Page 1/4"), footer(answer)
    _, albums = await run(sonance, "recommend", "carol", {"kind": "albums", "count": 25})
    assert re.match(r"^Based on only 4 albums you play, so these lean on tags and popularity\. Only \d+ fresh "
                    r"picks \(at most 2 per artist\): I skip what you already play\. · ", footer(albums)), \
        footer(albums)
    _, again = await run(sonance, "recommend", "bob", {"count": 25, "tag": "shoegaze"})
    assert footer(again).startswith("Based on only 4 artists you play, so these lean on tags and popularity. "
                                    "Only 4 fresh picks tagged shoegaze: I skip what you already play. · Page 1/1"), \
        footer(again)


# --- 3. /similar never pads with unrelated artists -------------------------------------------------

async def test_similar_lists_only_artists_that_share_something_with_the_seed(sonance: FakeDiscord) -> None:
    _, pop = await run(sonance, "similar", "alice", {"artist": "Taylor Swift"})
    names = listed(pop)
    assert names and names[0] == "Dua Lipa", names
    assert not set(names) & set(CLUSTERS["metal"]), names
    _, metal = await run(sonance, "similar", "alice", {"artist": "Metallica"})
    assert set(listed(metal)) == set(CLUSTERS["metal"]) - {"Metallica"}


async def test_similar_says_nothing_is_close_when_nothing_is(sonance: FakeDiscord, world_services: Services) -> None:
    """An artist with one listener who plays nothing else, and no tags: no evidence links it to
    anyone, so the renderer's fallback shows instead of ten popular strangers."""
    async with world_services.session() as session:
        catalog = CatalogRepository(session)
        ids = await catalog.ensure_artists([{"name_key": artist_key("Lonely Drone"), "name": "Lonely Drone"}])
        loner = await UserRepository(session).ensure_dataset_users("import", ["dataset:loner"])
        await ListenRepository(session).set_artist_plays(
            [PlayRow(loner["dataset:loner"], ids[artist_key("Lonely Drone")], 40, NOW)])
    _, answer = await run(sonance, "similar", "alice", {"artist": "Lonely Drone"})
    assert answer.embeds[0]["title"] == "Artists like Lonely Drone"
    assert answer.embeds[0]["description"] == "Nothing close enough yet."


# --- 4. "Why?" shows the evidence, not the card's sentence again -----------------------------------

async def test_why_lists_the_stored_evidence_instead_of_repeating_the_card(sonance: FakeDiscord) -> None:
    _, answer = await run(sonance, "recommend", "dave", {"count": 3, "discovery": "familiar"})
    description = answer.embeds[0]["description"]
    first_name = listed(answer)[0]
    card_line = description.split("\n")[1]
    assert first_name in CLUSTERS["metal"], listed(answer)
    why = next(c for c in answer.custom_ids() if WHY.match(c))
    reply = await click(sonance, why, "dave", answer)
    text = reply.content or ""
    assert reply.ephemeral
    assert card_line not in text, text
    lines = text.split("\n")
    assert lines[0] == f"**Why {first_name}?**", text
    bullets = [line for line in lines[1:] if line]
    assert bullets and all(line.startswith("• ") for line in bullets), text
    close = next(line for line in bullets if line.startswith("• Close to what you play: "))
    assert set(close.removeprefix("• Close to what you play: ").split(", ")) <= {"Metallica", "Slayer", "Iron Maiden"}
    tags = next(line for line in bullets if line.startswith("• Tags you share: "))
    assert "metal" in tags
    assert any(line.startswith("• What lifted it: ") and "listeners who play what you play" in line
               for line in bullets), text


# --- 5. typed names are echoed as text, not Markdown ------------------------------------------------

async def test_an_unknown_artist_is_echoed_without_its_markdown(sonance: FakeDiscord) -> None:
    _, missing = await run(sonance, "similar", "carol", {"artist": "**Nobody** _At_ All"})
    assert missing.ephemeral
    assert (missing.content or "").startswith(r"I don't know an artist called “\*\*Nobody\*\* \_At\_ All”."), \
        missing.content


async def test_a_name_neither_we_nor_lastfm_know_is_echoed_without_its_markdown(
        sonance: FakeDiscord, lastfm_fake: LastfmFake) -> None:
    """With Last.fm configured (production), the "unknown" sentence comes from the similar graph."""
    _, missing = await run(sonance, "similar", "carol", {"artist": "**Qwxz** Nobody"})
    assert missing.content == r"I don't know an artist called “\*\*Qwxz\*\* Nobody”, and neither does Last.fm."
