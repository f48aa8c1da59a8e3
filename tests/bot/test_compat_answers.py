"""What /compat, /leaderboard and /matches *say*: every sentence and field a member reads is true of
the answer it sits in, grammatical, and escaped. The real bot against the fake Discord.

World (tests/bot/world.py): alice and bob like electronic music, carol shoegaze (plus Radiohead),
dave metal; every member has a thin history (3-4 artists, a few dozen plays), so every pair is an
"early read" until a test gives someone more listening. Dave shares no artist, tag or listener
neighbourhood with anyone, so his pairs have no bridges.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.db.repositories import CatalogRepository, ListenRepository, UserRepository
from core.db.repositories.listens import PlayRow
from core.matching import artist_key
from core.services import Services
from tests.bot.driving import check_acknowledged, run
from tests.bot.world import CATALOG, GUILD_ID, MEMBERS
from tests.fakes.discord_server import FakeDiscord, SentMessage

WEIRD = "*@everyone* __al_ice__ `x`"
WEIRD_ESCAPED = "\\*@everyone\\* \\_\\_al\\_ice\\_\\_ \\`x\\`"


def uid(name: str) -> int:
    return MEMBERS[name].fake.id


def fields(message: SentMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0].get("fields", [])}


def summary(message: SentMessage) -> str:
    """The explainer's paragraph: the description line right under the "## 83/100 · label" heading."""
    return message.embeds[0]["description"].split("\n")[1]


async def give_plays(services: Services, name: str, plays: dict[str, int], *, join: bool = False) -> None:
    """Store per-artist play counts for a world member (as an import would); `join` also records
    them as a member of GUILD_ID (erin is not one until then)."""
    async with services.session() as session:
        user_id = services.extras["world_ids"][name]
        if join:
            await UserRepository(session).ensure_membership(GUILD_ID, user_id)
        artist_ids = await CatalogRepository(session).ensure_artists(
            {"name_key": artist_key(a), "name": a} for a in plays)
        await ListenRepository(session).set_artist_plays(
            [PlayRow(user_id, artist_ids[artist_key(a)], n, datetime(2026, 11, 20, tzinfo=UTC))
             for a, n in plays.items()])


# --- 1. the note under the score only names fields the answer has --------------------------------
async def test_no_shared_artist_and_no_bridge_promises_no_bridges(sonance: FakeDiscord) -> None:
    _, answer = await run(sonance, "compat", "carol", {"member": uid("dave")})
    description = answer.embeds[0]["description"]
    assert "don't share a single artist" in description
    assert not any(name.startswith("Bridges") for name in fields(answer))
    assert "bridge" not in description.lower(), description


async def test_no_shared_artist_but_bridges_points_at_them(sonance: FakeDiscord, world_services: Services) -> None:
    """Erin plays dream pop carol never played: no shared artist, but the shoegaze listeners link
    them, so there are bridges and the note may point at them."""
    await give_plays(world_services, "erin", {"Cocteau Twins": 40, "Beach House": 25}, join=True)
    _, answer = await run(sonance, "compat", "carol", {"member": uid("erin")})
    description = answer.embeds[0]["description"]
    assert "don't share a single artist" in description
    assert any(name.startswith("Bridges") for name in fields(answer)), fields(answer)
    assert "The bridges below" in description


# --- 2. the summary reads as English and does not repeat the score -------------------------------
async def test_summary_is_grammatical_and_leaves_the_score_to_the_heading(sonance: FakeDiscord) -> None:
    _, great = await run(sonance, "compat", "alice", {"member": uid("bob")})
    _, far = await run(sonance, "compat", "carol", {"member": uid("dave")})
    assert great.embeds[0]["description"].startswith("## 83/100 · great match\n")
    assert "a great match" in summary(great), summary(great)
    assert far.embeds[0]["description"].startswith("## 24/100 · different wavelengths\n")
    assert "on different wavelengths" in summary(far), summary(far)
    for answer in (great, far):
        assert "/100" not in summary(answer), summary(answer)
        assert not re.search(r"\bare (great match|different wavelengths|some common ground)", summary(answer))


