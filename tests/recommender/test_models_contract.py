"""The contract every model passes (after benfred/implicit's RecommenderBase tests)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp

from core.recommender.interactions import Interactions
from core.recommender.models import (
    EASE,
    IALS,
    NMF,
    ContentTfidf,
    ItemKNN,
    ItemLinks,
    Model,
    MostPop,
    QualityPrior,
    RP3beta,
    SimilarGraph,
)
from core.recommender.models._row import UserRow
from core.recommender.tags import ItemTags
from tests.recommender.conftest import row_of, scene_items

World = tuple[Interactions, ItemTags, sp.csr_matrix]


def _quality(world: World) -> np.ndarray:
    # A prior "passes" when the prior agrees with the truth: scene-0 albums are rated best.
    data = world[0]
    quality = np.full(data.n_items, 0.5, dtype=np.float32)
    quality[data.items.indices(scene_items(0))] = 0.9
    return quality


FACTORIES: dict[str, Callable[[World], Model]] = {
    "MostPop": lambda w: MostPop(),
    "ItemKNN": lambda w: ItemKNN(),
    "RP3beta": lambda w: RP3beta(),
    "EASE": lambda w: EASE(),
    "EASE+tags": lambda w: EASE(tags=w[1]),
    "NMF": lambda w: NMF(factors=4, max_iter=200),
    "IALS": lambda w: IALS(factors=4),
    "Content": lambda w: ContentTfidf(w[1]),
    "Links": lambda w: ItemLinks(w[2]),
    "Quality": lambda w: QualityPrior(_quality(w)),
    "SimilarGraph": lambda w: SimilarGraph(w[2]),  # the scene links as Last.fm's similar-artist graph
    "SimilarGraph2hop": lambda w: SimilarGraph(w[2], weighting="log1p", two_hop=0.3, symmetric=True),
}
#: Models whose scores name no driving history items (priors; NMF and IALS mix every item into each factor).
NO_TERMS = {"MostPop", "Quality", "NMF", "IALS"}
PERSONALISED = {"ItemKNN", "RP3beta", "EASE", "EASE+tags", "NMF", "IALS", "Content", "Links", "SimilarGraph",
                "SimilarGraph2hop"}


@pytest.fixture(params=sorted(FACTORIES), scope="module")
def fitted(request: pytest.FixtureRequest, world: World) -> tuple[str, Model]:
    return request.param, FACTORIES[request.param](world).fit(world[0])


def test_withheld_item_comes_back_first(fitted: tuple[str, Model], world: World) -> None:
    name, model = fitted
    data = world[0]
    history = scene_items(0)[1:]  # a scene-0 fan who has not heard the first artist yet
    top, _ = model.recommend(row_of(data, history), n=3)
    assert data.items.external(int(top[0])) == scene_items(0)[0], name


def test_known_items_are_filtered(fitted: tuple[str, Model], world: World) -> None:
    _name, model = fitted
    data = world[0]
    row = row_of(data, scene_items(1)[:3])
    top, _ = model.recommend(row, n=data.n_items)
    assert not set(top.tolist()) & set(row.indices.tolist())


def test_unknown_user_is_folded_in_or_falls_back(fitted: tuple[str, Model], world: World) -> None:
    name, model = fitted
    data = world[0]
    empty = sp.csr_matrix((1, data.n_items), dtype=np.float32)
    scores = model.score(empty)
    assert scores.shape == (1, data.n_items) and np.all(np.isfinite(scores))
    # A brand-new user (not a training row) who knows four scene-2 artists: fold-in finds the fifth.
    new_user = row_of(data, scene_items(2)[:4])
    top, _ = model.recommend(new_user, n=1)
    if name in PERSONALISED:
        assert data.items.external(int(top[0])) == scene_items(2)[4], name
    else:
        assert len(top) == 1


def test_save_load_round_trip_gives_identical_scores(fitted: tuple[str, Model], world: World, tmp_path) -> None:
    _name, model = fitted
    data = world[0]
    path = model.save(tmp_path / "model")
    assert (path / "manifest.json").is_file() and (path / "arrays.npz").is_file()
    loaded = Model.load(path)
    rows = data.matrix[:7]
    np.testing.assert_array_equal(model.score(rows), loaded.score(rows))


_SPARSE = ("float32", "int32", "int32", "int64")  # data, indices, indptr, shape as `put_sparse` writes them
#: The artifact's arrays (key order and dtypes) as every earlier version wrote them: models declare
#: their state now, and an artifact already on disk must keep loading.
ARTIFACT_ARRAYS: dict[str, list[tuple[str, str]]] = {
    **{name: [(f"sim.{part}", dtype) for part, dtype in zip(("data", "indices", "indptr", "shape"), _SPARSE,
                                                              strict=True)]
       for name in ("ItemKNN", "RP3beta", "SimilarGraph", "SimilarGraph2hop")},
    "Links": [(f"links.{part}", dtype) for part, dtype in zip(("data", "indices", "indptr", "shape"), _SPARSE,
                                                               strict=True)],
    "Content": [(f"vectors.{part}", dtype) for part, dtype in zip(("data", "indices", "indptr", "shape"), _SPARSE,
                                                                   strict=True)] + [("tag_names", "<U")],
    "EASE": [("items", "int64"), ("weights", "float32")],
    "EASE+tags": [("items", "int64"), ("weights", "float32")],
    "NMF": [("item_factors", "float64"), ("items", "int64")],
    "IALS": [("item_factors", "float64"), ("items", "int64")],
    "MostPop": [("counts", "float32")],
    "Quality": [("quality", "float32")],
}


def test_artifact_arrays_keep_their_keys_order_and_dtypes(fitted: tuple[str, Model], tmp_path) -> None:
    name, model = fitted
    path = model.save(tmp_path / "model")
    with np.load(path / "arrays.npz", allow_pickle=False) as npz:
        written = [(key, npz[key].dtype.str.lstrip("<|=") if npz[key].dtype.kind != "U" else "<U")
                   for key in npz.files]
    expected = [(key, np.dtype(dtype).str.lstrip("<|=") if dtype != "<U" else "<U")
                for key, dtype in ARTIFACT_ARRAYS[name]]
    assert written == expected, name


def test_similar_items_stay_in_the_scene(fitted: tuple[str, Model], world: World) -> None:
    name, model = fitted
    data = world[0]
    if name not in PERSONALISED:
        pytest.skip(f"{name} has no notion of item similarity")
    seed = data.items.index(scene_items(1)[0])
    top, _ = model.similar_items(seed, n=3)
    assert seed not in top.tolist()
    assert {data.items.external(int(i)) for i in top} <= set(scene_items(1))


def test_served_scores_are_the_batch_scores_and_their_terms_summed(fitted: tuple[str, Model], world: World) -> None:
    """One scoring path: the served scores equal the batch scores bit for bit, and the evidence
    (each history item's contributions) adds up to those same scores."""
    name, model = fitted
    data = world[0]
    items = np.arange(data.n_items)
    strengths = np.linspace(1.0, 40.0, 7)
    rows = [data.history_row(scene_items(0)[1:], strengths[:4].tolist()),
            data.history_row(scene_items(1)[:2] + scene_items(2)[:3], strengths[2:].tolist()),
            sp.csr_matrix((1, data.n_items), dtype=np.float32)]
    for row in rows:
        user = UserRow.from_csr(row)
        assert user is not None
        served = model.score_row(user)
        assert np.array_equal(served, model.score(row)[0]), name
        found = model.contributions_row(user, items)
        assert (found is None) == (name in NO_TERMS), name
        if found is None:
            continue
        history, terms = found
        assert terms.shape == (len(history), len(items)) and set(history.tolist()) <= set(row.indices.tolist())
        assert terms.flags["C_CONTIGUOUS"], name  # evidence sums its columns in row order, as scoring does
        scale = model.row_terms(UserRow.from_csr(row)).scale  # type: ignore[arg-type]
        np.testing.assert_allclose(terms.sum(axis=0, dtype=np.float64) * scale, served, rtol=1e-5, atol=1e-6,
                                   err_msg=name)
        again = model.contributions(row, items[::3])
        assert again is not None and np.array_equal(again[1], terms[:, ::3]), name
