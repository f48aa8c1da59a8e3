"""The serving fast path (`UserRow`, `Model.score_row`/`contributions_row`) changes nothing.

`RecommenderEngine.recommend` scores one user from plain arrays instead of small SciPy matrices.
These tests keep the straightforward sparse implementation (the engine as it was before the fast
path) as a reference and require the same items, order, scores and evidence, bit for bit, on a
seeded synthetic catalogue with every component (EASE, RP3beta, ItemKNN, NMF, content, popularity,
AOTY quality and links, the similar graph) and on the scene world, across the request controls.
(`Model.contributions` on a sparse row is drawn from the same row terms as the served scores since
each model has one scoring path; its agreement with the scores is checked by the model contract.)
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from core.domain import Evidence, Kind, Recommendation, Weighted
from core.recommender.engine import (
    DISCOVERY_PENALTY,
    DISCOVERY_QUALITY,
    DISLIKE_PUSH,
    EVIDENCE_COMPONENTS,
    LIKE_PULL,
    RecommenderEngine,
)
from core.recommender.hybrid import normalise_scores
from core.recommender.interactions import Interactions, Vocabulary
from core.recommender.models._row import UserRow, is_canonical, ranges
from core.recommender.models.content import ContentTfidf
from core.recommender.requests import RecommendRequest, UserHistory
from core.recommender.tags import ItemTags
from tests.recommender.conftest import build_world, scene_items

# --- the reference: recommend() with sparse rows, as before the fast path --------------------------


def reference_recommend(engine: RecommenderEngine, history: UserHistory | sp.csr_matrix,
                        request: RecommendRequest) -> list[Recommendation]:
    row = history_row = engine.history_row(history)
    liked = engine._indices(request.liked)
    disliked = engine._indices(request.disliked)
    if len(liked):
        boost = float(row.data.max(initial=1.0))
        extra = sp.csr_matrix((np.full(len(liked), boost, np.float32), (np.zeros(len(liked), int), liked)),
                              shape=row.shape)
        row = sp.csr_matrix(row.maximum(extra))
    if len(disliked) and np.isin(row.indices, disliked).any():
        row = sp.csr_matrix(row.multiply(~np.isin(np.arange(row.shape[1]), disliked)[None, :]), dtype=np.float32)
        row.eliminate_zeros()
    weights = engine.hybrid.weights_for(row.nnz)
    parts = {name: w * normalise_scores(engine.hybrid.components[name].score(row))[0]
             for name, w in weights.items() if w and name in engine.hybrid.components}
    total = np.sum(list(parts.values()), axis=0) if parts else np.zeros(len(engine.items), np.float32)
    total = total.astype(np.float32)
    spread = float(total.std()) or 1.0
    if len(liked):
        total += LIKE_PULL * spread * engine._liked_pull(liked)
    if len(disliked):
        total -= DISLIKE_PUSH * spread * engine._neighbourhood(disliked)
    if request.discovery > 0:
        total -= np.float32(request.discovery * DISCOVERY_PENALTY * spread) * engine._pop01.astype(np.float32)
        quality = engine.hybrid.components.get("quality")
        if quality is not None:
            lift = normalise_scores(quality.score(row))[0]
            total += np.float32(request.discovery * DISCOVERY_QUALITY * spread) * lift
    allowed = engine._allowed(history_row, request, liked, disliked)
    total = np.where(allowed, total, -np.inf)
    chosen = np.asarray(engine._rank(total, request.count, request.max_per_artist), dtype=np.int64)
    if len(chosen) == 0:
        return []
    cold = row.nnz < engine.hybrid.cold_threshold
    with_evidence = request.with_evidence
    items_evidence = reference_evidence_items(engine, row, chosen) if with_evidence else [()] * len(chosen)
    tags_evidence = reference_evidence_tags(engine, row, chosen) if with_evidence else [()] * len(chosen)
    graph_evidence = reference_evidence_graph(engine, row, chosen) if with_evidence else [()] * len(chosen)
    out = []
    for position, item in enumerate(chosen.tolist()):
        item_id = engine.items.external(item)
        popularity = float(engine.popularity[item] / engine.n_users)
        evidence = Evidence(popularity=popularity)
        if with_evidence:
            evidence = Evidence(
                items=items_evidence[position], tags=tags_evidence[position], similar_to=graph_evidence[position],
                sources={name: round(float(p[item]), 4) for name, p in parts.items()},
                aoty=engine.aoty.get(item_id), popularity=popularity,
                note="cold start: based on few listens, leaning on tags and popularity" if cold else None)
        artist = str(engine.artists[item]) if engine.artists is not None and engine.kind != Kind.ARTIST else None
        out.append(Recommendation(kind=engine.kind, item_id=int(item_id), name=str(engine.names[item]),
                                  score=float(total[item]), evidence=evidence, artist=artist or None))
    return out


def reference_evidence_items(engine: RecommenderEngine, row: sp.csr_matrix, items: np.ndarray,
                             top: int = 3) -> list[tuple[Weighted, ...]]:
    weights = engine.hybrid.weights_for(row.nnz)
    history = np.unique(row.indices)
    totals = np.zeros((len(history), len(items)), dtype=np.float64)
    for name in EVIDENCE_COMPONENTS:
        model = engine.hybrid.components.get(name)
        if model is None or not weights.get(name) or len(history) == 0:
            continue
        found = model.contributions(row, items)
        if found is None:
            continue
        indices, values = found
        scale = np.abs(values).sum(axis=0)
        values = np.divide(values, scale, out=np.zeros_like(values, dtype=np.float64), where=scale > 0)
        np.add.at(totals, np.searchsorted(history, indices), weights[name] * values)
    out: list[tuple[Weighted, ...]] = []
    for column in totals.T:
        order = [i for i in np.argsort(-column)[:top] if column[i] > 0]
        norm = float(column[order].sum()) or 1.0
        out.append(tuple(Weighted(str(engine.names[history[i]]), round(float(column[i]) / norm, 4))
                         for i in order))
    return out


def reference_evidence_graph(engine: RecommenderEngine, row: sp.csr_matrix, items: np.ndarray,
                             top: int = 2) -> list[tuple[Weighted, ...]]:
    graph = engine.hybrid.components.get("graph")
    if graph is None or row.nnz == 0:
        return [()] * len(items)
    history, values = graph.contributions(row, items)
    out: list[tuple[Weighted, ...]] = []
    for column in np.asarray(values, dtype=np.float64).T:
        order = [i for i in np.argsort(-column, kind="stable")[:top] if column[i] > 0]
        norm = float(column[order].sum()) or 1.0
        out.append(tuple(Weighted(str(engine.names[history[i]]), round(float(column[i]) / norm, 4))
                         for i in order))
    return out


def reference_evidence_tags(engine: RecommenderEngine, row: sp.csr_matrix, items: np.ndarray,
                            top: int = 3) -> list[tuple[Weighted, ...]]:
    content = engine.hybrid.components.get("content")
    if not isinstance(content, ContentTfidf) or row.nnz == 0:
        return [()] * len(items)
    out: list[tuple[Weighted, ...]] = []
    for names, weights in content.tag_overlap(row, items):
        order = np.argsort(-weights)[:top]
        norm = float(weights[order].sum()) or 1.0
        out.append(tuple(Weighted(str(names[i]), round(float(weights[i]) / norm, 4))
                         for i in order if weights[i] > 0))
    return out


# --- fixtures ---------------------------------------------------------------------------------------


def synthetic_world(seed: int = 3, n_users: int = 260, n_items: int = 180,
                    n_tags: int = 40) -> tuple[Interactions, ItemTags, np.ndarray, sp.csr_matrix]:
    """Zipf-popular items, log-normal history lengths, several tags per item, AOTY-like extras."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()
    users, items, plays = [], [], []
    for user in range(n_users):
        length = int(np.clip(rng.lognormal(2.3, 0.7), 1, 60))
        chosen = rng.choice(n_items, size=min(length, n_items), replace=False, p=popularity)
        users += [user] * len(chosen)
        items += (chosen + 1000).tolist()
        plays += rng.integers(1, 300, len(chosen)).astype(float).tolist()
    artists = {1000 + i: f"artist{i // 3}" for i in range(n_items)}
    data = Interactions.from_arrays(users, items, plays, item_artists=artists,
                                    item_vocabulary=Vocabulary(np.arange(1000, 1000 + n_items)))
    tag_counts = {}
    for i in range(n_items):
        count = int(rng.integers(0, 12))  # some items untagged, some with many tags
        tags = rng.choice(n_tags, size=count, replace=False)
        tag_counts[1000 + i] = {f"tag{t}": float(rng.integers(1, 50)) for t in tags}
    tags = ItemTags.from_sources(data.items, {"lastfm": tag_counts})
    quality = rng.uniform(0.3, 0.95, data.n_items).astype(np.float32)
    links = sp.random(data.n_items, data.n_items, density=0.03, random_state=seed, format="csr",
                      dtype=np.float32)
    return data, tags, quality, links


