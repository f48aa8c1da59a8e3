"""/compat, /leaderboard and /matches end to end: the real bot against the fake Discord and the test DB.

World (tests/bot/world.py): alice and bob like electronic music, carol shoegaze, dave metal, all members
of GUILD_ID; erin has no history and is not (yet) recorded there; dataset listeners exist only in the
database (they shape the calibration and must never appear on a board).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

import pytest

from bot.render.compat import compat_embed
from bot.render.compat_card import render_compat_card
from core.asker import Asker
from core.db.repositories import ListenRepository, UserRepository
from core.db.repositories.listens import PlayRow
from core.domain import Compatibility
from core.services import Services
from core.sync.engine import invalidate_user_caches
from tests.bot.driving import check_acknowledged, everything_sent, run
from tests.bot.world import GUILD_ID, MEMBERS, OTHER_GUILD_ID
from tests.fakes.discord_server import FakeDiscord, SentMessage

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CAROL_ONLY = ("Slowdive", "My Bloody Valentine")  # carol's artists nobody else in the guild plays


def uid(name: str) -> int:
    return MEMBERS[name].fake.id


def score_of(message: SentMessage) -> float:
    match = re.search(r"(\d+)/100", message.embeds[0]["description"])
    assert match, message.embeds[0]
    return float(match.group(1))


async def run_with_global_name(fake: FakeDiscord, name: str, user: str, options: dict[str, object],
                              global_name: str) -> SentMessage:
    """`run`, but the member's Discord global name (the one Sonance shows everywhere) is `global_name`,
    set on the interaction's member object exactly where Discord puts it."""
    payload = fake.slash(name, options=options, user=fake.user(user))
    payload["member"]["user"]["global_name"] = global_name
    record = await fake.dispatch(payload)
    final = await record.wait_final(timeout=60.0)
    check_acknowledged(record)
    return final


async def test_compat_alice_bob_has_score_card_and_beats_alice_dave(sonance: FakeDiscord) -> None:
    _, bob = await run(sonance, "compat", "alice", {"member": uid("bob")})
    assert not bob.ephemeral
    embed = bob.embeds[0]
    assert "Alice" in embed["title"] and "Bob" in embed["title"]
    assert embed["image"]["url"] == "attachment://compat.png"
    names = [f["name"] for f in embed["fields"]]
    assert any(n.startswith("Top shared artists") for n in names) and "Confidence" in names
    shared = next(f["value"] for f in embed["fields"] if f["name"].startswith("Top shared artists"))
    assert "Radiohead" in shared and "Portishead" in shared
    assert len(bob.files) == 1 and bob.files[0].filename == "compat.png"
    assert bob.files[0].data.startswith(PNG_MAGIC)
    assert len(json.dumps(embed)) < 6000

    _, dave = await run(sonance, "compat", "alice", {"member": uid("dave")})
    assert score_of(bob) > score_of(dave)
    # no artist in common with dave: still a valid (low) score, with a kind note
    assert "don't share a single artist" in dave.embeds[0]["description"]
    sonance.assert_clean()


async def test_compat_refusals_are_kind_and_ephemeral(sonance: FakeDiscord) -> None:
    _, me = await run(sonance, "compat", "alice", {"member": uid("alice")})
    assert me.ephemeral and "yourself" in (me.content or "")
    _, erin = await run(sonance, "compat", "alice", {"member": uid("erin")})
    assert erin.ephemeral and "history" in (erin.content or "") and not erin.embeds
    _, asker_without_history = await run(sonance, "compat", "erin", {"member": uid("alice")})
    assert asker_without_history.ephemeral and "/link" in (asker_without_history.content or "")


async def test_compat_with_hidden_member_leaks_nothing(sonance: FakeDiscord, world_services: Services) -> None:
    ids = world_services.extras["world_ids"]
    async with world_services.session() as session:
        await UserRepository(session).set_guild_visibility(GUILD_ID, ids["carol"], False)
        await UserRepository(session).update_settings(ids["dave"], privacy_level="private")
    _, carol = await run(sonance, "compat", "alice", {"member": uid("carol")})
    _, dave = await run(sonance, "compat", "bob", {"member": uid("dave")})
    for refusal in (carol, dave):
        assert refusal.ephemeral and "keeps their listening private" in (refusal.content or "")
        assert not refusal.embeds and not refusal.files
    await run(sonance, "leaderboard", "bob")
    await run(sonance, "matches", "alice")
    sent = everything_sent(sonance)
    for artist in (*CAROL_ONLY, "Metallica", "Slayer"):
        assert artist not in sent
    assert "Carol" not in sent and "Dave" not in sent


async def test_hidden_asker_sees_their_result_alone(sonance: FakeDiscord, world_services: Services) -> None:
    ids = world_services.extras["world_ids"]
    async with world_services.session() as session:
        await UserRepository(session).update_settings(ids["carol"], privacy_level="private")
    _, result = await run(sonance, "compat", "carol", {"member": uid("alice")})
    assert result.ephemeral and result.embeds and result.files
    _, matches = await run(sonance, "matches", "carol")
    assert matches.ephemeral and "Alice" in matches.embeds[0]["description"]


