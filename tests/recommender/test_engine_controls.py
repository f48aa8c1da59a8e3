"""Controls and feedback of the engine: the promises a user can see."""

from __future__ import annotations

import numpy as np
import pytest

from core.domain import Kind
from core.errors import NotFound
from core.recommender.engine import RecommenderEngine
from core.recommender.requests import RecommendRequest, UserHistory
from tests.recommender.conftest import build_world, scene_items


@pytest.fixture(scope="module")
def engine() -> RecommenderEngine:
    data, tags, links = build_world()
    names = {i: f"Artist {i}" for s in range(3) for i in scene_items(s)}
    return RecommenderEngine.train(data, kind=Kind.ALBUM, names=names, tags=tags, links=links, tune=False)


def ids(recs) -> list[int]:
    return [r.item_id for r in recs]


def fan_of(scene: int, n: int = 3) -> UserHistory:
    return UserHistory(scene_items(scene)[:n], [50.0] * n)


def test_recommends_the_rest_of_the_scene_first(engine: RecommenderEngine) -> None:
    recs = engine.recommend(fan_of(1), RecommendRequest(count=2))
    assert set(ids(recs)) == set(scene_items(1)[3:])


def test_disliked_item_never_returns_and_pushes_neighbours_down(engine: RecommenderEngine) -> None:
    target = scene_items(1)[3]
    plain = engine.recommend(fan_of(1), RecommendRequest(count=15))
    disliked = engine.recommend(fan_of(1), RecommendRequest(count=15, disliked=(target,)))
    assert target not in ids(disliked)
    # Even asking for known items and "recently shown" exceptions cannot bring it back.
    again = engine.recommend(fan_of(1), RecommendRequest(count=15, include_known=True, liked=(target,),
                                                         disliked=(target,)))
    assert target not in ids(again)
    neighbour = scene_items(1)[4]
    score_before = next(r.score for r in plain if r.item_id == neighbour)
    score_after = next(r.score for r in disliked if r.item_id == neighbour)
    assert score_after < score_before


def test_thumbs_up_pulls_neighbours_up(engine: RecommenderEngine) -> None:
    history = fan_of(0, n=2)
    liked = scene_items(2)[0]
    before = engine.recommend(history, RecommendRequest(count=15))
    after = engine.recommend(history, RecommendRequest(count=15, liked=(liked,)))
    neighbour = scene_items(2)[1]
    rank_before = ids(before).index(neighbour)
    rank_after = ids(after).index(neighbour)
    assert rank_after < rank_before


def test_recently_shown_are_skipped_unless_liked(engine: RecommenderEngine) -> None:
    shown = scene_items(1)[3]
    recs = engine.recommend(fan_of(1), RecommendRequest(count=5, recently_shown=(shown,)))
    assert shown not in ids(recs)
    recs = engine.recommend(fan_of(1), RecommendRequest(count=5, recently_shown=(shown,), liked=(shown,)))
    assert shown in ids(recs)


def test_known_items_are_left_out_by_default(engine: RecommenderEngine) -> None:
    history = fan_of(1)
    assert not set(ids(engine.recommend(history, RecommendRequest(count=12)))) & set(history.items)


def test_per_artist_cap(engine: RecommenderEngine) -> None:
    recs = engine.recommend(fan_of(0, n=1), RecommendRequest(count=8, max_per_artist=1))
    artists = [r.artist for r in recs]
    assert len(recs) == 8 and len(set(artists)) == len(artists)
    uncapped = engine.recommend(fan_of(0, n=1), RecommendRequest(count=8))
    assert len({r.artist for r in uncapped}) < len(uncapped)


def test_discovery_dial_lowers_mean_popularity(engine: RecommenderEngine) -> None:
    def mean_pop(discovery: float) -> float:
        recs = engine.recommend(UserHistory([scene_items(0)[0]], [5.0]), RecommendRequest(count=6, discovery=discovery))
        return float(np.mean([r.evidence.popularity for r in recs]))

    assert mean_pop(1.0) < mean_pop(0.0)


