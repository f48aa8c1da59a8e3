"""Large-guild leaderboards from candidates give the same top pairs as exhaustive scoring.

Each board is computed twice through `guild_leaderboard`: once with the candidate path forced (the
size threshold lowered to 2) and once with the exhaustive scan forced (threshold above the guild).
"""

from __future__ import annotations

import numpy as np
import pytest

from core.compat import guild_leaderboard, pair_score
from core.compat import leaderboard as lb
from core.compat import pair_candidates as pc
from core.compat.bench import synthetic_space
from core.compat.profiles import TasteSpace, build_taste_space_arrays
from core.datasets import find_hetrec_dir

TOP = 10


def boards(space: TasteSpace, members: list, visible, monkeypatch, top: int = TOP):
    monkeypatch.setattr(lb, "CANDIDATE_MIN_MEMBERS", 2)
    fast = guild_leaderboard(space, members, visible, top=top)
    monkeypatch.setattr(lb, "CANDIDATE_MIN_MEMBERS", 10**9)
    exact = guild_leaderboard(space, members, visible, top=top)
    return fast, exact


def assert_same_top(fast, exact, space, tolerance: float = 1e-9):
    """Same pairs, same centre; the candidate path's scores are `pair_score`'s own (float64), the
    exhaustive scan's agree to float32 precision."""
    assert len(fast.top_pairs) == len(exact.top_pairs) == TOP
    assert [p.raw for p in fast.top_pairs] == pytest.approx([p.raw for p in exact.top_pairs], abs=1e-4)
    assert {(p.a, p.b) for p in fast.top_pairs} == {(p.a, p.b) for p in exact.top_pairs}
    for p in fast.top_pairs:  # every reported score is the pair score itself
        assert pair_score(space, p.a, p.b)[1] == pytest.approx(p.raw, abs=tolerance)
    assert fast.centre == exact.centre
    assert fast.ranked_members == exact.ranked_members


def clustered_space(seed: int, n_users: int = 1_500, n_clusters: int = 30) -> TasteSpace:
    """Scenes of ~50 people sharing a pool of 60 scene artists, plus power-law global hits that more
    than DF_CAP members play (so both rare and popular overlap columns exist)."""
    rng = np.random.default_rng(seed)
    users, artists = [], []
    hits = (np.arange(300) + 2.0) ** -1.0
    hits /= hits.sum()
    for u in range(n_users):
        scene = u % n_clusters
        own = rng.choice(60, size=int(rng.integers(15, 40)), replace=False) + 300 + 60 * scene
        popular = rng.choice(300, size=int(rng.integers(3, 15)), replace=False, p=hits)
        picked = np.concatenate([own, popular])
        users.extend([u] * picked.size)
        artists.extend(picked.tolist())
    n_artists = 300 + 60 * n_clusters
    plays = np.maximum(1.0, np.round(rng.lognormal(np.log(200.0), 1.2, len(users))))
    tags = {a: ({f"scene{(a - 300) // 60}": 10, f"mood{a % 7}": 3} if a >= 300 else {"pop": 20, f"mood{a % 7}": 3})
            for a in range(n_artists)}
    return build_taste_space_arrays(tuple(range(n_users)), np.array(users), tuple(range(n_artists)),
                                    np.array(artists), plays, None, tags)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hetrec_shaped_spaces(monkeypatch, seed):
    space = synthetic_space(2_500, n_artists=4_000, seed=seed)
    df = np.bincount(space.overlap.indices, minlength=space.overlap.shape[1])
    assert (df > pc.DF_CAP).any() and ((df >= 2) & (df <= pc.DF_CAP)).any()  # both kinds of artist
    members = list(range(space.overlap.shape[0]))
    fast, exact = boards(space, members, set(members), monkeypatch)
    assert_same_top(fast, exact, space)


@pytest.mark.parametrize("seed", [3, 4])
def test_clustered_tastes(monkeypatch, seed):
    space = clustered_space(seed)
    members = list(range(1_500))
    fast, exact = boards(space, members, set(members), monkeypatch)
    assert_same_top(fast, exact, space)


