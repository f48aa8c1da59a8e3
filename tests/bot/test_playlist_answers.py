"""What /playlist from seed says and lists, end to end: the real bot, the fake Discord, the test DB.

Found by driving the bot like a listener would: a seed playlist padded with artists nothing ties to
the seed (labelled "Similar to Radiohead"), a note whose rule its own list broke, a misspelt seed
with no "did you mean", and a typed seed echoed as Markdown.

World (tests/bot/world.py): every listener (member or dataset) plays inside one cluster, and
Radiohead is in two (electronic, shoegaze), so the metal and pop artists share no listener with
Radiohead: nothing makes them similar to it. Each test has its own asker, because /playlist has a
per-member cooldown of two a minute.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

from tests.bot.driving import click, run
from tests.bot.world import CLUSTERS
from tests.fakes.discord_limits import validate_message_payload
from tests.fakes.discord_server import FakeDiscord, SentMessage

XSPF = "{http://xspf.org/ns/0/}"
FILES = re.compile(r"^sonance:pl:\d+:files$")
#: Artists no listener of the world plays together with Radiohead.
UNRELATED_TO_RADIOHEAD = {a for cluster, artists in CLUSTERS.items() if "Radiohead" not in artists for a in artists}


@dataclass(frozen=True)
class Listed:
    artist: str
    title: str
    reason: str


async def whole_list(fake: FakeDiscord, preview: SentMessage, user: str) -> list[Listed]:
    """Every track of a previewed playlist, as "Download files" hands it out (the preview shows 15)."""
    files_id = next(c for c in preview.custom_ids() if FILES.match(c))
    answer = await click(fake, files_id, user, preview)
    xspf = next(f for f in answer.files if f.filename.endswith(".xspf"))
    tracks = ET.fromstring(xspf.data).findall(f"{XSPF}trackList/{XSPF}track")
    return [Listed(t.findtext(f"{XSPF}creator") or "", t.findtext(f"{XSPF}title") or "",
                   t.findtext(f"{XSPF}annotation") or "") for t in tracks]


def note_of(preview: SentMessage) -> str:
    return next((f["value"] for f in preview.embeds[0].get("fields", []) if f["name"] == "Note"), "")


async def test_a_seed_playlist_holds_no_unrelated_artists_and_says_why_it_is_short(sonance: FakeDiscord) -> None:
    """Before: 100 tracks asked from "Radiohead - Radiohead song 3" came padded with Metallica, Slayer
    and Iron Maiden, each "Similar to Radiohead". Now only artists the same people play come in, and
    the note says plainly that the list stops there rather than pad it."""
    _, preview = await run(sonance, "playlist", "bob",
                           {"mode": "from seed", "seed": "Radiohead - Radiohead song 3", "length": 100})
    assert not preview.ephemeral and not validate_message_payload(preview.body)
    tracks = await whole_list(sonance, preview, "bob")
    assert (tracks[0].artist, tracks[0].title) == ("Radiohead", "Radiohead song 3")
    artists = {t.artist for t in tracks}
    assert not artists & UNRELATED_TO_RADIOHEAD, sorted(artists & UNRELATED_TO_RADIOHEAD)
    similar = {t.artist for t in tracks if t.reason.startswith("Similar to Radiohead")}
    assert len(similar) >= 4  # the real neighbours are still there
    note = note_of(preview)
    assert note.startswith(f"Only {len(tracks)} of the 100 tracks"), note
    assert "Radiohead" in note and "unrelated" in note, note


async def test_the_note_states_the_rule_its_seed_playlist_keeps(sonance: FakeDiscord) -> None:
    """Before: Radiohead three times (the seed artist may come back more often) under a note saying
    "at most two per artist". Now the note says how often the seed's own tracks may come, and the
    list keeps to every number it states."""
    _, preview = await run(sonance, "playlist", "carol", {"mode": "from seed", "seed": "Radiohead", "length": 30})
    tracks = await whole_list(sonance, preview, "carol")
    per_artist = Counter(t.artist for t in tracks)
    note = note_of(preview)
    assert note.startswith(f"Only {len(tracks)} of the 30 tracks"), note
    assert "at most two per artist" in note
    seed_own = re.search(r"Radiohead's own up to (\d+)", note)
    assert seed_own is not None, note
    assert per_artist["Radiohead"] > 2  # the case the old note got wrong
    assert per_artist["Radiohead"] <= int(seed_own.group(1))
    assert all(count <= 2 for artist, count in per_artist.items() if artist != "Radiohead"), per_artist
    positions = [i for i, t in enumerate(tracks) if t.artist == "Radiohead"]
    assert all(b - a >= 5 for a, b in pairwise(positions))  # "never twice within five"


async def test_a_misspelt_seed_gets_the_did_you_mean_of_similar(sonance: FakeDiscord) -> None:
    """Before: "I don't know an artist called “Radiohed”." and nothing else, while /similar and
    /whoknows offer the artist meant."""
    _, answer = await run(sonance, "playlist", "erin", {"mode": "from seed", "seed": "Radiohed"})
    assert answer.ephemeral and not answer.embeds
    assert answer.content == "I don't know an artist called “Radiohed”. Did you mean **Radiohead**?"


async def test_a_typed_seed_is_echoed_as_typed_never_as_markdown_or_a_ping(sonance: FakeDiscord) -> None:
    """Before: a seed of `**x** @everyone` came back bold, with a live @everyone in it."""
    _, answer = await run(sonance, "playlist", "erin", {"mode": "from seed", "seed": "**x** @everyone"})
    assert answer.ephemeral and not answer.embeds
    content = answer.content or ""
    assert content.startswith("I don't know an artist called “"), content
    assert "**x**" not in content and "@everyone" not in content, content
    assert "\\*\\*x\\*\\*" in content and "@\u200beveryone" in content, content


async def test_a_known_artist_with_a_title_not_known_yet_seeds_from_the_artist(sonance: FakeDiscord) -> None:
    """Before: "Radiohead - Creep" (no one had played Creep yet) was refused as an unknown *artist*
    called "Radiohead - Creep", with "Did you mean Radiohead?"."""
    _, preview = await run(sonance, "playlist", "dave", {"mode": "from seed", "seed": "Radiohead - Creep",
                                                         "length": 10})
    assert not preview.ephemeral and preview.embeds
    assert note_of(preview).startswith("I don't know “Creep” by Radiohead yet, so this starts from Radiohead.")
    tracks = await whole_list(sonance, preview, "dave")
    assert tracks[0].artist == "Radiohead" and not UNRELATED_TO_RADIOHEAD & {t.artist for t in tracks}
