"""Pair score: symmetry, extremes, rare-vs-mainstream, confidence, recency, bad inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core.compat import ListenRow, build_taste_space, compare, pair_score
from core.compat.scoring import raw_scores
from core.errors import InvalidInput, NotEnoughHistory, PrivacyHidden
from tests.compat.conftest import world_rows


def test_symmetric(world):
    for a, b in itertools.combinations([f"u{i}" for i in range(8)], 2):
        ab, ba = compare(world, a, b), compare(world, b, a)
        assert ab.raw == pytest.approx(ba.raw, abs=1e-9)
        assert ab.score == ba.score and ab.label == ba.label and ab.confidence == ba.confidence
        assert {s.name for s in ab.shared_artists} == {s.name for s in ba.shared_artists}


def test_score_range_and_same_scene_beats_other_scene(world):
    same = [pair_score(world, "u0", f"u{j}")[1] for j in (3, 6, 9, 12)]
    other = [pair_score(world, "u0", f"u{j}")[1] for j in (1, 2, 4, 5)]
    assert min(same) > max(other)
    for j in range(1, 20):
        score, _ = pair_score(world, "u0", f"u{j}")
        assert 0.0 <= score <= 100.0


def test_identical_histories_score_top():
    rows, tags = world_rows()
    rows += [ListenRow("twin", r.artist, r.plays) for r in rows if r.user == "u0"]
    space = build_taste_space(rows, tags)
    twin = compare(space, "u0", "twin")
    others = [pair_score(space, "u0", f"u{j}")[1] for j in range(1, 60)]
    assert twin.raw > max(others)
    assert twin.score >= 99.0 and twin.label == "kindred spirits"


def test_disjoint_histories_score_low_and_well_defined(world):
    # u0 (metal) and u1 (jazz) may share a mainstream artist; build a clearly disjoint pair instead
    rows, tags = world_rows()
    rows += [ListenRow("x", "metal-1", 50.0), ListenRow("x", "metal-2", 40.0),
             ListenRow("y", "jazz-1", 50.0), ListenRow("y", "jazz-2", 40.0)]
    space = build_taste_space(rows, tags)
    c = compare(space, "x", "y")
    assert c.shared_artists == () and c.components["shared_count"] == 0
    assert c.components["overlap"] == 0.0
    assert c.score < 30 and c.label in ("opposites", "different wavelengths")
    assert np.isfinite(c.raw)


def test_rare_shared_artist_outweighs_mainstream():
    rows = []
    for u in range(40):  # everyone plays "mainstream"; each also has two artists of their own
        rows += [ListenRow(f"u{u}", "mainstream", 100.0), ListenRow(f"u{u}", f"own-{u}-a", 100.0),
                 ListenRow(f"u{u}", f"own-{u}-b", 100.0)]
    # pair (r1, r2) shares only a rare artist; pair (m1, m2) shares only the mainstream one
    rows += [ListenRow("r1", "rare", 100.0), ListenRow("r1", "r1-a", 100.0), ListenRow("r1", "r1-b", 100.0),
             ListenRow("r2", "rare", 100.0), ListenRow("r2", "r2-a", 100.0), ListenRow("r2", "r2-b", 100.0),
             ListenRow("m1", "mainstream", 100.0), ListenRow("m1", "m1-a", 100.0), ListenRow("m1", "m1-b", 100.0),
             ListenRow("m2", "mainstream", 100.0), ListenRow("m2", "m2-a", 100.0), ListenRow("m2", "m2-b", 100.0)]
    space = build_taste_space(rows)
    rare, mainstream = compare(space, "r1", "r2"), compare(space, "m1", "m2")
    assert rare.components["overlap"] > mainstream.components["overlap"]
    assert rare.raw > mainstream.raw


def test_confidence_drops_for_thin_history():
    rows, tags = world_rows()
    rows += [ListenRow("thin", "metal-3", 12.0), ListenRow("thin", "metal-4", 3.0)]
    space = build_taste_space(rows, tags)
    full = compare(space, "u0", "u3")
    thin = compare(space, "u0", "thin")
    assert 0.0 <= thin.confidence < 0.25 < full.confidence <= 1.0


def test_recent_listening_weighs_more():
    day = 86_400.0
    now = 1_000 * day
    rows = [("a", "old-fav", 100.0, now - 900 * day), ("a", "new-fav", 100.0, now - 1 * day),
            ("b", "old-fav", 100.0, now), ("b", "b-own", 100.0, now),
            ("c", "new-fav", 100.0, now), ("c", "c-own", 100.0, now)]
    rows += [(f"f{k}", f"filler-{k}", 10.0, now) for k in range(10)]
    space = build_taste_space(rows, now=now)
    assert compare(space, "a", "c").components["overlap"] > compare(space, "a", "b").components["overlap"]


def test_bad_inputs(world):
    with pytest.raises(InvalidInput):
        compare(world, "u0", "u0")
    with pytest.raises(NotEnoughHistory):
        compare(world, "u0", "nobody")
    with pytest.raises(PrivacyHidden):
        compare(world, "u0", "u1", visible={"u0"})
    with pytest.raises(PrivacyHidden):
        pair_score(world, "u0", "u1", visible=lambda m: m != "u1")
    with pytest.raises(InvalidInput):
        build_taste_space([("a", "x", -1.0)])
    with pytest.raises(InvalidInput):
        build_taste_space([("a", "x", float("nan"))])


def test_zero_plays_mean_no_history():
    space = build_taste_space([("a", "x", 0.0), ("b", "x", 3.0), ("c", "y", 5.0)])
    with pytest.raises(NotEnoughHistory):
        compare(space, "a", "b")
    c = compare(space, "b", "c")  # tiny world: still finite and in range
    assert 0.0 <= c.score <= 100.0 and np.isfinite(c.raw)


def test_tiny_and_empty_worlds_do_not_divide_by_zero():
    empty = build_taste_space([])
    assert empty.users == ()
    one = build_taste_space([("a", "x", 1.0)])
    with pytest.raises(NotEnoughHistory):
        compare(one, "a", "b")
    two = build_taste_space([("a", "x", 1.0), ("b", "x", 2.0)])
    c = compare(two, "a", "b")
    assert np.isfinite(c.raw) and 0.0 <= c.score <= 100.0


def test_breakdown_contents(world):
    c = compare(world, "u0", "u3")
    assert c.shared_artists and all(s.plays_a > 0 and s.plays_b > 0 for s in c.shared_artists)
    assert sum(s.weight for s in c.shared_artists) <= 1.0 + 1e-6
    assert c.shared_tags and c.shared_tags[0].name.startswith("metal")
    assert {b.from_user for b in c.bridges} <= {"a", "b"}
    assert all(0.0 <= b.likelihood <= 1.0 for b in c.bridges)
    names_b = {s.name for s in c.shared_artists}
    assert not names_b & {d.name for d in c.differences_a}
    assert set(c.components) >= {"overlap", "tags", "latent"}


def test_vectorised_raw_matches_pair_path(world):
    i = np.array([0, 1, 2, 3])
    j = np.array([5, 6, 7, 8])
    raw = raw_scores(world, i, j)
    for k in range(4):
        assert raw[k] == pytest.approx(pair_score(world, world.users[i[k]], world.users[j[k]])[1])


def test_bridge_percentiles_ignore_artists_nobody_reaches_and_differ():
    """A catalogue full of artists unrelated to either listener (as any real one is) must not push
    every bridge into the "top 1%": the percentile is among the artists the listener's taste reaches."""
    rows, tags = world_rows()
    small = build_taste_space(rows, tags)
    big = build_taste_space(list(rows) + [ListenRow(f"f{k}", f"obscure-{k}", 10.0) for k in range(3000)], tags)
    for a, b in (("u0", "u3"), ("u1", "u4")):
        in_small = {(br.name, br.from_user): br.likelihood for br in compare(small, a, b).bridges}
        in_big = {(br.name, br.from_user): br.likelihood for br in compare(big, a, b).bridges}
        shared = in_small.keys() & in_big.keys()
        assert shared
        assert all(abs(in_small[k] - in_big[k]) < 0.02 for k in shared), (in_small, in_big)
        top_percent = {max(1, round((1.0 - p) * 100)) for p in in_big.values()}
        assert len(top_percent) > 2, in_big