@pytest.fixture(scope="module")
def synthetic_engine() -> tuple[RecommenderEngine, Interactions]:
    data, tags, quality, links = synthetic_world()
    names = {1000 + i: f"Item {i}" for i in range(data.n_items)}
    # Every component weighted (tuning would zero some), warm and cold weights differ.
    weights = {"ease": 1.0, "rp3": 0.4, "knn": 0.7, "nmf": 0.5, "content": 1.5, "pop": 0.2, "quality": 0.3,
               "links": 0.6, "graph": 0.8}
    cold = {**weights, "content": 4.0, "pop": 2.0, "nmf": 3.0}
    rng = np.random.default_rng(17)  # a Last.fm-like similar graph: up to 12 neighbours, match in (0, 1]
    ids = data.items.ids.tolist()
    similar = {a: {int(b): float(m) for b, m in zip(rng.choice(ids, int(rng.integers(0, 12)), replace=False),
                                                    rng.uniform(0.05, 1.0, 12), strict=False) if b != a}
               for a in ids}
    engine = RecommenderEngine.train(data, kind=Kind.ALBUM, names=names, tags=tags, quality=quality, links=links,
                                     tune=False, weights=weights, cold_weights=cold, similar=similar)
    return engine, data


def same(fast: list[Recommendation], slow: list[Recommendation]) -> None:
    assert [r.item_id for r in fast] == [r.item_id for r in slow]
    for a, b in zip(fast, slow, strict=True):
        assert a.score == b.score  # bit-identical (float32 totals), not merely within 1e-9
        assert a == b