async def test_leaderboard_excludes_hidden_members_and_non_members(sonance: FakeDiscord,
                                                                   world_services: Services) -> None:
    ids = world_services.extras["world_ids"]
    async with world_services.session() as session:
        users = UserRepository(session)
        await users.set_guild_visibility(GUILD_ID, ids["carol"], False)
        await users.update_settings(ids["bob"], hide_username=True)
        # Zed shares alice's taste exactly but is a member of another server only
        zed = await users.get_or_create_discord(1_300_000_000_000_000_999, "Zed")
        await users.ensure_membership(OTHER_GUILD_ID, zed.id)
        alice_rows = await ListenRepository(session).user_artist_plays(ids["alice"])
        await ListenRepository(session).set_artist_plays(
            [PlayRow(zed.id, r.artist_id, r.plays, datetime(2026, 11, 20, tzinfo=UTC)) for r in alice_rows])
    _, board = await run(sonance, "leaderboard", "alice")
    assert not board.ephemeral
    embed = board.embeds[0]
    text = json.dumps(embed, ensure_ascii=False)
    assert "Carol" not in text and "Zed" not in text and "dataset:" not in text
    assert "Bob" not in text and "a listener" in text  # hide_username: the repository's stand-in name
    lines = embed["description"].splitlines()
    assert lines and "Alice" in lines[0] and "a listener" in lines[0]  # alice & bob are the top pair
    assert len(lines) == 3  # alice, bob, dave: three visible members with history -> three pairs
    assert "3 members ranked" in embed["footer"]["text"]
    assert any("taste" in f["name"] for f in embed["fields"])


async def test_matches_lists_bob_first_for_alice(sonance: FakeDiscord) -> None:
    _, matches = await run(sonance, "matches", "alice")
    lines = matches.embeds[0]["description"].splitlines()
    assert "Bob" in lines[0]
    assert {"Carol", "Dave"} <= {n for line in lines[1:] for n in ("Carol", "Dave") if n in line}
    assert all("Alice" not in line for line in lines)


async def test_compat_has_a_per_user_cooldown(sonance: FakeDiscord) -> None:
    for _ in range(3):
        await run(sonance, "compat", "bob", {"member": uid("alice")})
    _, limited = await run(sonance, "compat", "bob", {"member": uid("alice")})
    assert limited.ephemeral and "Try again" in (limited.content or "")
    _, other_user = await run(sonance, "compat", "alice", {"member": uid("bob")})  # alice is not limited
    assert other_user.embeds


async def test_leaderboard_needs_two_visible_members(sonance: FakeDiscord, world_services: Services) -> None:
    ids = world_services.extras["world_ids"]
    async with world_services.session() as session:
        for name in ("bob", "carol", "dave"):
            await UserRepository(session).set_guild_visibility(GUILD_ID, ids[name], False)
    _, board = await run(sonance, "leaderboard", "alice")
    assert board.ephemeral and "two members" in (board.content or "")
    _, matches = await run(sonance, "matches", "alice")
    assert matches.ephemeral and "no one to match" in (matches.content or "")


async def test_compat_with_dollar_signs_in_a_name_answers_with_the_card(sonance: FakeDiscord,
                                                                           world_services: Services) -> None:
    """A name like `$_$ alice` is free text, not mathtext: /compat answers with embed and card
    whether the member with it asks or is named (their stored name is then that name)."""
    # Drawn now, not served from a cache that outlived an earlier test (Redis is shared in CI).
    await invalidate_user_caches(world_services.cache, world_services.extras["world_ids"]["alice"])
    asked = await run_with_global_name(sonance, "compat", "alice", {"member": uid("bob")}, "$_$ alice")
    _, named = await run(sonance, "compat", "bob", {"member": uid("alice")})
    # Markdown is escaped in titles too (Discord renders it there): `_` reads `\_`, shown as `_`.
    for answer, title in ((asked, "$\\_$ alice × Bob"), (named, "Bob × $\\_$ alice")):
        assert not answer.ephemeral and "went wrong" not in (answer.content or ""), answer.content
        embed = answer.embeds[0]
        assert embed["title"] == title
        assert embed["image"]["url"] == "attachment://compat.png"
        assert len(answer.files) == 1 and answer.files[0].data.startswith(PNG_MAGIC)
    sonance.assert_clean()


def broken_card(comp: Compatibility, name_a: str, name_b: str) -> bytes:
    """A card renderer that fails whatever it is given (module level: a worker process may run it)."""
    raise ValueError("the card renderer broke")


async def test_compat_answers_without_the_card_when_drawing_it_fails(world_services: Services,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The card only illustrates the answer: if it cannot be drawn, /compat still answers, without an
    image, and the failure is logged with both users and its type (not cached: the next ask retries)."""
    ids = world_services.extras["world_ids"]
    alice = Asker(ids["alice"], uid("alice"), GUILD_ID)
    # From no cached answer for the pair: Redis (in CI) outlives a test, and a cached card would hide the failure.
    await invalidate_user_caches(world_services.cache, ids["alice"])
    with caplog.at_level(logging.WARNING, logger="core.compat.service"):
        result = await world_services.compat.compare(alice, uid("bob"), render_card=broken_card)
    assert result.card_png is None and result.comp.shared_artists
    embed, file = compat_embed(result)
    assert file is None and embed.image.url is None and embed.fields
    failure = next(r for r in caplog.records if "compat card failed" in r.getMessage())
    assert "ValueError" in failure.getMessage()
    assert str(ids["alice"]) in failure.getMessage() and str(ids["bob"]) in failure.getMessage()

    again = await world_services.compat.compare(alice, uid("bob"), render_card=render_compat_card)
    assert again.card_png is not None and again.card_png.startswith(PNG_MAGIC)
