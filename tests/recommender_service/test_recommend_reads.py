"""The reads of one /recommend: steering and /tune settings in one statement, and how many trips to
the database thread a whole list takes (the figure `scripts/bench bot` CPU depends on).

Trips are counted at aiosqlite's queue (wrapped to count and pass through); SQLite only.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.db.models import UserSettings
from core.db.repositories import UserRepository
from core.db.repositories.recommendations import RecommendationRepository
from core.db.types import utcnow
from core.domain import Kind
from core.recommender.service import RecommendService
from core.services import Services
from tests.bot.world import MEMBERS
from tests.foundation.db_trips import count_trips
from tests.recommender_service.askers import asker_for

ALICE = MEMBERS["alice"].fake.id


async def test_votes_shown_and_tune_settings_come_from_one_statement(world: Services) -> None:
    service = RecommendService.of(world)
    alice = await asker_for(world, ALICE)
    since = utcnow() - timedelta(days=1)
    async with world.session() as session:
        untouched = await RecommendationRepository(session).steering(alice.user_id, "artist", since)
    assert (untouched.votes, untouched.shown, untouched.discovery, untouched.preferences) == ({}, set(), None, None)
    async with world.session() as session:  # reading created no settings row
        assert await session.get(UserSettings, alice.user_id) is None

    shown = (await service.recommend(alice, count=4)).items
    await service.feedback(alice, shown[0].shown_id, -1)
    async with world.session() as session:
        await UserRepository(session).update_settings(
            alice.user_id, discovery=0.7, preferences={"boost_tags": ["shoegaze"], "avoid_tags": []})
    async with world.session() as session:
        found = await RecommendationRepository(session).steering(alice.user_id, "artist", since)
    assert found.votes == {shown[0].rec.item_id: -1}
    assert found.shown == {s.rec.item_id for s in shown}
    assert found.discovery == pytest.approx(0.7)
    assert found.preferences == {"boost_tags": ["shoegaze"], "avoid_tags": []}  # decoded JSON, as the column reads


async def test_a_list_takes_one_trip_per_statement(world: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    if not world.settings.async_database_url.startswith("sqlite"):
        pytest.skip("counts aiosqlite's trips")
    service = RecommendService.of(world)
    alice = await asker_for(world, ALICE)
    await service.recommend(alice, count=5)  # trains and loads the model, warms the display cache
    sent = count_trips(monkeypatch)
    await service.recommend(alice, count=5, discovery=0.0)
    # plays, steering with /tune settings, [names not cached yet], the shown rows; one commit
    # (the bot's first session also resolves the asker: one statement more)
    assert sent.count("commit") == 1 and "rollback" not in sent
    assert sent.count("_run_one") in (3, 4), sent
    assert service.model(Kind.ARTIST) is not None
