"""The recommendation engine the services layer calls: train, recommend, similar, save, load.

It wraps a tuned `Hybrid` with the catalogue it was trained on (ids, names, artists, popularity,
tags) and applies everything a product needs on top of raw scores: feedback (thumbs up/down),
the discovery dial, tag filters, /tune's boosts and avoids, the no-repeat window, the per-artist
cap, and evidence; callers re-rank nothing afterwards. All of it
is computed from the user's *current* history row at request time, so a listen or a thumbs-down
recorded a second ago changes the next list without retraining.

One engine serves one granularity (artist, album or track); keep one per `Kind`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.domain import AotyFacts, Evidence, Kind, Recommendation, Weighted
from core.errors import NotFound
from core.recommender.artifacts import ArtifactReader, ArtifactWriter
from core.recommender.components import TrainingPlan, plan_for
from core.recommender.hybrid import Hybrid, normalise_scores
from core.recommender.interactions import Interactions, Vocabulary
from core.recommender.models import Model
from core.recommender.models._row import UserRow
from core.recommender.models.content import ContentTfidf
from core.recommender.requests import RecommendRequest, UserHistory
from core.recommender.similar_graph import graph_matrix
from core.recommender.tags import ItemTags, tag_variants

# Feedback and dial strengths, in standard deviations of the user's blended scores.
LIKE_PULL = 1.0
DISLIKE_PUSH = 2.0
DISCOVERY_PENALTY = 4.0
DISCOVERY_QUALITY = 1.0  # with AOTY data, deep cuts lean on quality so "obscure" never means "bad"
NEIGHBOUR_COMPONENTS = ("knn", "content", "links")  # which similarities define "near neighbours"
EVIDENCE_COMPONENTS = ("ease", "knn", "rp3", "content", "links", "graph")
GRAPH_COMPONENT = "graph"  # Last.fm's similar-artist graph: its evidence reads "similar to X on Last.fm"
#: Components whose item similarity is evidence that two items are related (see `related_to`).
RELATION_COMPONENTS = ("knn", "rp3", "links", GRAPH_COMPONENT)
RELATED_POOL = 3  # `similar(related_only=True)` first ranks this many times `count`, then widens
BOOST_FACTOR = 0.5  # a /tune "more X" item's rank position is multiplied by this (moves it up)
BOOST_POOL_MAX = 100  # with boosts, the top max(3 x count, count + 10) items (at most this many) are re-ordered
AVOID_MIN_SHARE = 0.2  # a /tune "less X" tag must carry this share of an item's tag weight to leave it out


def default_artifact_dir(models_dir: Path, kind: Kind) -> Path:
    """Where a trained engine lives: ``<models_dir>/recommender/<kind>/`` (manifest.json + arrays.npz)."""
    return Path(models_dir) / "recommender" / str(kind)


class RecommenderEngine:
    """A trained hybrid plus its catalogue; immutable once built (swap whole engines to update)."""

    def __init__(self, hybrid: Hybrid, items: Vocabulary, *, kind: Kind = Kind.ARTIST,
                 names: np.ndarray | None = None, artists: np.ndarray | None = None,
                 popularity: np.ndarray | None = None, n_users: int = 1, tags: ItemTags | None = None,
                 aoty: Mapping[object, AotyFacts] | None = None) -> None:
        self.hybrid = hybrid
        self.items = items
        self.kind = kind
        n = len(items)
        self.names = names if names is not None else np.array([str(v) for v in items.ids.tolist()])
        self.artists = artists
        self.popularity = popularity if popularity is not None else np.zeros(n)
        self.n_users = max(1, n_users)
        self.tags = tags or ItemTags.empty(n)
        self.aoty = dict(aoty or {})
        self._pop01 = np.log1p(self.popularity) / max(np.log1p(self.popularity.max(initial=0)), 1e-9)
        self._pop01_f32 = self._pop01.astype(np.float32)
        # Normalised scores of row-independent components (priors), computed on first use.
        self._constant_scores: dict[str, tuple[Model, np.ndarray, np.ndarray]] = {}

    # --- training -------------------------------------------------------------------------------
    @classmethod
    def train(cls, data: Interactions, *, kind: Kind = Kind.ARTIST, names: Mapping[object, str] | None = None,
              tags: ItemTags | None = None, quality: np.ndarray | None = None, links: sp.spmatrix | None = None,
              aoty: Mapping[object, AotyFacts] | None = None, components: Mapping[str, Model] | None = None,
              tune: bool = True, weights: Mapping[str, float] | None = None,
              cold_weights: Mapping[str, float] | None = None, seed: int = 0,
              progress: Callable[[str], None] | None = None,
              similar: Mapping[object, Mapping[object, float]] | None = None,
              plan: TrainingPlan | None = None) -> RecommenderEngine:
        """Tune on a validation split of `data`, fit the hybrid on all of it, return a ready engine.

        `tags` must follow `data.items` (build with `ItemTags.from_sources(data.items, …)`);
        `quality` is per-item AOTY quality (see `models.aoty.quality_from_facts`); `links` is an
        items x items matrix of AOTY similar-album links; `similar` is Last.fm's similar-item graph
        ({item id: {similar item id: match in (0, 1]}}, pairs outside `data.items` dropped), which
        adds the "graph" component. All optional. `plan` (hyper-parameters and tuning scheme) is
        chosen from the size of `data` by `components.plan_for` unless given.

        Tuning fits every component twice (validation, then full), roughly tripling the cost. For
        frequent retrains pass the previous engine's `hybrid.weights` / `hybrid.cold_weights`
        with ``tune=False`` and retune on a slower schedule (e.g. nightly).
        """
        graph = graph_matrix(similar, data.items) if similar else None
        plan = plan or plan_for(data.n_users, data.n_items, data.matrix.nnz)
        parts = dict(components) if components is not None else plan.components(tags, quality, links, graph)
        hybrid = Hybrid(parts, weights, cold_weights).fit(data, tune=tune, seed=seed, progress=progress,
                                                          max_validation_users=plan.max_validation_users,
                                                          holdout=plan.holdout)
        name_array = None
        if names is not None:
            name_array = np.array([str(names.get(data.items.external(i), data.items.external(i)))
                                   for i in range(data.n_items)])
        return cls(hybrid, data.items, kind=kind, names=name_array, artists=data.item_artists,
                   popularity=data.item_user_counts().astype(np.float64), n_users=data.n_users, tags=tags,
                   aoty=aoty)

    # --- requests -------------------------------------------------------------------------------
    def history_row(self, history: UserHistory | sp.csr_matrix) -> sp.csr_matrix:
        if sp.issparse(history):
            return sp.csr_matrix(history, dtype=np.float32)
        values = np.asarray(history.strengths, dtype=np.float64)
        cols = self.items.indices(history.items)
        known = (cols >= 0) & (values > 0)
        row = sp.csr_matrix((values[known].astype(np.float32), (np.zeros(known.sum(), dtype=np.int64), cols[known])),
                            shape=(1, len(self.items)), dtype=np.float32)
        row.sum_duplicates()
        return row

    def _indices(self, ids: object) -> np.ndarray:
        found = self.items.indices(list(ids))  # type: ignore[call-overload]
        return found[found >= 0]

    def recommend(self, history: UserHistory | sp.csr_matrix,
                  request: RecommendRequest | None = None) -> list[Recommendation]:
        """Top items for a user's current history under the request's controls, with evidence."""
        request = request or RecommendRequest()
        row = history_row = self.history_row(history)
        liked = self._indices(request.liked)
        disliked = self._indices(request.disliked)
        if len(liked):
            # A thumbs-up counts as a strong listen: as strong as the user's favourite item.
            boost = float(row.data.max(initial=1.0))
            extra = sp.csr_matrix((np.full(len(liked), boost, np.float32), (np.zeros(len(liked), int), liked)),
                                  shape=row.shape)
            row = sp.csr_matrix(row.maximum(extra))
        if len(disliked) and np.isin(row.indices, disliked).any():
            # A thumbs-down on something the user played: stop using it as a positive signal.
            row = sp.csr_matrix(row.multiply(~np.isin(np.arange(row.shape[1]), disliked)[None, :]), dtype=np.float32)
            row.eliminate_zeros()
        # The row as arrays, shared by every component and the evidence (None: repeated columns,
        # then every model scores the sparse row as before).
        user = UserRow.from_csr(row)
        weights = self.hybrid.weights_for(row.nnz)
        parts = {name: w * self._normalised_scores(name, row, user)
                 for name, w in weights.items() if w and name in self.hybrid.components}
        total = np.sum(list(parts.values()), axis=0) if parts else np.zeros(len(self.items), np.float32)
        total = total.astype(np.float32)
        spread = float(total.std()) or 1.0
        if len(liked):
            total += LIKE_PULL * spread * self._liked_pull(liked)
        if len(disliked):
            total -= DISLIKE_PUSH * spread * self._neighbourhood(disliked)
        if request.discovery > 0:
            total -= np.float32(request.discovery * DISCOVERY_PENALTY * spread) * self._pop01_f32
            if self.hybrid.components.get("quality") is not None:
                lift = self._normalised_scores("quality", row, user)
                total += np.float32(request.discovery * DISCOVERY_QUALITY * spread) * lift
        # Known = the user's own history; liked items folded into `row` above may come back.
        allowed = self._allowed(history_row, request, liked, disliked)
        total = np.where(allowed, total, -np.inf)
        chosen = self._steered(total, request)
        return self._recommendations(np.asarray(chosen, dtype=np.int64), total, row, user, parts,
                                     request.with_evidence)

    def _steered(self, total: np.ndarray, request: RecommendRequest) -> list[int]:
        """The ranked list; with /tune boosts, boosted items of a wider pool move up (soft steering)."""
        if not request.boost_tags:
            return self._rank(total, request.count, request.max_per_artist)
        pool = min(BOOST_POOL_MAX, max(request.count * 3, request.count + 10))
        ranked = self._rank(total, pool, request.max_per_artist)
        boosted = self.tags.items_with_any(tag_variants(request.boost_tags))
        keys = [position * (BOOST_FACTOR if boosted[item] else 1.0) for position, item in enumerate(ranked)]
        order = sorted(range(len(ranked)), key=lambda i: (keys[i], i))
        return [ranked[i] for i in order[:request.count]]

    def similar(self, item_id: object, count: int = 10, *, max_per_artist: int | None = None,
                related_only: bool = False) -> list[Recommendation]:
        """Items most like `item_id`: what the hybrid recommends to someone who knows only that item.

        With `related_only`, only items that share evidence with the seed (`related_to`) are kept,
        in the hybrid's order; fewer than `count`, or none, when fewer are related. Why a floor: the
        hybrid ranks the whole catalogue, so after the real neighbours come items nothing ties to
        the seed, ranked there by popularity and priors alone (Taylor Swift's list ended with
        Metallica, Iron Maiden and Slayer). Why this floor and not a score: hybrid scores are
        z-normalised per request, so no fixed number separates related from unrelated, whereas an
        unrelated item has exactly zero in every relation similarity. It takes no tuned figure, so
        it means the same on a ten-artist server and on a large catalogue. Without `related_only`
        the list is the hybrid's plain top `count` (what evaluation and the fast-path tests compare).
        """
        index = self.items.get(item_id)
        if index < 0:
            raise NotFound("I don't know that one yet.", detail=f"item {item_id!r} not in the model")
        row = sp.csr_matrix((np.ones(1, np.float32), ([0], [index])), shape=(1, len(self.items)))
        request = RecommendRequest(count=count, max_per_artist=max_per_artist, exclude=(item_id,))
        if not related_only:
            return self.recommend(row, request)
        related = self.related_to(index)
        wanted = min(count, int(related.sum()))
        if wanted == 0:
            return []
        pool = count * RELATED_POOL
        while True:  # popular strangers can outrank real neighbours: widen the ranking until enough pass
            ranked = self.recommend(row, replace(request, count=pool))
            kept = [r for r in ranked if related[self.items.get(r.item_id)]]
            if len(kept) >= wanted or len(ranked) < pool:
                return kept[:count]
            pool *= 4

    def related_to(self, index: int) -> np.ndarray:
        """Boolean mask of items sharing evidence with item `index` (a model row): a positive
        similarity in a component that is a fact about the pair (`RELATION_COMPONENTS`): the same
        listeners play both (item k-NN, RP3beta: non-zero only for items with a listener in common,
        and on large data only for the nearest few hundred), Last.fm's similar graph, AOTY's
        similar-album links. Tag overlap alone does not count: broad tags ("female vocalists",
        "rock") join most of a Last.fm catalogue. Blended models (EASE, NMF, ALS) do not count
        either: they give every pair some weight."""
        related = np.zeros(len(self.items), dtype=bool)
        for name in RELATION_COMPONENTS:
            model = self.hybrid.components.get(name)
            if model is not None:
                related |= np.asarray(model.item_similarity(np.array([index])))[0] > 0
        related[index] = False
        return related

    # --- internals ------------------------------------------------------------------------------
    def _normalised_scores(self, name: str, row: sp.csr_matrix, user: UserRow | None) -> np.ndarray:
        """One component's per-user z-normalised scores (1-D), as `normalise_scores(model.score(row))[0]`."""
        model = self.hybrid.components[name]
        constant = model.row_independent_scores()
        if constant is not None and len(constant) == model.n_items:
            cached = self._constant_scores.get(name)
            if cached is None or cached[0] is not model or cached[1] is not constant:
                cached = (model, constant, normalise_scores(constant[None, :])[0])
                self._constant_scores[name] = cached
            return cached[2]
        scores = model.score(row) if user is None else model.score_row(user)[None, :]
        return normalise_scores(scores)[0]

    def _neighbourhood(self, items: np.ndarray) -> np.ndarray:
        """Summed similarity of every item to `items`, scaled to 0..1 (the feedback spread)."""
        total = np.zeros(len(self.items), dtype=np.float32)
        for name in NEIGHBOUR_COMPONENTS:
            model = self.hybrid.components.get(name)
            if model is None:
                continue
            sims = np.clip(model.item_similarity(items), 0, None).sum(axis=0)
            peak = float(sims.max(initial=0))
            if peak > 0:
                total += sims / peak
        peak = float(total.max(initial=0))
        return total / peak if peak > 0 else total

    def _liked_pull(self, liked: np.ndarray) -> np.ndarray:
        """What a thumbs-up pulls up (0..1): the liked items' neighbourhood, with each liked item as
        its own closest neighbour. The models' self-similarity is zero (or missing), so without
        that its neighbours rose past it and the 👍'd item itself could stay where it was, or fall,
        in the very next list."""
        pull = self._neighbourhood(liked)
        pull[liked] = 1.0
        return pull

    def _allowed(self, row: sp.csr_matrix, request: RecommendRequest, liked: np.ndarray,
                 disliked: np.ndarray) -> np.ndarray:
        allowed = np.ones(len(self.items), dtype=bool)
        if not request.include_known:
            allowed[row.indices] = False
        recent = self._indices(request.recently_shown)
        allowed[np.setdiff1d(recent, liked)] = False
        allowed[self._indices(request.exclude)] = False
        allowed[disliked] = False  # a thumbs-down never returns, whatever else the request says
        if request.tags:
            allowed &= self.tags.items_with_any(request.tags)
        avoid = [t for t in request.avoid_tags if t not in request.tags]
        if avoid:
            allowed &= ~self.tags.items_with_any(tag_variants(avoid), min_share=AVOID_MIN_SHARE)
        return allowed

    def _rank(self, scores: np.ndarray, count: int, max_per_artist: int | None) -> list[int]:
        finite = int(np.isfinite(scores).sum())
        if finite == 0:
            return []
        if max_per_artist is None or self.artists is None:
            pool = min(count, finite)
        else:
            pool = min(finite, max(count * 10, 100))
        while True:
            part = np.argpartition(-scores, pool - 1)[:pool] if pool < len(scores) else np.arange(len(scores))
            order = part[np.argsort(-scores[part], kind="stable")]
            order = order[np.isfinite(scores[order])]
            chosen: list[int] = []
            per_artist: dict[str, int] = {}
            for item in order.tolist():
                if max_per_artist is not None and self.artists is not None:
                    artist = str(self.artists[item])
                    if artist and per_artist.get(artist, 0) >= max_per_artist:
                        continue
                    per_artist[artist] = per_artist.get(artist, 0) + 1
                chosen.append(item)
                if len(chosen) == count:
                    return chosen
            if pool >= finite:
                return chosen
            pool = min(finite, pool * 4)

    def _recommendations(self, chosen: np.ndarray, total: np.ndarray, row: sp.csr_matrix, user: UserRow | None,
                         parts: Mapping[str, np.ndarray], with_evidence: bool) -> list[Recommendation]:
        if len(chosen) == 0:
            return []
        cold = row.nnz < self.hybrid.cold_threshold
        items_evidence = self._evidence_items(row, chosen, user) if with_evidence else [()] * len(chosen)
        tags_evidence = self._evidence_tags(row, chosen, user) if with_evidence else [()] * len(chosen)
        graph_evidence = self._evidence_graph(row, chosen, user) if with_evidence else [()] * len(chosen)
        out = []
        for position, item in enumerate(chosen.tolist()):
            item_id = self.items.external(item)
            popularity = float(self.popularity[item] / self.n_users)
            if not with_evidence:
                evidence = Evidence(popularity=popularity)
            else:
                evidence = Evidence(
                    items=items_evidence[position], tags=tags_evidence[position],
                    similar_to=graph_evidence[position],
                    sources={name: round(float(p[item]), 4) for name, p in parts.items()},
                    aoty=self.aoty.get(item_id), popularity=popularity,
                    note="cold start: based on few listens, leaning on tags and popularity" if cold else None)
            artist = str(self.artists[item]) if self.artists is not None and self.kind != Kind.ARTIST else None
            out.append(Recommendation(kind=self.kind, item_id=_as_int(item_id), name=str(self.names[item]),
                                      score=float(total[item]), evidence=evidence, artist=artist or None))
        return out

    def _evidence_items(self, row: sp.csr_matrix, items: np.ndarray, user: UserRow | None = None,
                        top: int = 3) -> list[tuple[Weighted, ...]]:
        """Per item, the user's items that pushed it up most, summed over components (weights sum to 1)."""
        weights = self.hybrid.weights_for(row.nnz)
        history = np.unique(row.indices) if user is None else user.indices  # sorted, distinct
        totals = np.zeros((len(history), len(items)), dtype=np.float64)
        for name in EVIDENCE_COMPONENTS:
            model = self.hybrid.components.get(name)
            if model is None or not weights.get(name) or len(history) == 0:
                continue
            found = model.contributions(row, items) if user is None else model.contributions_row(user, items)
            if found is None:
                continue
            indices, values = found
            scale = np.abs(values).sum(axis=0)
            values = np.divide(values, scale, out=np.zeros_like(values, dtype=np.float64), where=scale > 0)
            rows = np.searchsorted(history, indices)
            if len(rows) < 2 or (np.diff(rows) > 0).all():
                totals[rows] += weights[name] * values  # distinct rows: the same sums as np.add.at
            else:
                np.add.at(totals, rows, weights[name] * values)
        # Per item (column): the top history items by argsort of the negated column, as one call.
        columns = totals.T
        ranked = np.argsort(-columns, axis=1)[:, :top]
        picked = np.take_along_axis(columns, ranked, axis=1)
        out: list[tuple[Weighted, ...]] = []
        for order, values in zip(ranked, picked, strict=True):
            positive = values > 0
            values = values[positive]
            norm = float(values.sum()) or 1.0
            out.append(tuple(Weighted(str(self.names[history[i]]), round(value / norm, 4))
                             for i, value in zip(order[positive].tolist(), values.tolist(), strict=True)))
        return out

    def _evidence_graph(self, row: sp.csr_matrix, items: np.ndarray, user: UserRow | None = None,
                        top: int = 2) -> list[tuple[Weighted, ...]]:
        """Per item, the user's items it is Last.fm-similar to, strongest (weighted match) first."""
        graph = self.hybrid.components.get(GRAPH_COMPONENT)
        if graph is None or row.nnz == 0:
            return [()] * len(items)
        found = graph.contributions(row, items) if user is None else graph.contributions_row(user, items)
        if found is None:
            return [()] * len(items)
        history, values = found
        out: list[tuple[Weighted, ...]] = []
        for column in np.asarray(values, dtype=np.float64).T:
            order = np.argsort(-column, kind="stable")[:top]
            best = column[order]
            norm = float(best[best > 0].sum()) or 1.0
            out.append(tuple(Weighted(str(self.names[history[i]]), round(float(v) / norm, 4))
                             for i, v in zip(order.tolist(), best.tolist(), strict=True) if v > 0))
        return out

    def _evidence_tags(self, row: sp.csr_matrix, items: np.ndarray, user: UserRow | None = None,
                       top: int = 3) -> list[tuple[Weighted, ...]]:
        content = self.hybrid.components.get("content")
        if not isinstance(content, ContentTfidf) or row.nnz == 0:
            return [()] * len(items)
        overlap = content.tag_overlap(row, items) if user is None else content.tag_overlap_row(user, items)
        out: list[tuple[Weighted, ...]] = []
        for names, weights in overlap:
            order = np.argsort(-weights)[:top]
            best = weights[order]
            norm = float(best.sum()) or 1.0
            out.append(tuple(Weighted(str(name), round(weight / norm, 4))
                             for name, weight in zip(names[order].tolist(), best.tolist(), strict=True)
                             if weight > 0))
        return out

    # --- persistence ----------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Write the engine as one versioned artifact folder (atomic replace)."""
        writer = ArtifactWriter(meta={"kind": str(self.kind), "n_users": self.n_users,
                                      "has_artists": self.artists is not None})
        self.hybrid.write_state(writer, "hybrid/")
        writer.put("catalogue/ids", self.items.ids)
        writer.put("catalogue/names", self.names)
        writer.put("catalogue/popularity", self.popularity)
        if self.artists is not None:
            writer.put("catalogue/artists", self.artists)
        writer.put_sparse("catalogue/tags", self.tags.matrix)
        writer.put("catalogue/tag_names", self.tags.names)
        return writer.save(path)

    @classmethod
    def load(cls, path: Path, *, aoty: Mapping[object, AotyFacts] | None = None) -> RecommenderEngine:
        """Load a saved engine; AOTY facts for evidence are passed in fresh (they change daily)."""
        reader = ArtifactReader.open(path)
        hybrid = Hybrid.read_state(reader, "hybrid/")
        items = Vocabulary(reader.get("catalogue/ids"))
        tags = ItemTags(reader.get_sparse("catalogue/tags").astype(np.float32),
                        reader.get("catalogue/tag_names").astype(str))
        artists = reader.get("catalogue/artists").astype(str) if reader.meta.get("has_artists") else None
        return cls(hybrid, items, kind=Kind(reader.meta["kind"]), names=reader.get("catalogue/names").astype(str),
                   artists=artists, popularity=reader.get("catalogue/popularity").astype(np.float64),
                   n_users=int(reader.meta["n_users"]), tags=tags, aoty=aoty)


def _as_int(item_id: object) -> int:
    """Domain results carry integer ids (database rows); string vocabularies must be numeric."""
    try:
        return int(item_id)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValueError(f"item id {item_id!r} is not an integer database id") from None
