"""End to end: members' plays synced from Last.fm -> Last.fm's similar graph fetched -> trained ->
a recommendation of an artist nobody here plays, with "similar to X on Last.fm" evidence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.asker import Asker
from core.config import Settings
from core.db.repositories import AccountRepository, UserRepository
from core.recommender.service import RecommendService
from core.recommender.training import train_from_db
from core.services import Services
from core.sync.engine import LastfmSync
from core.sync.similar_graph import SimilarGraph
from tests.conftest import make_settings
from tests.fakes.lastfm_server import LastfmFake

CLUSTERS = {
    "shoegaze": ["Slowdive", "Ride", "My Bloody Valentine", "Lush", "Chapterhouse"],
    "metal": ["Metallica", "Slayer", "Megadeth", "Anthrax", "Exodus"],
}
GEM = "Pale Saints"  # shoegaze; on Last.fm's lists, played by nobody here


@pytest.fixture
async def lastfm_fake() -> AsyncIterator[LastfmFake]:
    async with LastfmFake() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, tmp_path: Path, lastfm_fake: LastfmFake) -> Settings:
    return make_settings(database_url, tmp_path, LASTFM_REQUESTS_PER_SECOND=100, **lastfm_fake.settings_overrides())


async def test_synced_plays_graph_train_recommends_an_unplayed_artist_with_graph_evidence(
        services: Services, lastfm_fake: LastfmFake) -> None:
    await services.start_clients()
    assert services.lastfm is not None
    members: dict[str, int] = {}
    for m in range(8):
        cluster = "shoegaze" if m % 2 == 0 else "metal"
        name = f"member{m}"
        artists = CLUSTERS[cluster][:3] if m == 0 else CLUSTERS[cluster][m % 3:m % 3 + 3]
        lastfm_fake.add_user(name, scrobbles=[(1_700_000_000 + i * 300 + k, a, f"{a} album", f"{a} song {k}")
                                              for i, a in enumerate(artists) for k in range(10 - 2 * i)])
        async with services.session() as s:
            user = await UserRepository(s).get_or_create_discord(8000 + m, name)
            await AccountRepository.without_cipher(s).link(user.id, "lastfm", name)
            members[name] = int(user.id)
    await LastfmSync(services, services.lastfm).sync_due()

    for cluster, artists in CLUSTERS.items():
        for a in artists:
            neighbours = [(b, 0.8) for b in artists if b != a]
            lastfm_fake.similar[a.lower()] = ([(GEM, 1.0)] if cluster == "shoegaze" else []) + neighbours
    report = await SimilarGraph(services).fill_artists()
    assert report.ok == 10 and not report.stopped

    await train_from_db(services, tune=False)
    picks = await RecommendService.of(services).recommend(Asker(members["member0"], 8000), count=5)
    gem = [s for s in picks.items if s.rec.name == GEM]
    assert gem, [s.rec.name for s in picks.items]
    assert gem[0].rec.evidence.sources.get("graph", 0) > 0
    assert "on Last.fm" in gem[0].reason