# --- 3. thin histories are marked on the boards as in /compat ------------------------------------
async def test_leaderboard_and_matches_mark_early_reads_like_compat(sonance: FakeDiscord,
                                                                    world_services: Services) -> None:
    """Alice and bob get a long history (every catalogue artist, many plays): their pair is no longer
    an early read; every pair with thin-history carol or dave still is, on every surface."""
    for name in ("alice", "bob"):
        await give_plays(world_services, name, {a: 60 + 5 * k for k, a in enumerate(CATALOG)})
    _, rich = await run(sonance, "compat", "alice", {"member": uid("bob")})
    _, thin = await run(sonance, "compat", "bob", {"member": uid("carol")})
    assert "early read" not in fields(rich)["Confidence"], fields(rich)["Confidence"]
    assert "early read" in fields(thin)["Confidence"]

    _, board = await run(sonance, "leaderboard", "bob")
    lines = board.embeds[0]["description"].splitlines()
    assert len(lines) == 6
    for line in lines:
        thin_pair = "Carol" in line or "Dave" in line
        assert line.endswith(" · early read") == thin_pair, line
    assert "Alice" in lines[0] and "Bob" in lines[0]
    assert "Early read: a thin listening history" in board.embeds[0]["footer"]["text"]  # explained where shown

    _, matches = await run(sonance, "matches", "alice")
    lines = matches.embeds[0]["description"].splitlines()
    assert "Bob" in lines[0] and not lines[0].endswith("early read"), lines[0]
    assert all(line.endswith(" · early read") for line in lines[1:]), lines


async def test_leaderboard_without_rich_histories_marks_every_pair(sonance: FakeDiscord) -> None:
    _, compat = await run(sonance, "compat", "bob", {"member": uid("alice")})
    assert fields(compat)["Confidence"].endswith("(early read, thin history)")
    _, board = await run(sonance, "leaderboard", "bob")
    lines = board.embeds[0]["description"].splitlines()
    assert lines and all(line.endswith(" · early read") for line in lines), lines
    centre = next(v for k, v in fields(board).items() if "taste" in k)
    assert centre.endswith(" · early read"), centre


# --- 4. every place a display name appears is escaped --------------------------------------------
async def test_field_names_escape_markdown_in_display_names(sonance: FakeDiscord) -> None:
    payload = sonance.slash("compat", options={"member": uid("bob")}, user=sonance.user("alice"))
    payload["member"]["user"]["global_name"] = WEIRD
    record = await sonance.dispatch(payload)
    answer = await record.wait_final(timeout=60.0)
    check_acknowledged(record)
    names = list(fields(answer))
    assert f"Top shared artists (plays: {WEIRD_ESCAPED} · Bob)" in names, names
    assert f"Only {WEIRD_ESCAPED}" in names, names
    assert not any(WEIRD in name for name in names), names


# --- 5. bridges say in plain words what their number is -------------------------------------------
async def test_bridges_say_plainly_how_well_they_fit(sonance: FakeDiscord) -> None:
    _, answer = await run(sonance, "compat", "alice", {"member": uid("bob")})
    bridges = next(v for k, v in fields(answer).items() if k.startswith("Bridges")).splitlines()
    assert not any(re.search(r", top \d+% for ", line) for line in bridges), bridges
    # Of the artists bob's taste reaches and he hasn't played, Boards of Canada is in the best 1/8.
    assert ("**Boards of Canada**: one of Alice's top artists; of the artists Bob hasn't played, it's in the "
            "top 12% for Bob's taste") in bridges, bridges

    _, weak = await run(sonance, "compat", "bob", {"member": uid("carol")})
    lines = next(v for k, v in fields(weak).items() if k.startswith("Bridges")).splitlines()
    # Björk is the reachable artist carol's taste reaches least: no "top 100%".
    assert "**Björk**: one of Bob's top artists; a stretch for Carol's taste, but within reach" in lines, lines
    assert not any("top 100%" in line for line in lines), lines

def test_compat_and_boards_share_one_early_read_threshold() -> None:
    """Just under `EARLY_READ_CONFIDENCE` every surface says "early read"; at it, none does."""
    from bot.render.compat import compat_embed, leaderboard_embed, matches_embed
    from core.compat.service import CompatResult, LeaderboardResult, MatchesResult, RankedMember, RankedPair
    from core.domain import EARLY_READ_CONFIDENCE, Compatibility

    for confidence, early in ((EARLY_READ_CONFIDENCE - 0.001, True), (EARLY_READ_CONFIDENCE, False)):
        comp = Compatibility(score=83.0, label="great match", raw=0.4, confidence=confidence, shared_artists=(),
                             shared_tags=(), bridges=(), differences_a=(), differences_b=(), components={})
        embed, _ = compat_embed(CompatResult(comp, "Alice", "Bob", "…", None, False, None, "v"))
        confidence_field = next(f.value for f in embed.fields if f.name == "Confidence")
        board = leaderboard_embed(LeaderboardResult((RankedPair("Alice", "Bob", 83.0, "great match", confidence),),
                                                    RankedMember("Bob", 76.0, "in tune", confidence), 2, "v"), None)
        matches = matches_embed(MatchesResult("Alice", (RankedMember("Bob", 83.0, "great match", confidence),),
                                              False, "v"))
        assert ("early read" in (confidence_field or "")) == early
        assert (board.description or "").endswith(" · early read") == early
        assert (matches.description or "").endswith(" · early read") == early
        assert ("Early read:" in (board.footer.text or "")) == early
