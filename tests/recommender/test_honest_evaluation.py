"""The evaluation is honest: splits do what they say, held-out rows never reach a fitted model, the
community protocol trains on members only and builds its graph from everyone else, and tuning only
ever sees validation rows carved from training."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from core.datasets import read_friend_pairs, read_user_artists
from core.recommender.community import community_task, grow_community
from core.recommender.components import SEARCHED_GRAPH_WEIGHTS, default_components
from core.recommender.hetrec import task_from_dir, task_from_files
from core.recommender.hybrid import (
    HOLDOUT_MIN_ITEMS,
    VALIDATION_SEED_OFFSET,
    CandidatePool,
    Hybrid,
    coordinate_ascent,
)
from core.recommender.interactions import Interactions
from core.recommender.splits import cut_histories, holdout_split
from core.recommender.tuning import default_grid, tune_grid, validation_task
from tests.recommender.hetrec_world import write_hetrec


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hetrec(tmp_path_factory.mktemp("hetrec"))


def _copy(folder: Path, target: Path) -> Path:
    shutil.copytree(folder, target)
    return target


# --- splits ------------------------------------------------------------------------------------------


def _lengths(n_users: int = 30, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    users, items = [], []
    for user in range(n_users):
        chosen = rng.choice(50, int(rng.integers(1, 30)), replace=False)
        users += [user] * len(chosen)
        items += chosen.tolist()
    return Interactions.from_arrays(users, items, rng.integers(1, 100, len(users)).astype(float))


def test_holdout_split_holds_out_a_fifth_of_every_long_history_and_nothing_else() -> None:
    data = _lengths()
    split = holdout_split(data, test_fraction=0.2, min_items=5, seed=3)
    for user in range(data.n_users):
        full = set(data.matrix[user].indices.tolist())
        kept = set(split.train.matrix[user].indices.tolist())
        held = set(split.test.get(user, np.array([], dtype=int)).tolist())
        assert kept | held == full and not kept & held
        if len(full) < 5:
            assert user not in split.test and kept == full
        else:
            assert len(held) == max(1, round(0.2 * len(full)))
    # Strengths of kept rows are untouched.
    assert np.array_equal(split.train.matrix.toarray()[split.train.matrix.toarray() > 0],
                          data.matrix.toarray()[split.train.matrix.toarray() > 0])


def test_holdout_split_is_reproducible_and_depends_on_the_seed() -> None:
    data = _lengths()
    a, b, c = (holdout_split(data, seed=s) for s in (1, 1, 2))
    assert all(np.array_equal(a.test[u], b.test[u]) for u in a.test)
    assert any(not np.array_equal(a.test[u], c.test[u]) for u in a.test)


def test_cut_histories_keeps_that_many_of_each_rows_own_items() -> None:
    data = _lengths()
    cut = cut_histories(data.matrix, 3, seed=0)
    for user in range(data.n_users):
        original = set(data.matrix[user].indices.tolist())
        kept = set(cut[user].indices.tolist())
        assert kept <= original and len(kept) == min(3, len(original))
    assert (cut != cut_histories(data.matrix, 3, seed=0)).nnz == 0


# --- the community protocol ------------------------------------------------------------------------


def _artist_counts(folder: Path) -> dict[int, int]:
    table = read_user_artists(folder / "user_artists.dat")
    users, counts = np.unique(table.users, return_counts=True)
    return dict(zip(users.tolist(), counts.tolist(), strict=True))


def test_a_community_grows_by_friendship_from_a_heavy_listener(folder: Path) -> None:
    counts = _artist_counts(folder)
    friends = read_friend_pairs(folder / "user_friends.dat")
    members = grow_community(counts, friends, 12, seed=5)
    assert len(members) == len(set(members)) == 12
    assert counts[members[0]] >= 20
    assert all(counts[m] >= 5 for m in members)
    adjacent = {m: {b for a, b in friends if a == m} | {a for a, b in friends if b == m} for m in members}
    # Breadth first: every later member is a friend of someone taken before it (one component here).
    assert all(adjacent[m] & set(members[:i]) for i, m in enumerate(members) if i)
    assert grow_community(counts, friends, 12, seed=5) == members
    # A small component does not stop the search: it continues from another heavy listener.
    assert len(grow_community(counts, {(1, 2)}, 30, seed=0)) == 30


def test_community_trains_on_members_only_and_the_graph_comes_from_everyone_else(folder: Path,
                                                                                 tmp_path: Path) -> None:
    task = community_task(folder, size=10, community_seed=1, split_seed=0)
    members = grow_community(_artist_counts(folder), read_friend_pairs(folder / "user_friends.dat"), 10, 1)
    assert sorted(task.train.users.ids.tolist()) == sorted(members)
    assert set(task.test) == set(range(10))
    assert task.graph is not None and task.graph.nnz
    based = community_task(folder, size=10, community_seed=1, split_seed=0, base=True)
    assert based.train.n_users == 80 and len(based.test) == 10
    # Members' training rows are the same with or without the base.
    rows = based.train.users.indices(task.train.users.ids.tolist())
    assert (based.train.matrix[rows] != task.train.matrix).nnz == 0
    # Rewriting a member's plays cannot change the graph; rewriting an outsider's does.
    def rewritten(user: int, name: str) -> sp.csr_matrix:
        copy = _copy(folder, tmp_path / name)
        lines = (copy / "user_artists.dat").read_text().splitlines()
        lines = [line if not line.startswith(f"{user}\t") else "\t".join([*line.split("\t")[:2], "99999"])
                 for line in lines]
        (copy / "user_artists.dat").write_text("\n".join(lines) + "\n")
        return community_task(copy, size=10, community_seed=1, split_seed=0).graph
    outsider = next(u for u in range(1, 81) if u not in members)
    assert (rewritten(members[3], "member") != task.graph).nnz == 0
    assert (rewritten(outsider, "outsider") != task.graph).nnz > 0


# --- test rows never reach the fitted model --------------------------------------------------------


def _hybrid_scores(task, rows: sp.csr_matrix) -> np.ndarray:
    hybrid = Hybrid(default_components(task.tags, graph=task.graph))
    hybrid.fit(task.train, tune=True, seed=0, progress=lambda _m: None)
    return hybrid.score(rows)


def _write_plays(path: Path, rows) -> Path:
    path.write_text("userID\tartistID\tweight\n" + "".join(f"{u}\t{a}\t{w}\n" for u, a, w in rows))
    return path


def test_poisoned_test_rows_and_their_tags_leave_the_fitted_model_identical(folder: Path, tmp_path: Path) -> None:
    table = read_user_artists(folder / "user_artists.dat")
    rng = np.random.default_rng(0)
    is_test = rng.random(len(table.users)) < 0.2
    rows = list(zip(table.users.tolist(), table.artists.tolist(), table.weights.tolist(), strict=True))
    train = _write_plays(tmp_path / "train.tsv", [r for r, t in zip(rows, is_test, strict=True) if not t])
    test = _write_plays(tmp_path / "test.tsv", [r for r, t in zip(rows, is_test, strict=True) if t])
    tags = tmp_path / "user_taggedartists.dat"
    shutil.copy(folder / "user_taggedartists.dat", tags)
    shutil.copy(folder / "tags.dat", tmp_path / "tags.dat")
    clean = task_from_files(train, test, tags, folder / "artists.dat")

    # Poison TEST: shuffled weights, extra pairs (artists the user never tagged, some outside the
    # catalogue), and tag rows for every test pair. What is fitted must not change at all.
    test_rows = [r for r, t in zip(rows, is_test, strict=True) if t]
    weights = rng.permutation([w for _u, _a, w in test_rows])
    tagged_pairs = {(int(f[0]), int(f[1])) for f in (line.split("\t") for line in tags.read_text().splitlines()[1:])}
    extra = [(u, a, 7) for u, _a, _w in test_rows[::3] for a in (int(rng.integers(1, 61)), 5000 + u)
             if (u, a) not in tagged_pairs]
    poisoned_rows = [(u, a, w) for (u, a, _w), w in zip(test_rows, weights, strict=True)] + extra
    poisoned_dir = tmp_path / "poisoned"
    poisoned_dir.mkdir()
    poisoned_test = _write_plays(poisoned_dir / "test.tsv", poisoned_rows)
    shutil.copy(tmp_path / "tags.dat", poisoned_dir / "tags.dat")
    poisoned_tags = poisoned_dir / "user_taggedartists.dat"
    poisoned_tags.write_text(tags.read_text() + "".join(f"{u}\t{a}\t0\t1\t1\t2010\n" for u, a, _w in poisoned_rows))
    poisoned = task_from_files(train, poisoned_test, poisoned_tags, folder / "artists.dat")

    assert (clean.tags.matrix != poisoned.tags.matrix).nnz == 0
    probe = clean.train.matrix
    np.testing.assert_array_equal(_hybrid_scores(clean, probe), _hybrid_scores(poisoned, probe))


def test_tag_rows_of_held_out_pairs_are_dropped_in_data_dir_mode(folder: Path, tmp_path: Path) -> None:
    clean = task_from_dir(folder, seed=4)
    copy = _copy(folder, tmp_path / "leaky")
    pairs = [(int(clean.train.users.external(u)), int(clean.train.items.external(int(i))))
             for u, held in clean.test.items() for i in held]
    with (copy / "user_taggedartists.dat").open("a") as handle:
        handle.writelines(f"{u}\t{a}\t3\t1\t1\t2010\n" for u, a in pairs)
    leaky = task_from_dir(copy, seed=4)
    assert (clean.tags.matrix != leaky.tags.matrix).nnz == 0
    probe = clean.train.matrix[:20]
    np.testing.assert_array_equal(_hybrid_scores(clean, probe), _hybrid_scores(leaky, probe))
    # ...while the same rows for a *training* pair do count (the filter is not dropping everything).
    u, a = next((int(clean.train.users.external(r)), int(clean.train.items.external(int(c))))
                for r, c in zip(*clean.train.matrix.nonzero(), strict=True))
    with (copy / "user_taggedartists.dat").open("a") as handle:
        handle.write(f"{u}\t{a}\t3\t1\t1\t2010\n")
    assert (task_from_dir(copy, seed=4).tags.matrix != clean.tags.matrix).nnz > 0


def test_tuning_sees_only_validation_rows_carved_from_training(folder: Path) -> None:
    task = task_from_dir(folder, seed=1)
    grid = [p for p in default_grid() if p.component in ("knn", "rp3")]
    tagged, names = folder / "user_taggedartists.dat", folder / "tags.dat"
    first = tune_grid([(1, validation_task(task, 1, tagged, names))], grid)
    validation = validation_task(task, 1, tagged, names)
    for user, held in validation.test.items():
        assert not set(held.tolist()) & set(task.test[user].tolist())  # test items are not in training at all
    # Swap every test item for another artist: the tuning figures do not move.
    poisoned = type(task)(task.train, {u: (held + 1) % task.train.n_items for u, held in task.test.items()},
                          task.tags, task.graph)
    again = tune_grid([(1, validation_task(poisoned, 1, None, None))], grid)
    second_clean = tune_grid([(1, validation_task(task, 1, None, None))], grid)
    assert again == second_clean
    assert first["best"].keys() == {"knn", "rp3"}


def test_the_graph_weight_is_never_searched_on_rows_the_graph_has_seen(folder: Path) -> None:
    """Last.fm's graph is computed from everyone's scrobbles, the validation rows included. Here the
    graph is an oracle of those rows (it links each validation user's artists to the artists held
    out from them): a search would give it the top weight. The hybrid keeps it at the shipped
    constant and searches the others on every listener's validation rows."""
    task = task_from_dir(folder, seed=2)
    validation = holdout_split(task.train, seed=2 + VALIDATION_SEED_OFFSET, min_items=HOLDOUT_MIN_ITEMS)
    rows, cols = [], []
    for user, held in validation.test.items():
        known = validation.train.matrix[user].indices
        rows.extend(np.repeat(known, len(held)))
        cols.extend(np.tile(held, len(known)))
    n = task.train.n_items
    oracle = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    oracle.sum_duplicates()
    oracle.data[:] = 1.0
    components = {name: model for name, model in default_components(task.tags, graph=oracle).items()
                  if name in ("ease", "pop", "graph")}
    hybrid = Hybrid(components).fit(task.train, seed=2, progress=lambda _m: None)
    assert hybrid.weights["graph"] == SEARCHED_GRAPH_WEIGHTS["warm"]
    assert hybrid.cold_weights["graph"] == SEARCHED_GRAPH_WEIGHTS["cold"]
    assert hybrid.tuning is not None and hybrid.tuning.validation_users == len(validation.test)
    assert hybrid.weights["ease"] == 1.0 and set(hybrid.weights) == {"ease", "pop", "graph"}
    # what the search would have done with it: the oracle wins, far above the constant
    for model in components.values():
        model.fit(validation.train)
    pool = CandidatePool.from_models(components, validation.train.matrix[sorted(validation.test)],
                                     [validation.test[u] for u in sorted(validation.test)])
    searched, _ = coordinate_ascent(pool, anchor="ease")
    assert searched["graph"] > 2 * SEARCHED_GRAPH_WEIGHTS["warm"]
