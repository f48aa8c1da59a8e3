"""CompatService over the database: building once, freshness after new listens, caching, privacy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from core.asker import Asker
from core.compat.service import CompatService
from core.db.repositories import UserRepository
from core.errors import InvalidInput, NotEnoughHistory, NotFound, NotInGuild, PrivacyHidden
from core.services import Services
from core.sync.engine import invalidate_user_caches
from core.sync.ingest import RawListen, ingest_listens
from tests.bot.world import GUILD_ID, MEMBERS, NOW, seed_world


def did(name: str) -> int:
    return MEMBERS[name].fake.id


@pytest.fixture
async def world(services: Services) -> AsyncIterator[Services]:
    services.extras["world_ids"] = await seed_world(services)
    yield services


def ask(services: Services, name: str) -> Asker:
    """The seeded member `name` asking in GUILD_ID."""
    return Asker(services.extras["world_ids"][name], did(name), GUILD_ID)


def service(services: Services, **kwargs: float) -> CompatService:
    return CompatService(services, freshness_interval_s=kwargs.pop("freshness_interval_s", 0.0), **kwargs)


async def test_space_is_built_once_even_under_concurrent_requests(world: Services) -> None:
    compat = service(world, freshness_interval_s=60.0)
    spaces = await asyncio.gather(*(compat.ensure_space() for _ in range(4)))
    assert compat.builds == 1 and all(s is spaces[0] for s in spaces)
    # dataset listeners are part of the population (the calibration needs them), members too
    assert len(spaces[0].users) == 4 + 60


async def test_rebuild_of_unchanged_data_keeps_the_version(world: Services) -> None:
    compat = service(world)
    first = (await compat.ensure_space()).version
    assert await compat.rebuild() == first
    await compat.ensure_space()
    assert compat.builds == 2  # rebuild() always builds; ensure_space saw nothing new


async def test_new_listens_refresh_the_space_and_the_cached_results(world: Services) -> None:
    compat = service(world)
    slow_calls: list[bool] = []

    async def on_slow(private: bool) -> None:
        slow_calls.append(private)

    before = await compat.compare(ask(world, "alice"), did("bob"), on_slow=on_slow)
    assert slow_calls == [False]
    assert "Boards of Canada" not in {s.name for s in before.comp.shared_artists}
    board_before = await compat.leaderboard(ask(world, "bob"))
    again = await compat.compare(ask(world, "alice"), did("bob"))
    assert again.comp == before.comp and compat.builds == 1  # served from the cache

    bob = world.extras["world_ids"]["bob"]
    async with world.session() as session:
        await ingest_listens(session, bob, [
            RawListen(artist="Boards of Canada", track=f"Roygbiv {k}", album="Music Has the Right", source="lastfm",
                      played_at=NOW + timedelta(hours=k)) for k in range(30)])
    await invalidate_user_caches(world.cache, bob)  # what the sync engine does after new listens

    after = await compat.compare(ask(world, "alice"), did("bob"))
    assert compat.builds == 2 and after.version != before.version
    assert "Boards of Canada" in {s.name for s in after.comp.shared_artists}
    assert after.comp.score >= before.comp.score
    board_after = await compat.leaderboard(ask(world, "bob"))
    assert board_after.version == after.version != board_before.version


async def test_the_freshness_interval_bounds_database_checks(world: Services) -> None:
    compat = service(world, freshness_interval_s=3600.0)
    await compat.ensure_space()
    bob = world.extras["world_ids"]["bob"]
    async with world.session() as session:
        await ingest_listens(session, bob, [RawListen(artist="Burial", track="Archangel", album="Untrue",
                                                      source="lastfm", played_at=NOW)])
    await compat.ensure_space()
    assert compat.builds == 1  # within the interval: no re-check...
    await compat.rebuild()  # ...until the scheduler (or a sync hook) asks
    assert compat.space is not None and "Burial" in compat.space.artist_names


async def test_refusals_come_before_anything_slow(world: Services) -> None:
    compat = service(world)
    ids = world.extras["world_ids"]
    async with world.session() as session:
        await UserRepository(session).set_guild_visibility(GUILD_ID, ids["carol"], False)
        await UserRepository(session).get_or_create_discord(4242, "Ghost")
    called: list[bool] = []

    async def on_slow(private: bool) -> None:
        called.append(private)

    cases = [
        ("alice", did("alice"), InvalidInput),  # yourself
        ("alice", did("carol"), PrivacyHidden),  # hidden in this guild
        ("alice", did("erin"), NotEnoughHistory),  # never linked anything
        ("alice", 999, NotFound),  # unknown to Sonance
        ("alice", 4242, NotEnoughHistory),  # known, no history
        ("erin", did("alice"), NotEnoughHistory),  # the asker has no history
    ]
    for asker, other, error in cases:
        with pytest.raises(error):
            await compat.compare(ask(world, asker), other, on_slow=on_slow)
    assert called == [] and compat.builds == 0
    # the hidden message never depends on the hidden member's history
    with pytest.raises(PrivacyHidden) as hidden:
        await compat.compare(ask(world, "bob"), did("carol"))
    assert "keeps their listening private" in hidden.value.user_message


async def test_public_member_not_recorded_in_this_guild_is_refused(world: Services) -> None:
    compat = service(world)
    ids = world.extras["world_ids"]
    async with world.session() as session:
        await UserRepository(session).remove_membership(GUILD_ID, ids["dave"])
    with pytest.raises(NotInGuild):
        await compat.compare(ask(world, "alice"), did("dave"))
    async with world.session() as session:
        await UserRepository(session).update_settings(ids["dave"], privacy_level="private")
    with pytest.raises(PrivacyHidden):
        await compat.compare(ask(world, "alice"), did("dave"))


async def test_hidden_asker_is_answered_privately_and_never_ranked(world: Services) -> None:
    compat = service(world)
    ids = world.extras["world_ids"]
    async with world.session() as session:
        await UserRepository(session).update_settings(ids["alice"], privacy_level="private")
    flags: list[bool] = []

    async def on_slow(private: bool) -> None:
        flags.append(private)

    result = await compat.compare(ask(world, "alice"), did("bob"), on_slow=on_slow)
    matches = await compat.matches(ask(world, "alice"), on_slow=on_slow)
    assert flags == [True, True] and result.private and matches.private
    assert matches.matches[0].name == "Bob"
    board = await compat.leaderboard(ask(world, "bob"))
    assert board.ranked_members == 3
    assert "Alice" not in {p.name_a for p in board.pairs} | {p.name_b for p in board.pairs}
    with pytest.raises(PrivacyHidden):
        await compat.compare(ask(world, "bob"), did("alice"))


async def test_leaderboard_scores_match_the_pair_scores(world: Services) -> None:
    compat = service(world)
    board = await compat.leaderboard(ask(world, "bob"))
    assert (board.pairs[0].name_a, board.pairs[0].name_b) == ("Alice", "Bob")
    scores = [p.score for p in board.pairs]
    assert scores == sorted(scores, reverse=True)
    pair = await compat.compare(ask(world, "alice"), did("bob"))
    assert board.pairs[0].score == pair.comp.score
    assert board.centre is not None


async def test_the_card_is_drawn_in_a_worker_process_like_in_a_thread(world: Services,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    from bot.render.compat_card import render_compat_card

    compat = service(world)
    compat.cards.processes = 1  # the settings default outside tests (conftest turns workers off)
    try:
        with caplog.at_level("WARNING", logger="core.workers"):
            result = await compat.compare(ask(world, "alice"), did("bob"), render_card=render_compat_card)
        assert compat.cards.started and not caplog.records  # drawn in the worker: no fallback to a thread
        assert result.card_png == render_compat_card(result.comp, result.name_a, result.name_b)
    finally:
        await compat.aclose()