def test_tag_filter_keeps_only_matching_items(engine: RecommenderEngine) -> None:
    recs = engine.recommend(fan_of(0), RecommendRequest(count=10, tags=("Scene2",)))
    assert recs and set(ids(recs)) <= set(scene_items(2))


def test_evidence_names_the_users_items_and_tags(engine: RecommenderEngine) -> None:
    rec = engine.recommend(fan_of(1), RecommendRequest(count=1))[0]
    history_names = {f"Artist {i}" for i in scene_items(1)[:3]}
    assert rec.evidence.items and {w.name for w in rec.evidence.items} <= history_names
    assert sum(w.weight for w in rec.evidence.items) == pytest.approx(1.0, abs=1e-3)
    assert rec.evidence.tags and rec.evidence.tags[0].name == "scene1"
    assert {"ease", "content"} <= set(rec.evidence.sources)
    assert rec.kind is Kind.ALBUM and rec.artist is not None


def test_cold_and_unknown_users_get_popular_items_not_errors(engine: RecommenderEngine) -> None:
    recs = engine.recommend(UserHistory([], []), RecommendRequest(count=3))
    assert set(ids(recs)) <= set(scene_items(0))
    recs = engine.recommend(UserHistory([123456], [3.0]), RecommendRequest(count=3))  # unknown item only
    assert len(recs) == 3


def test_similar_items(engine: RecommenderEngine) -> None:
    similar = engine.similar(scene_items(2)[0], count=4)
    assert set(ids(similar)) == set(scene_items(2)[1:])
    with pytest.raises(NotFound):
        engine.similar(999_999)


def test_request_validation() -> None:
    with pytest.raises(ValueError):
        RecommendRequest(discovery=1.5)
    with pytest.raises(ValueError):
        RecommendRequest(count=0)


def test_a_disliked_item_from_the_history_stops_driving_recommendations(engine: RecommenderEngine) -> None:
    history = UserHistory([scene_items(0)[0], scene_items(2)[0]], [10.0, 10.0])
    recs = engine.recommend(history, RecommendRequest(count=4, disliked=(scene_items(2)[0],)))
    assert not set(ids(recs)) & set(scene_items(2))


def test_tune_avoids_leave_out_items_whose_main_tag_it_is(engine: RecommenderEngine) -> None:
    history = fan_of(0)
    plain = ids(engine.recommend(history, RecommendRequest(count=15)))
    avoided = ids(engine.recommend(history, RecommendRequest(count=15, avoid_tags=("scene2",))))
    assert avoided == [i for i in plain if i not in scene_items(2)]  # the rest keep their order
    # A stray tag (a tenth of the item's tag weight) is no reason to leave an item out.
    stray = ids(engine.recommend(history, RecommendRequest(count=15, avoid_tags=(f"unique{scene_items(2)[0]}",))))
    assert stray == plain
    # Asking for the tag now wins over an older "less of it".
    asked = ids(engine.recommend(history, RecommendRequest(count=5, tags=("scene2",), avoid_tags=("scene2",))))
    assert asked and set(asked) <= set(scene_items(2))


def test_tune_boosts_move_tagged_items_up_without_dropping_any(engine: RecommenderEngine) -> None:
    history = fan_of(0, n=2)
    count = 5
    pool = ids(engine.recommend(history, RecommendRequest(count=max(count * 3, count + 10))))
    boosted = engine.recommend(history, RecommendRequest(count=count, boost_tags=("scene1",)))
    # Each pick's rank position is halved when it carries the tag; ties keep the model's order.
    keys = {item: position * (0.5 if item in scene_items(1) else 1.0) for position, item in enumerate(pool)}
    assert ids(boosted) == sorted(pool, key=lambda i: (keys[i], pool.index(i)))[:count]
    assert set(ids(boosted)) & set(scene_items(1)) and ids(boosted) != pool[:count]
    everything = engine.recommend(history, RecommendRequest(count=len(pool), boost_tags=("scene1",)))
    assert sorted(ids(everything)) == sorted(pool)
    # Scores and evidence are the model's: steering only reorders.
    plain = {r.item_id: r for r in engine.recommend(history, RecommendRequest(count=len(pool)))}
    assert all(r == plain[r.item_id] for r in boosted)
