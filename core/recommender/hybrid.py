"""The hybrid: several models blended with per-user normalised scores and tuned weights.

Why blend: EASE (with tags as side information) is the strongest single model on HetRec but only
covers items several people know; the TF-IDF content model reaches the long tail and new items;
RP3beta/ItemKNN add a sparse, popularity-damped neighbourhood view; NMF is the product's latent CF
model; popularity and AOTY quality are priors. Their raw scores live on unrelated scales, so each
component's scores are z-normalised *per user* over the catalogue before weighting.

Weights are tuned on a validation split carved out of the *training* data (never the test set):
components are fitted on train-minus-validation, then weights are searched by coordinate ascent on
validation NDCG@10, then every component is refitted on the full training data. A second weight set
is tuned for users cut down to a few items (cold start), where content and popularity matter more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from core.recommender.artifacts import ArtifactReader, ArtifactWriter
from core.recommender.components import fixed_weights, pooled_weights
from core.recommender.interactions import Interactions
from core.recommender.models import MODEL_TYPES, Model
from core.recommender.splits import cut_histories, holdout_split

log = logging.getLogger(__name__)

WEIGHT_GRID = (0.0, 0.03, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.5, 4.0, 7.0, 12.0)
COLD_KEEP = 3  # items kept per validation user when tuning the cold-start weights
HOLDOUT_MIN_ITEMS = 5  # users with fewer items are never validation users
VALIDATION_SEED_OFFSET = 10_007  # the validation carve-out's split seed is the training seed + this


def normalise_scores(scores: np.ndarray) -> np.ndarray:
    """Per-row z-score over the catalogue (rows of constants become zeros)."""
    scores = np.asarray(scores, dtype=np.float32)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return np.divide(scores - mean, std, out=np.zeros_like(scores), where=std > 1e-12)


@dataclass
class TuningReport:
    """What tuning found, kept in the artifact manifest so a model explains its own weights."""

    weights: dict[str, float] = field(default_factory=dict)
    cold_weights: dict[str, float] = field(default_factory=dict)
    validation_ndcg: float = 0.0
    validation_cold_ndcg: float = 0.0
    validation_users: int = 0
    seconds: float = 0.0
    scheme: str = "searched"  # "pooled": weights chosen offline over many small communities


class _NameOrdered:
    """A weight set kept in name order, the order a saved model's JSON gives it back in. Blends sum
    the components in the set's order, and float32 sums in another order differ in the last bits:
    enough to swap near-tied picks between a fitted engine and the same engine loaded."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, obj: object, owner: type | None = None) -> dict[str, float]:
        return getattr(obj, self.slot)

    def __set__(self, obj: object, value: Mapping[str, float]) -> None:
        setattr(obj, self.slot, dict(sorted(value.items())))