def requests_for(rng: np.random.Generator, ids: np.ndarray, history: list[int]) -> list[RecommendRequest]:
    others = rng.choice(ids, 6, replace=False).tolist()
    return [
        RecommendRequest(count=10),
        RecommendRequest(count=1),  # one item: tag evidence takes SciPy's element-wise branch
        RecommendRequest(count=25, discovery=float(rng.uniform(0.1, 1.0))),
        RecommendRequest(count=10, liked=(others[0],), disliked=(others[1],)),
        RecommendRequest(count=10, disliked=tuple(history[:2]), liked=tuple(history[2:3])),
        RecommendRequest(count=10, include_known=True, recently_shown=tuple(others[2:5])),
        RecommendRequest(count=8, max_per_artist=1),
        RecommendRequest(count=6, tags=("tag1", "tag2", "tag3")),
        RecommendRequest(count=10, with_evidence=False),
        RecommendRequest(count=40, exclude=tuple(others)),
    ]


# --- tests ------------------------------------------------------------------------------------------


def test_recommend_matches_the_sparse_reference_on_a_synthetic_catalogue(synthetic_engine) -> None:
    engine, data = synthetic_engine
    rng = np.random.default_rng(11)
    ids = engine.items.ids
    users = rng.choice(data.n_users, 40, replace=False)
    checked = 0
    for n, user in enumerate(users.tolist()):
        row = data.matrix[user]
        history = [int(ids[i]) for i in row.indices]
        if n % 3 == 1:  # cold users (< 5 items use the cold weight set, incl. NMF and popularity)
            keep = rng.choice(row.nnz, size=min(row.nnz, int(rng.integers(1, 5))), replace=False)
            row = sp.csr_matrix((row.data[keep], (np.zeros(len(keep), int), row.indices[keep])), shape=row.shape)
            history = [int(ids[i]) for i in row.indices]
        for request in requests_for(rng, ids, history):
            source = UserHistory(history, row.data.tolist()) if n % 2 else row
            same(engine.recommend(source, request), reference_recommend(engine, source, request))
            checked += 1
    empty = UserHistory([], [])
    same(engine.recommend(empty), reference_recommend(engine, empty, RecommendRequest()))
    for item in ids[:20].tolist():
        same(engine.similar(item, 7), reference_recommend(
            engine, sp.csr_matrix((np.ones(1, np.float32), ([0], [engine.items.get(item)])),
                                  shape=(1, len(ids))), RecommendRequest(count=7, exclude=(item,))))
    assert checked == 400


