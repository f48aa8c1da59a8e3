"""The similarity floor of `RecommenderEngine.similar(…, related_only=True)` (what /similar uses): a
neighbour must share evidence with the seed (a listener in common, a Last.fm or AOTY link), and
unrelated items are left out however popular they are.

Why: without it, "Artists like Taylor Swift" ended with Metallica, Iron Maiden and Slayer, ranked
there by popularity alone (the review of /similar).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from core.db.repositories.recommendations import ItemPlayRow
from core.domain import Kind
from core.recommender.engine import RecommenderEngine
from core.recommender.interactions import Interactions
from core.recommender.tags import ItemTags
from core.recommender.training import fit_engine
from tests.recommender.conftest import FANS, PER_SCENE, scene_items

NOW = datetime(2026, 11, 20, tzinfo=UTC)
LONER = 999


@pytest.fixture(scope="module")
def engine() -> RecommenderEngine:
    """Three scenes as in tests/recommender/conftest.py (18, 12 and 6 fans, one tag per scene), plus
    one item whose only listener plays nothing else and which has no tags."""
    users: list[int] = []
    items: list[int] = []
    fan = 0
    for scene, fans in enumerate(FANS):
        for _ in range(fans):
            fan += 1
            users += [fan] * PER_SCENE
            items += scene_items(scene)
    users.append(fan + 1)
    items.append(LONER)
    plays = [float(10 + (u * i) % 90) for u, i in zip(users, items, strict=True)]
    data = Interactions.from_arrays(users, items, plays, item_artists={i: f"artist{i}" for i in items})
    tags = ItemTags.from_sources(data.items, {"lastfm": {
        item: {f"scene{(item - 100) // PER_SCENE}": 10.0} for item in items if item != LONER}})
    return RecommenderEngine.train(data, kind=Kind.ARTIST, names={i: f"Artist {i}" for i in items}, tags=tags,
                                   tune=False)


def test_the_plain_list_pads_and_the_floored_one_keeps_only_the_scene(engine: RecommenderEngine) -> None:
    seed = scene_items(2)[0]
    plain = [r.item_id for r in engine.similar(seed, 10)]
    assert len(plain) == 10 and set(plain) - set(scene_items(2))  # popular strangers fill it up
    floored = [r.item_id for r in engine.similar(seed, 10, related_only=True)]
    assert set(floored) == set(scene_items(2)[1:])
    assert floored == [i for i in plain if i in floored]  # the floor filters the ranking, never reorders it


def test_an_item_that_shares_nothing_has_no_neighbours(engine: RecommenderEngine) -> None:
    assert engine.similar(LONER, 10, related_only=True) == []
    assert len(engine.similar(LONER, 10)) == 10


def test_related_to_is_co_listening_never_the_seed_itself(engine: RecommenderEngine) -> None:
    seed = scene_items(1)[0]
    related = engine.related_to(engine.items.get(seed))
    assert {int(engine.items.external(i)) for i in np.flatnonzero(related)} == set(scene_items(1)[1:])


#: Two listeners of artists 1-3, two of 4-6, one of 1 and 4 (as in test_graph_component.py).
_ROWS = [ItemPlayRow(user_id=u, item_id=i, plays=10 * i, last_played_at=NOW, artist_id=i)
         for u, items in ((1, (1, 2, 3)), (2, (1, 2, 3)), (3, (4, 5, 6)), (4, (4, 5, 6)), (5, (1, 4)))
         for i in items]
_NAMES = {1: "Slowdive", 2: "Ride", 3: "Lush", 4: "Burial", 5: "Four Tet", 6: "Jamie xx", 50: "Cocteau Twins"}


def test_lastfm_graph_neighbours_count_as_related() -> None:
    """An artist nobody plays, reached only through Last.fm's similar graph, passes the floor."""
    engine = fit_engine(_ROWS, _NAMES, {}, kind=Kind.ARTIST, now=NOW, tune=False, similar={1: {50: 1.0}})
    found = [r.item_id for r in engine.similar(1, 6, related_only=True)]
    assert 50 in found and not {5, 6} & set(found)  # 4 shares a listener with 1; 5 and 6 share nothing


def test_a_shared_tag_alone_is_no_relation() -> None:
    """Slowdive and Jamie xx are tagged alike but no listener plays both: tags rank neighbours, they
    do not make one (broad tags join most of a real catalogue)."""
    engine = fit_engine(_ROWS, _NAMES, {"lastfm": {1: {"shoegaze": 100.0}, 6: {"shoegaze": 100.0}}},
                        kind=Kind.ARTIST, now=NOW, tune=False)
    assert 6 in [r.item_id for r in engine.similar(1, 5)]  # the plain list reaches it
    assert 6 not in [r.item_id for r in engine.similar(1, 5, related_only=True)]