class Hybrid:
    """Weighted sum of per-user z-normalised component scores, with a cold-start weight set."""

    name = "hybrid"
    weights = _NameOrdered()
    cold_weights = _NameOrdered()

    def __init__(self, components: Mapping[str, Model], weights: Mapping[str, float] | None = None,
                 cold_weights: Mapping[str, float] | None = None, *, cold_threshold: int = 5,
                 anchor: str = "ease") -> None:
        self.components = dict(components)
        self.weights = dict(weights or {name: 1.0 for name in self.components})
        self.cold_weights = dict(cold_weights or self.weights)
        self.cold_threshold = cold_threshold
        self.anchor = anchor if anchor in self.components else next(iter(self.components))
        self.tuning: TuningReport | None = None
        self.n_items = 0

    # --- training -------------------------------------------------------------------------------
    def fit(self, data: Interactions, *, tune: bool = True, seed: int = 0, max_validation_users: int = 1200,
            progress: Callable[[str], None] | None = None, holdout: str = "all") -> Self:
        """Tune weights on a validation split of `data` (if `tune`), then fit everything on `data`.

        The graph component's weight is never searched (`components.SEARCHED_GRAPH_WEIGHTS`).
        `holdout` (see `components.TrainingPlan`): "all" carves validation rows from every user
        and refits on `data` after tuning; "sampled" carves them from the sampled validation users
        only and keeps the components fitted for tuning (one fit instead of two, for large data);
        "pooled" (small data with the graph) takes the weights `components.pooled_weights` gives
        instead of searching the server's own few validation rows, and otherwise acts as "all".
        """
        say = progress or (lambda message: log.info(message))
        pooled = pooled_weights(self.components) if tune and holdout == "pooled" else None
        if pooled is not None:
            self.weights, self.cold_weights = pooled
            self.tuning = TuningReport(dict(self.weights), dict(self.cold_weights), scheme="pooled")
            say(f"small data: pooled blend weights {self.weights}; cold {self.cold_weights}")
        elif tune:
            started = time.perf_counter()
            self.tuning = self._tune(data, seed=seed, max_users=max_validation_users, say=say,
                                     sampled=holdout == "sampled")
            self.tuning.seconds = time.perf_counter() - started
            self.weights = dict(self.tuning.weights)
            self.cold_weights = dict(self.tuning.cold_weights)
        if not (tune and holdout == "sampled" and self.tuning is not None and self.tuning.validation_users):
            for name, model in self.components.items():
                say(f"fitting {name}")
                model.fit(data)
        self.n_items = data.n_items
        return self

    def _tune(self, data: Interactions, *, seed: int, max_users: int, say: Callable[[str], None],
              sampled: bool = False) -> TuningReport:
        rng = np.random.default_rng(seed)
        if sampled:
            eligible = np.flatnonzero(np.diff(data.matrix.indptr) >= HOLDOUT_MIN_ITEMS)
            if len(eligible) > max_users:
                eligible = np.sort(rng.choice(eligible, max_users, replace=False))
            validation = holdout_split(data, seed=seed + VALIDATION_SEED_OFFSET, min_items=HOLDOUT_MIN_ITEMS, users=eligible)
        else:
            validation = holdout_split(data, seed=seed + VALIDATION_SEED_OFFSET, min_items=HOLDOUT_MIN_ITEMS)
        users = np.array(sorted(validation.test), dtype=np.int64)
        fixed, cold_fixed = fixed_weights(self.components)
        searched = {name: model for name, model in self.components.items() if name not in fixed}
        if len(users) == 0 or not searched:
            return TuningReport({**self.weights, **fixed}, {**self.cold_weights, **cold_fixed})
        if len(users) > max_users:
            users = np.sort(rng.choice(users, max_users, replace=False))
        relevant = [validation.test[int(u)] for u in users]
        rows = validation.train.matrix[users]
        cold_rows = cut_histories(rows, COLD_KEEP, seed=seed)
        for name, model in searched.items():
            say(f"tuning: fitting {name} on the validation split")
            model.fit(validation.train)
        # The graph (if any) is not searched: Last.fm's graph has seen these very rows
        # (`components.SEARCHED_GRAPH_WEIGHTS`), so it joins at its fixed weight afterwards.
        say("tuning: searching blend weights")
        anchor = self.anchor if self.anchor in searched else next(iter(searched))
        pool = CandidatePool.from_models(searched, rows, relevant)
        weights, score = coordinate_ascent(pool, anchor=anchor)
        cold_pool = CandidatePool.from_models(searched, cold_rows, relevant)
        cold_weights, cold_score = coordinate_ascent(cold_pool, anchor=anchor)
        weights, cold_weights = {**weights, **fixed}, {**cold_weights, **cold_fixed}
        say(f"tuned weights {weights} (validation NDCG@10 {score:.4f} before the fixed ones); "
            f"cold {cold_weights} ({cold_score:.4f})")
        return TuningReport(weights, cold_weights, score, cold_score, len(users))

    # --- scoring --------------------------------------------------------------------------------
    def weights_for(self, row_nnz: int) -> dict[str, float]:
        return self.cold_weights if row_nnz < self.cold_threshold else self.weights

    def component_scores(self, rows: sp.csr_matrix, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Normalised scores of each (weighted) component for the rows."""
        wanted = names or list(self.components)
        return {name: normalise_scores(self.components[name].score(rows)) for name in wanted}

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        """Blended scores for many rows; each row uses the warm or cold weight set by its length."""
        rows = sp.csr_matrix(rows)
        nnz = np.diff(rows.indptr)
        out = np.zeros((rows.shape[0], self.n_items), dtype=np.float32)
        for cold in (False, True):
            mask = (nnz < self.cold_threshold) if cold else (nnz >= self.cold_threshold)
            if not mask.any():
                continue
            weights = self.cold_weights if cold else self.weights
            subset = rows[np.flatnonzero(mask)]
            total = np.zeros((subset.shape[0], self.n_items), dtype=np.float32)
            for name, weight in weights.items():
                if weight and name in self.components:
                    total += np.float32(weight) * normalise_scores(self.components[name].score(subset))
            out[mask] = total
        return out

    # --- persistence ----------------------------------------------------------------------------
    def write_state(self, writer: ArtifactWriter, prefix: str = "") -> None:
        writer.meta["hybrid"] = {
            "weights": self.weights, "cold_weights": self.cold_weights, "cold_threshold": self.cold_threshold,
            "anchor": self.anchor, "n_items": self.n_items,
            "components": {name: {"model": m.name, "params": m.params()} for name, m in self.components.items()},
            "tuning": None if self.tuning is None else self.tuning.__dict__,
        }
        for name, model in self.components.items():
            model.write_state(writer, f"{prefix}{name}/")

    @classmethod
    def read_state(cls, reader: ArtifactReader, prefix: str = "") -> Hybrid:
        meta: dict[str, Any] = reader.meta["hybrid"]
        components: dict[str, Model] = {}
        for name, spec in meta["components"].items():
            model = MODEL_TYPES[spec["model"]](**spec["params"])
            model.n_items = int(meta["n_items"])
            model.read_state(reader, f"{prefix}{name}/")
            components[name] = model
        hybrid = cls(components, meta["weights"], meta["cold_weights"], cold_threshold=int(meta["cold_threshold"]),
                     anchor=meta["anchor"])
        hybrid.n_items = int(meta["n_items"])
        if meta.get("tuning"):
            hybrid.tuning = TuningReport(**meta["tuning"])
        return hybrid


@dataclass
class CandidatePool:
    """Per-user candidate items with every component's normalised score, for fast weight search.

    Blending over the whole catalogue for every trial weight is wasteful: a top-10 list only ever
    comes from items some component already ranks highly. So each user keeps the union of every
    component's top `depth` unseen items (padded to a rectangle), and trials blend those columns.
    """

    values: dict[str, np.ndarray]  # component -> users x candidates
    hits: np.ndarray  # users x candidates, 1.0 where the candidate is relevant
    valid: np.ndarray  # users x candidates, False for padding
    ideal: np.ndarray  # per-user IDCG@k

    @classmethod
    def from_models(cls, models: Mapping[str, Model], known: sp.csr_matrix, relevant: list[np.ndarray],
                    depth: int = 50, k: int = 10, chunk: int = 250, chunk_cells: int = 10_000_000) -> CandidatePool:
        """One chunked pass: each chunk of users is scored by every component once, its top-`depth`
        unseen items per component are united and their values kept, so memory stays at a few
        chunks of users x catalogue floats (`chunk_cells` bounds a chunk on large catalogues) instead
        of users x catalogue for each component (measured: a float16 variant holding everything
        raised the HetRec training peak from 0.7 to 1.5 GB). It replaced two passes (tops, then
        values), which scored every chunk twice; the pool it builds is the same, bit for bit."""
        known = sp.csr_matrix(known)
        n_users, n_items = known.shape
        depth = max(1, min(depth, n_items - 1))
        k = min(k, n_items - 1)
        chunk = max(1, min(chunk, chunk_cells // max(1, n_items)))
        uniques: list[np.ndarray] = []
        gathered: dict[str, list[np.ndarray]] = {name: [] for name in models}
        for start in range(0, n_users, chunk):
            part = known[start:start + chunk]
            r = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
            scores = {name: normalise_scores(model.score(part)) for name, model in models.items()}
            tops = []
            for values in scores.values():
                seen = values[r, part.indices]
                values[r, part.indices] = -np.inf
                tops.append(np.argpartition(-values, depth, axis=1)[:, :depth])
                values[r, part.indices] = seen
            stacked = np.concatenate(tops, axis=1)
            for row in range(part.shape[0]):
                unique = np.unique(stacked[row])
                uniques.append(unique)
                for name, values in scores.items():
                    gathered[name].append(values[row, unique])
            del scores
        width = max(len(u) for u in uniques)
        valid = np.zeros((n_users, width), dtype=bool)
        hits = np.zeros((n_users, width), dtype=np.float32)
        values_of = {name: np.zeros((n_users, width), dtype=np.float32) for name in models}
        for u, unique in enumerate(uniques):
            valid[u, : len(unique)] = True
            hits[u, : len(unique)] = np.isin(unique, relevant[u])
            for name in models:
                values_of[name][u, : len(unique)] = gathered[name][u]
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        ideal = np.array([discounts[: min(k, len(r))].sum() if len(r) else 1.0 for r in relevant])
        return cls(values_of, hits, valid, ideal)

    def ndcg(self, weights: Mapping[str, float], k: int = 10) -> float:
        total = np.zeros(self.hits.shape, dtype=np.float32)
        for name, value in weights.items():
            if value:
                total += np.float32(value) * self.values[name]
        total[~self.valid] = -np.inf
        k = min(k, total.shape[1] - 1)
        top = np.argpartition(-total, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(total, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        gains = np.take_along_axis(self.hits, top, axis=1)
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        return float(((gains * discounts).sum(axis=1) / self.ideal).mean())


@dataclass
class PoolSet:
    """Several users' pools searched as one (e.g. the validation users of many small communities):
    NDCG is the mean over all their users, so one weight set is chosen for all of them."""

    pools: list[CandidatePool]

    @property
    def values(self) -> dict[str, np.ndarray]:
        return self.pools[0].values

    def ndcg(self, weights: Mapping[str, float], k: int = 10) -> float:
        sizes = np.array([len(pool.ideal) for pool in self.pools], dtype=np.float64)
        scores = np.array([pool.ndcg(weights, k) for pool in self.pools])
        return float((scores * sizes).sum() / sizes.sum())


def coordinate_ascent(pool: CandidatePool | PoolSet, *, anchor: str, rounds: int = 3,
                      grid: tuple[float, ...] = WEIGHT_GRID) -> tuple[dict[str, float], float]:
    """Greedy per-component weight search with the anchor fixed at 1 (the scale is arbitrary)."""
    parts = pool.values
    if anchor not in parts:
        anchor = next(iter(parts))
    weights = {name: (1.0 if name == anchor else 0.0) for name in parts}
    best = pool.ndcg(weights)
    for _ in range(rounds):
        improved = False
        for name in parts:
            if name == anchor:
                continue
            for value in grid:
                if value == weights[name]:
                    continue
                trial = {**weights, name: value}
                score = pool.ndcg(trial)
                if score > best + 1e-5:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    return {k: float(v) for k, v in weights.items()}, best