def test_recommend_matches_the_sparse_reference_on_the_scene_world() -> None:
    data, tags, links = build_world()
    names = {i: f"Artist {i}" for s in range(3) for i in scene_items(s)}
    quality = np.linspace(0.2, 0.9, data.n_items).astype(np.float32)
    engine = RecommenderEngine.train(data, kind=Kind.ALBUM, names=names, tags=tags, links=links, quality=quality,
                                     tune=False)
    rng = np.random.default_rng(5)
    ids = engine.items.ids
    for _ in range(30):
        history = rng.choice(ids, int(rng.integers(1, 7)), replace=False).tolist()
        strengths = rng.uniform(1, 100, len(history)).tolist()
        for request in requests_for(rng, ids, history):
            source = UserHistory(history, strengths)
            same(engine.recommend(source, request), reference_recommend(engine, source, request))


def test_row_methods_equal_the_sparse_methods_bit_for_bit(synthetic_engine) -> None:
    engine, data = synthetic_engine
    rng = np.random.default_rng(2)
    n = data.n_items
    rows = [data.matrix[u] for u in rng.choice(data.n_users, 25, replace=False)]
    rows.append(sp.csr_matrix((1, n), dtype=np.float32))  # empty
    rows.append(sp.csr_matrix((np.array([0.0, 3.0], np.float32), ([0, 0], [4, 9])), shape=(1, n)))  # stored zero
    unsorted = sp.csr_matrix((np.array([5.0, 1.0, 2.0], np.float32), np.array([30, 2, 17]), [0, 3]), shape=(1, n))
    rows.append(unsorted)  # unsorted columns are sorted first, as every weighting does
    items = rng.choice(n, 12, replace=False)
    for row in rows:
        user = UserRow.from_csr(row)
        assert user is not None
        for name, model in engine.hybrid.components.items():
            assert np.array_equal(model.score_row(user), model.score(row)[0]), name
            fast, slow = model.contributions_row(user, items), model.contributions(row, items)
            assert (fast is None) == (slow is None), name
            if fast is not None:
                assert np.array_equal(np.asarray(fast[0]), np.asarray(slow[0])), name
                assert np.array_equal(fast[1], slow[1]), name
        content = engine.hybrid.components["content"]
        for chosen in (items, items[:1], items[[3, 3, 5]]):
            fast_overlap = content.tag_overlap_row(user, chosen)
            for (fast_names, fast_weights), (names, weights) in zip(fast_overlap, content.tag_overlap(row, chosen),
                                                                    strict=True):
                assert fast_names.tolist() == names.tolist()
                assert np.array_equal(fast_weights, weights)


def test_rows_with_repeated_columns_fall_back_to_the_sparse_path(synthetic_engine) -> None:
    engine, data = synthetic_engine
    repeated = sp.csr_matrix((np.array([2.0, 3.0, 1.0], np.float32), np.array([7, 7, 12]), [0, 3]),
                             shape=(1, data.n_items))
    assert UserRow.from_csr(repeated) is None
    request = RecommendRequest(count=10)
    same(engine.recommend(repeated, request), reference_recommend(engine, repeated, request))


def test_row_helpers() -> None:
    indptr = np.array([0, 2, 2, 5, 6])
    positions, lengths = ranges(indptr, np.array([2, 0, 1, 3]))
    assert positions.tolist() == [2, 3, 4, 0, 1, 5] and lengths.tolist() == [3, 2, 0, 1]
    assert is_canonical(sp.csr_matrix(np.array([[0, 1, 2], [3, 0, 4]])))
    assert not is_canonical(sp.csr_matrix((np.ones(2), np.array([1, 1]), [0, 2]), shape=(1, 3)))
    assert not is_canonical(sp.csr_matrix((np.ones(2), np.array([2, 1]), [0, 2]), shape=(1, 3)))
