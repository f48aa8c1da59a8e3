"""The scaled fitting internals give the same numbers as the straightforward code they replace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import scipy.linalg as sl
import scipy.sparse as sp

from core.db.repositories.recommendations import ItemPlayRow
from core.domain import Kind
from core.recommender.hybrid import CandidatePool
from core.recommender.interactions import Interactions, Vocabulary
from core.recommender.models import EASE, ItemKNN, MostPop, RP3beta
from core.recommender.models._sparse import blocked_top_k_product
from core.recommender.models.ease import _spd_inverse
from core.recommender.training import PlayColumns, interactions_from_columns, model_version
from tests.recommender.conftest import build_world

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _rows(seed: int = 0, n: int = 400) -> list[ItemPlayRow]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        when = None if rng.random() < 0.2 else NOW - timedelta(days=float(rng.integers(0, 2000)))
        item = int(rng.integers(1, 60))
        out.append(ItemPlayRow(int(rng.integers(1, 40)), item, int(rng.integers(0, 500)), when, 1000 + item // 3))
    return out


@pytest.mark.parametrize("kind", [Kind.ARTIST, Kind.ALBUM])
def test_columns_build_the_same_interactions_as_from_arrays(kind: Kind) -> None:
    rows = _rows()
    expected = Interactions.from_arrays(
        [r.user_id for r in rows], [r.item_id for r in rows], [r.plays for r in rows],
        [r.last_played_at for r in rows], now=NOW,
        item_artists=None if kind == Kind.ARTIST else {r.item_id: r.artist_id for r in rows})
    got = interactions_from_columns(PlayColumns.from_rows(rows), now=NOW, kind=kind)
    assert np.array_equal(got.users.ids, expected.users.ids) and np.array_equal(got.items.ids, expected.items.ids)
    assert (got.matrix != expected.matrix).nnz == 0
    assert np.array_equal(got.matrix.data, expected.matrix.data) and np.array_equal(got.matrix.indices,
                                                                                    expected.matrix.indices)
    if kind == Kind.ARTIST:
        assert got.item_artists is None
    else:
        assert got.item_artists is not None and expected.item_artists is not None
        assert got.item_artists.tolist() == expected.item_artists.tolist()


def test_columns_with_a_wider_item_vocabulary_keep_unplayed_items() -> None:
    rows = _rows()
    wider = Vocabulary(np.arange(0, 80, dtype=np.int64))  # a similar graph's items nobody plays
    expected = Interactions.from_arrays([r.user_id for r in rows], [r.item_id for r in rows],
                                        [r.plays for r in rows], [r.last_played_at for r in rows], now=NOW,
                                        item_vocabulary=wider, item_artists={r.item_id: r.artist_id for r in rows})
    got = interactions_from_columns(PlayColumns.from_rows(rows), now=NOW, kind=Kind.TRACK, item_vocabulary=wider)
    assert got.n_items == 80 and (got.matrix != expected.matrix).nnz == 0
    assert got.item_artists.tolist() == expected.item_artists.tolist()  # type: ignore[union-attr]


def test_model_version_hashes_the_content_not_the_order() -> None:
    rows = _rows()
    one = model_version(Kind.ARTIST, rows, NOW)
    assert one == model_version(Kind.ARTIST, list(reversed(rows)), NOW)
    assert one == model_version(Kind.ARTIST, PlayColumns.from_rows(rows), NOW)
    changed = [*rows[:-1], ItemPlayRow(rows[-1].user_id, rows[-1].item_id, rows[-1].plays + 1,
                                       rows[-1].last_played_at, rows[-1].artist_id)]
    assert model_version(Kind.ARTIST, changed, NOW) != one
    assert one.startswith("artist-20261201T000000000000-")


def test_ease_inverse_is_bit_identical_to_mirroring_the_full_upper_triangle() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((300, 130))
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += 5.0
    chol, _ = sl.lapack.dpotrf(gram.copy(), lower=False)
    inv, _ = sl.lapack.dpotri(chol, lower=False)
    reference = np.triu(inv) + np.triu(inv, 1).T
    assert np.array_equal(_spd_inverse(gram.copy(), block=32), reference)
    assert np.array_equal(_spd_inverse(gram.copy()), reference)
    single = _spd_inverse(gram.astype(np.float32))
    assert single.dtype == np.float32 and np.allclose(single, reference, rtol=1e-3, atol=1e-5)


def test_ease_in_float32_ranks_like_float64() -> None:
    data, tags, _ = build_world()
    rows = data.matrix[:10]
    wide_model, narrow_model = EASE(tags=tags).fit(data), EASE(tags=tags, precision="float32").fit(data)
    # Row-major weights: scoring reads rows (Fortran order made every product copy the matrix).
    assert wide_model.weights.flags.c_contiguous and narrow_model.weights.flags.c_contiguous
    wide, narrow = wide_model.score(rows), narrow_model.score(rows)
    assert np.allclose(wide, narrow, atol=1e-4)
    assert (np.argsort(-wide, axis=1)[:, :5] == np.argsort(-narrow, axis=1)[:, :5]).all()


@pytest.mark.parametrize("model", [ItemKNN(k=4), RP3beta(k=4)])
def test_neighbourhoods_do_not_depend_on_how_the_product_is_blocked(model) -> None:
    data, _tags, _ = build_world()
    whole = type(model)(**model.params()).fit(data).sim
    x = sp.csr_matrix(data.matrix)
    assert whole.nnz > 0
    # The same product cut into blocks of a row or two by a tiny entry budget.
    tiny = blocked_top_k_product(sp.csr_matrix(x.T), x, 4, max_entries=5)
    large = blocked_top_k_product(sp.csr_matrix(x.T), x, 4)
    assert (tiny != large).nnz == 0 and np.array_equal(tiny.indptr, large.indptr)


def test_candidate_pool_does_not_depend_on_the_chunk_size() -> None:
    data, tags, _ = build_world()
    models = {"ease": EASE(tags=tags).fit(data), "pop": MostPop().fit(data), "knn": ItemKNN(k=5).fit(data)}
    rows = data.matrix[:25]
    relevant = [np.array([i % data.n_items]) for i in range(25)]
    one = CandidatePool.from_models(models, rows, relevant, depth=4, chunk=250)
    other = CandidatePool.from_models(models, rows, relevant, depth=4, chunk=3)
    cells = CandidatePool.from_models(models, rows, relevant, depth=4, chunk_cells=2 * data.n_items)
    for pool in (other, cells):
        assert np.array_equal(pool.hits, one.hits) and np.array_equal(pool.valid, one.valid)
        for name in models:
            assert np.array_equal(pool.values[name], one.values[name])
    assert one.ndcg({"ease": 1.0, "pop": 0.1, "knn": 0.5}) == other.ndcg({"ease": 1.0, "pop": 0.1, "knn": 0.5})