def test_ties_between_identical_histories(monkeypatch):
    """Twelve pairs of twins (identical histories) tie at the top; both paths report ten of them."""
    base = synthetic_space(1_200, n_artists=3_000, seed=5)
    n = base.overlap.shape[0]
    coo = base.plays.tocoo()
    twins = np.arange(12) * 50
    extra = np.isin(coo.row, twins)
    twin_of = {int(t): n + k for k, t in enumerate(twins)}
    users = np.concatenate([coo.row, [twin_of[int(r)] for r in coo.row[extra]]])
    artists = np.concatenate([coo.col, coo.col[extra]])
    plays = np.concatenate([coo.data, coo.data[extra]])
    tags = {a: {f"tag{a % 40}": 5} for a in range(base.overlap.shape[1])}
    space = build_taste_space_arrays(tuple(range(n + twins.size)), users, tuple(range(base.overlap.shape[1])),
                                     artists, plays, None, tags)
    members = list(range(n + twins.size))
    fast, exact = boards(space, members, set(members), monkeypatch)
    assert [p.raw for p in fast.top_pairs] == pytest.approx([p.raw for p in exact.top_pairs], abs=1e-4)
    twin_pairs = {(int(t), twin_of[int(t)]) for t in twins}
    assert {(p.a, p.b) for p in fast.top_pairs} <= twin_pairs
    assert {(p.a, p.b) for p in exact.top_pairs} <= twin_pairs


def test_hidden_members_filtered_before_candidates(monkeypatch):
    space = synthetic_space(1_500, n_artists=3_000, seed=6)
    members = list(range(1_500))
    _, exact_all = boards(space, members, set(members), monkeypatch)
    hidden = {exact_all.top_pairs[0].a, exact_all.top_pairs[1].b, exact_all.top_pairs[2].a}
    visible = set(members) - hidden
    fast, exact = boards(space, members, visible.__contains__, monkeypatch)
    shown = {p.a for p in fast.top_pairs} | {p.b for p in fast.top_pairs} | {fast.centre.member}
    assert not shown & hidden
    assert_same_top(fast, exact, space)
    never_members, _ = boards(space, sorted(visible), visible, monkeypatch)
    assert fast == never_members


def test_falls_back_to_exhaustive_when_no_rare_artist_is_shared(monkeypatch):
    """Everyone plays the same few artists: no pair shares a rare one, the board is still complete."""
    rng = np.random.default_rng(8)
    n = 300
    users = np.repeat(np.arange(n), 4)
    artists = np.tile(np.arange(4), n)
    plays = rng.integers(1, 500, size=users.size).astype(float)
    space = build_taste_space_arrays(tuple(range(n)), users, tuple(range(4)), artists, plays, None,
                                     {a: {f"t{a}": 3} for a in range(4)})
    fast, exact = boards(space, list(range(n)), set(range(n)), monkeypatch)
    assert_same_top(fast, exact, space, tolerance=1e-4)  # the fallback is the float32 exhaustive scan


@pytest.mark.slow
def test_hetrec_top_pairs(monkeypatch):
    data_dir = find_hetrec_dir()
    if data_dir is None:
        pytest.skip("HetRec dataset not found: set SONANCE_DATASET_DIR or place it in ../shared/data")
    from core.compat.evaluation import load_hetrec

    data = load_hetrec(data_dir)
    space = build_taste_space_arrays(data.users, data.user_idx, data.artists, data.artist_idx, data.plays, None,
                                     data.artist_tags, tag_names=data.tag_names)
    members = list(data.users)
    rng = np.random.default_rng(9)
    for guild in (members, *(sorted(rng.choice(members, 1_200, replace=False).tolist()) for _ in range(2))):
        fast, exact = boards(space, guild, set(guild), monkeypatch)
        assert_same_top(fast, exact, space)
