"""/playlist and its persistent export buttons, end to end: the real bot, the fake Discord, the test DB.

World (tests/bot/world.py): alice and bob play electronic artists, carol shoegaze, dave metal; no
Spotify app is configured here, so only "Download files" is offered.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from core.db.repositories import UserRepository
from core.services import Services
from tests.bot.driving import click, everything_sent, run
from tests.bot.world import GUILD_ID, MEMBERS
from tests.fakes.discord_limits import validate_message_payload
from tests.fakes.discord_server import FakeDiscord

EXPORT = re.compile(r"^sonance:pl:(\d+):(spotify|files)$")
XSPF = "{http://xspf.org/ns/0/}"
CAROL_ONLY = ("Slowdive", "My Bloody Valentine", "Ride")


def uid(name: str) -> int:
    return MEMBERS[name].fake.id


async def test_playlist_for_me_preview_and_download_files(sonance: FakeDiscord) -> None:
    _, preview = await run(sonance, "playlist", "alice", {"mode": "for me", "length": 20})
    assert not preview.ephemeral and not validate_message_payload(preview.body)
    embed = preview.embeds[0]
    assert embed["title"] and "tracks" in embed["footer"]["text"]
    assert len(re.findall(r"`\s*\d+\.`", embed["description"])) >= 10
    assert len(json.dumps(embed)) < 6000
    exports = [c for c in preview.custom_ids() if EXPORT.match(c)]
    assert [EXPORT.match(c).group(2) for c in exports] == ["files"]  # type: ignore[union-attr]  # no Spotify here
    files_id = exports[0]

    answer = await click(sonance, files_id, "alice", preview)
    assert answer.ephemeral
    assert sorted(f.filename.rsplit(".", 1)[1] for f in answer.files) == ["m3u", "xspf"]
    xspf = next(f for f in answer.files if f.filename.endswith(".xspf"))
    m3u = next(f for f in answer.files if f.filename.endswith(".m3u"))
    root = ET.fromstring(xspf.data)
    tracks = root.findall(f"{XSPF}trackList/{XSPF}track")
    assert len(tracks) >= 10 and all(t.findtext(f"{XSPF}creator") for t in tracks)
    lines = m3u.data.decode("utf-8").splitlines()
    assert lines[0] == "#EXTM3U" and sum(1 for line in lines if line.startswith("#EXTINF:")) == len(tracks)
    assert "https://www.last.fm/search?q=" in (answer.content or "")
    assert "https://open.spotify.com/search/" in (answer.content or "")

    # someone else can't use alice's buttons; alice can, even after a restart (no message cached)
    refused = await click(sonance, files_id, "bob", preview)
    assert refused.ephemeral and "someone else's playlist" in (refused.content or "") and not refused.files
    after_restart = await click(sonance, files_id, "alice")
    assert len(after_restart.files) == 2
    sonance.assert_clean()


async def test_blend_shows_fairness_and_hidden_member_is_refused_without_leaks(
        sonance: FakeDiscord, world_services: Services) -> None:
    ids = world_services.extras["world_ids"]
    async with world_services.session() as session:
        await UserRepository(session).set_guild_visibility(GUILD_ID, ids["carol"], False)
    _, refusal = await run(sonance, "playlist", "bob", {"mode": "blend", "member": uid("carol")})
    assert refusal.ephemeral and "keeps their listening private" in (refusal.content or "")
    assert not refusal.embeds and not refusal.files and not refusal.components
    sent = everything_sent(sonance)
    for artist in CAROL_ONLY:
        assert artist not in sent
    assert "Carol" not in sent

    _, blend = await run(sonance, "playlist", "alice", {"mode": "blend", "member": uid("bob"), "length": 10})
    assert not blend.ephemeral
    fairness = next(f["value"] for f in blend.embeds[0]["fields"] if f["name"] == "Fairness")
    assert "Alice" in fairness and "Bob" in fairness


async def test_seed_mode_autocomplete_and_refusals(sonance: FakeDiscord) -> None:
    record = await sonance.dispatch(sonance.autocomplete("playlist", "seed", "por", options={"mode": "from seed"},
                                                         user=sonance.user("dave")))
    choices = await record.wait_for(lambda r: r.choices, timeout=10.0)
    assert [c["value"] for c in choices] == ["Portishead"]
    _, seeded = await run(sonance, "playlist", "dave", {"mode": "from seed", "seed": "Portishead"})
    assert "Portishead" in seeded.embeds[0]["description"]
    _, missing = await run(sonance, "playlist", "dave", {"mode": "from seed"})
    assert missing.ephemeral and "seed" in (missing.content or "")
    _, limited = await run(sonance, "playlist", "dave", {"mode": "for me"})  # third /playlist within a minute
    assert limited.ephemeral and "Try again" in (limited.content or "")
