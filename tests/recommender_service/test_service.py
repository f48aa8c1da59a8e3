"""RecommendService over a real database: real-time history, repeat window, feedback, training, swaps."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.models import ModelArtifact, RecommendationShown
from core.db.repositories import ListenRepository, SchedulingRepository
from core.db.repositories.listens import PlayRow
from core.db.repositories.recommendations import RecommendationRepository
from core.db.types import utcnow
from core.domain import Kind
from core.errors import NotLinked
from core.recommender.engine import RecommenderEngine
from core.recommender.service import NotYours, RecommendService
from core.recommender.training import train_from_db
from core.services import Services
from tests.bot.world import MEMBERS
from tests.recommender_service.askers import asker_for

ALICE = MEMBERS["alice"].fake.id


async def names(service: RecommendService, discord_id: int = ALICE, **kwargs: object) -> list[str]:
    result = await service.recommend(await asker_for(service.services, discord_id), **kwargs)  # type: ignore[arg-type]
    return [s.rec.name for s in result.items]


async def test_training_from_db_saves_artifact_and_active_row(world: Services) -> None:
    engine, metrics = await train_from_db(world, kind="artist")
    path = Path(metrics["path"])
    assert (path / "manifest.json").exists() and (path / "arrays.npz").exists()
    assert sorted(os.listdir(path)) == ["arrays.npz", "manifest.json"]  # no pickle
    assert metrics["n_users"] >= 60 and metrics["n_items"] == 20 and "validation_ndcg@10" in metrics
    async with world.session() as session:
        active = await SchedulingRepository(session).active_artifact("hybrid", "artist")
    assert active is not None and active.version == metrics["version"] and active.path == str(path)
    assert active.metrics["n_items"] == 20
    reloaded = RecommenderEngine.load(path)
    assert len(reloaded.items) == len(engine.items)
    # a second training deactivates the first row: exactly one active
    await train_from_db(world, kind="artist", tune=False)
    async with world.session() as session:
        rows = (await session.execute(select(ModelArtifact).where(ModelArtifact.active.is_(True)))).scalars().all()
    assert len(rows) == 1 and rows[0].version != metrics["version"]


async def test_new_listens_change_next_results_without_retraining(world: Services) -> None:
    service = RecommendService.of(world)
    before = await names(service, count=5)
    version = service.model(Kind.ARTIST).version  # type: ignore[union-attr]
    swaps = service.swaps
    ids = world.extras["world_ids"]
    async with world.session() as session:
        from core.db.repositories import CatalogRepository
        from core.matching import artist_key
        catalog = CatalogRepository(session)
        metal = [await catalog.artist_by_key(artist_key(n)) for n in ("Metallica", "Slayer", "Iron Maiden", "Megadeth")]
        await ListenRepository(session).set_artist_plays(
            [PlayRow(ids["alice"], a.id, 500, utcnow()) for a in metal if a is not None][:3])
    after = await names(service, count=5, discovery=0.0)
    assert service.swaps == swaps and service.model(Kind.ARTIST).version == version  # type: ignore[union-attr]
    assert after != before
    assert "Metallica" not in after  # now known
    assert "Megadeth" in after  # the metal neighbour of her new listens


async def test_repeat_window_and_feedback(world: Services) -> None:
    service = RecommendService.of(world)
    first = await service.recommend(await asker_for(world, ALICE), count=3)
    second = await service.recommend(await asker_for(world, ALICE), count=3)
    assert not {s.rec.item_id for s in first.items} & {s.rec.item_id for s in second.items}
    # a liked item may come back despite the window
    liked = first.items[0]
    await service.feedback(await asker_for(world, ALICE), liked.shown_id, +1)
    third = await service.recommend(await asker_for(world, ALICE), count=5)
    assert liked.rec.item_id in {s.rec.item_id for s in third.items}
    # a disliked one never does
    disliked = third.items[-1]
    await service.feedback(await asker_for(world, ALICE), disliked.shown_id, -1)
    async with world.session() as session:  # age every shown row out of the window
        for row in (await session.execute(select(RecommendationShown))).scalars():
            row.shown_at = utcnow() - timedelta(days=world.settings.repeat_window_days + 1)
    for _ in range(3):
        again = await service.recommend(await asker_for(world, ALICE), count=10)
        assert disliked.rec.item_id not in {s.rec.item_id for s in again.items}


async def test_only_the_owner_may_vote_and_ask_why(world: Services) -> None:
    service = RecommendService.of(world)
    result = await service.recommend(await asker_for(world, ALICE), count=2)
    shown = result.items[0]
    with pytest.raises(NotYours):
        await service.feedback(await asker_for(world, MEMBERS["bob"].fake.id), shown.shown_id, -1)
    with pytest.raises(NotYours):
        await service.why(await asker_for(world, MEMBERS["bob"].fake.id), shown.shown_id)
    async with world.session() as session:
        assert await RecommendationRepository(session).feedback(world.extras["world_ids"]["alice"], "artist") == {}
    await service.feedback(await asker_for(world, ALICE), shown.shown_id, -1)
    await service.feedback(await asker_for(world, ALICE), shown.shown_id, +1)  # a new vote replaces the old one
    async with world.session() as session:
        votes = await RecommendationRepository(session).feedback(world.extras["world_ids"]["alice"], "artist")
    assert votes == {shown.rec.item_id: 1}
    assert shown.rec.name in (await service.why(await asker_for(world, ALICE), shown.shown_id)) or await service.why(await asker_for(world, ALICE), shown.shown_id)


async def test_unlinked_user_is_refused_and_albums_need_listens(world: Services) -> None:
    service = RecommendService.of(world)
    with pytest.raises(NotLinked):
        await service.recommend(await asker_for(world, MEMBERS["erin"].fake.id))
    with pytest.raises(NotLinked):
        await service.recommend(await asker_for(world, 999))
    albums = await service.recommend(await asker_for(world, ALICE), kind="album", count=3)
    assert albums.items and all(s.rec.artist for s in albums.items)


async def test_retrain_swaps_atomically_while_serving(world: Services) -> None:
    service = RecommendService.of(world)
    await service.recommend(await asker_for(world, ALICE), count=3)
    old = service.model(Kind.ARTIST)
    assert old is not None
    retrain = asyncio.create_task(service.retrain(Kind.ARTIST, tune=False))
    # requests keep being served (by the old engine) while the new one trains in a thread
    served = await service.recommend(await asker_for(world, ALICE), count=3)
    assert served.items
    metrics = await retrain
    new = service.model(Kind.ARTIST)
    assert new is not None and new is not old and new.version == metrics["version"] != old.version
    assert old.engine.items is not None  # the old object is untouched (immutable, still usable)
    assert (await service.recommend(await asker_for(world, ALICE), count=3)).model_version == new.version


async def test_preferences_steer_results(world: Services) -> None:
    service = RecommendService.of(world)
    carol = MEMBERS["carol"].fake.id
    prefs = await service.set_preferences(await asker_for(world, carol), "less electronic, more dream pop")
    assert "electronic" in prefs.avoid_tags and {"dream pop", "dream-pop"} & set(prefs.boost_tags)
    result = await service.recommend(await asker_for(world, carol), count=5)
    engine = service.model(Kind.ARTIST).engine  # type: ignore[union-attr]
    electronic = engine.tags.items_with_any(["electronic"], min_share=0.2)
    for s in result.items:
        assert not electronic[engine.items.index(s.rec.item_id)], s.rec.name


async def test_the_nightly_retrain_covers_every_kind_with_data(world: Services) -> None:
    service = RecommendService.of(world)
    results = await service.retrain_all(tune=False)
    assert set(results) == {"artist", "album", "track"}
    for kind in (Kind.ARTIST, Kind.ALBUM, Kind.TRACK):
        loaded = service.model(kind)
        assert loaded is not None and results[str(kind)]["version"] == loaded.version
    albums = await service.recommend(await asker_for(world, ALICE), kind="album", count=3)  # served, no training on demand
    assert albums.model_version == service.model(Kind.ALBUM).version  # type: ignore[union-attr]


async def test_a_kind_without_data_is_skipped_by_the_nightly_retrain(services: Services) -> None:
    results = await RecommendService.of(services).retrain_all(tune=False)  # an empty database
    assert all("skipped" in r for r in results.values()) and set(results) == {"artist", "album", "track"}


async def test_the_steering_read_separates_votes_from_recently_shown(world: Services) -> None:
    """One statement reads both: votes keep their sign, shown rows count only inside the window and
    only for this member and granularity."""
    service = RecommendService.of(world)
    alice = await asker_for(world, ALICE)
    shown = (await service.recommend(alice, count=4)).items
    await service.feedback(alice, shown[0].shown_id, +1)
    await service.feedback(alice, shown[1].shown_id, -1)
    await service.recommend(await asker_for(world, MEMBERS["bob"].fake.id), count=3)  # someone else's rows
    since = utcnow() - timedelta(days=1)
    async with world.session() as session:
        repo = RecommendationRepository(session)
        found = await repo.steering(alice.user_id, "artist", since)
        votes, recent = found.votes, found.shown
        assert votes == {shown[0].rec.item_id: 1, shown[1].rec.item_id: -1}
        assert recent == {s.rec.item_id for s in shown}
        album = await repo.steering(alice.user_id, "album", since)
        assert (album.votes, album.shown) == ({}, set())
        later = await repo.steering(alice.user_id, "artist", utcnow() + timedelta(seconds=5))
        assert (later.votes, later.shown) == (votes, set())


async def test_a_caller_is_resolved_once_in_the_lists_own_session(world: Services) -> None:
    """A `Caller` gets the same row, name and membership as `AskerDirectory.resolve` would give."""
    from core.asker import Caller
    from core.db.models import GuildMembership, User
    from tests.bot.world import GUILD_ID

    service = RecommendService.of(world)
    alice = await asker_for(world, ALICE)
    result = await service.recommend(Caller(ALICE, "Alice Renamed", GUILD_ID), count=3)
    assert len(result.items) == 3
    async with world.session() as session:
        user = await session.get(User, alice.user_id)
        assert user is not None and user.display_name == "Alice Renamed"
        assert await session.get(GuildMembership, (GUILD_ID, alice.user_id)) is not None
        rows = (await session.execute(select(RecommendationShown.user_id, RecommendationShown.guild_id)
                                      .where(RecommendationShown.id.in_([s.shown_id for s in result.items])))).all()
    assert set(rows) == {(alice.user_id, GUILD_ID)}
    with pytest.raises(NotLinked):  # a stranger gets a row (first use), then the usual refusal
        await service.recommend(Caller(4_242_424_242, "Newcomer", GUILD_ID))
    async with world.session() as session:
        stranger = (await session.execute(select(User.id).where(User.discord_id == 4_242_424_242))).scalar_one()
        assert await session.get(GuildMembership, (GUILD_ID, stranger)) is not None


async def test_display_facts_are_reused_until_the_catalogue_changes(world: Services) -> None:
    """Names, links and covers come from `DisplayCache` between lists; a catalogue write by this
    process shows on the very next list, and an expired cache reads the catalogue again."""
    from sqlalchemy import event, update

    from core.db.models import Artist

    service = RecommendService.of(world)
    alice = await asker_for(world, ALICE)
    world.settings.repeat_window_days = 0  # the same picks again
    first = await service.recommend(alice, count=3)
    catalogue_reads: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "FROM artists" in statement:
            catalogue_reads.append(statement)

    event.listen(world.engine.sync_engine, "before_cursor_execute", note)
    try:
        second = await service.recommend(alice, count=3)
        assert [s.rec.item_id for s in second.items] == [s.rec.item_id for s in first.items]
        assert [s.rec.url for s in second.items] == [s.rec.url for s in first.items]
        assert catalogue_reads == []
        target = first.items[0].rec.item_id
        async with world.session() as session:
            await session.execute(update(Artist).where(Artist.id == target).values(image_url="https://img.example/new.png"))
        third = await service.recommend(alice, count=3)
        assert {s.rec.item_id: s.rec.image_url for s in third.items}[target] == "https://img.example/new.png"
        assert len(catalogue_reads) == 1
        service.lists.display.ttl_s = 0.0  # another process's write is seen once the cache expires
        await service.recommend(alice, count=3)
        assert len(catalogue_reads) == 2
    finally:
        event.remove(world.engine.sync_engine, "before_cursor_execute", note)
