"""The default set of hybrid components and their hyper-parameters (selected on validation data only),
and `plan_for`: the one place that scales that configuration to the size of the data.

Kept apart from the hybrid so a deployment (or the large-scale benchmark) can swap the menu
without touching blending code. Component names are stable: they appear in evidence `sources`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

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
from core.recommender.tags import ItemTags

#: SimilarGraph hyper-parameters of `DEFAULT_PLAN` (see `default_components`); `SMALL_PLAN` has its own.
GRAPH_PARAMS: dict[str, object] = {"weighting": "rank", "two_hop": 0.0, "symmetric": True}


#: At most this many listeners the data is "small" (a fresh community server): `plan_for` returns
#: `SMALL_PLAN`, whose blend weights are not searched on the server's own validation rows (30
#: members x ~8 rows is noise: on the tuning communities the per-server search scored 0.1987
#: against the graph alone's 0.2042) but were searched once, pooled over many communities.
SMALL_USERS = 100
#: Above this many (user, item) pairs the data is "large" and `plan_for` scales the configuration.
#: HetRec has 92k pairs, a server of 50,000 listeners with 20 artists each 1M; the synthetic
#: production sizes of `sonance bench train` have 2M (100k x 300k) and 20M (1M x 1M).
LARGE_PAIRS = 1_000_000
#: Large data: users x catalogue cells scored per validation pass of the blend-weight search
#: (each validation user is scored over the whole catalogue by every component).
VALIDATION_CELLS = 150_000_000
#: Large data: item x neighbour cells kept per sparse item-item model (RP3beta, ItemKNN).
NEIGHBOUR_CELLS = 100_000_000
#: Large data: NMF factorises at most this many of the most popular items, for this many iterations.
NMF_MAX_ITEMS, NMF_LARGE_ITER = 100_000, 25


@dataclass(frozen=True)
class TrainingPlan:
    """How to train at a given size: the components' hyper-parameters and how weights are tuned.

    `max_validation_users`: users whose held-out rows the blend weights are searched on.
    `holdout` "pooled" (small data): when the graph component is present, the blend weights are
    `POOLED_WEIGHTS` / `POOLED_COLD_WEIGHTS` instead of a search on the server's own few rows
    (otherwise as "all").
    `holdout`: "all" carves validation rows from every user with enough history (then every
    component is refitted on all the data: it is fitted twice); "sampled" carves them only from
    the validation users and fits every component once, on the data minus those few rows, which
    the served model then lacks (600 users x ~4 rows of millions).
    """

    name: str
    ease: dict[str, object] = field(default_factory=dict)
    rp3: dict[str, object] = field(default_factory=dict)
    knn: dict[str, object] = field(default_factory=dict)
    nmf: dict[str, object] = field(default_factory=dict)
    #: Implicit ALS ("als"); None leaves it out (large data: its per-row solves are a Python loop).
    als: dict[str, object] | None = None
    #: SimilarGraph ("graph", only when a graph is given).
    graph: dict[str, object] = field(default_factory=lambda: dict(GRAPH_PARAMS))
    max_validation_users: int = 1200
    holdout: str = "all"

    def components(self, tags: ItemTags | None = None, quality: np.ndarray | None = None,
                   links: sp.spmatrix | None = None, graph: sp.spmatrix | None = None) -> dict[str, Model]:
        """The hybrid's components under this plan (same names and order as `default_components`)."""
        components: dict[str, Model] = {
            "ease": EASE(tags=tags, **self.ease),  # type: ignore[arg-type]
            "rp3": RP3beta(**self.rp3),  # type: ignore[arg-type]
            "knn": ItemKNN(**self.knn),  # type: ignore[arg-type]
            "nmf": NMF(**self.nmf),  # type: ignore[arg-type]
            **({"als": IALS(**self.als)} if self.als is not None else {}),  # type: ignore[arg-type]
            "content": ContentTfidf(tags),
            "pop": MostPop(),
        }
        if quality is not None:
            components["quality"] = QualityPrior(quality)
        if links is not None:
            components["links"] = ItemLinks(links)
        if graph is not None:
            components["graph"] = SimilarGraph(graph, **self.graph)  # type: ignore[arg-type]
        return components

    def describe(self) -> dict[str, object]:
        """The plan as JSON (benchmarks print it; a model's metrics record it)."""
        return {"name": self.name, "ease": self.ease, "rp3": self.rp3, "knn": self.knn, "nmf": self.nmf,
                "als": self.als, "graph": self.graph, "max_validation_users": self.max_validation_users,
                "holdout": self.holdout}


#: Today's configuration (see `default_components` for where each figure comes from).
DEFAULT_PLAN = TrainingPlan(
    "default",
    ease={"l2": 100.0, "weighting": "rank", "min_users": 3, "tag_weight": 30.0},
    rp3={"alpha": 1.0, "beta": 0.25, "k": 200, "weighting": "rank"},
    knn={"k": 200, "shrink": 10.0, "weighting": "rank"},
    nmf={"factors": 16, "weighting": "log1p", "max_iter": 50, "min_users": 3},
    als={"factors": 64, "reg": 20.0, "alpha": 5.0, "iterations": 8, "weighting": "rank", "min_users": 3},
)


#: Small data (a fresh community server, <= `SMALL_USERS` listeners), from the community grid of
#: ``sonance eval tune --community-size 30`` (community seeds 100-131 x split seeds 0-2, 96 validation
#: tasks, 2,877 users; a point replaces the default only when better by > 0.001): EASE λ=200 0.1532
#: (λ=100 0.1517, λ=50 0.1488; no tags 0.1347), NMF with 32 factors 0.0944 (16: 0.0799), the graph on
#: log1p weights over G + Gᵀ 0.1991 (rank weights 0.1979, binary 0.1978, G alone 0.1869, + two hops
#: 0.1960); and pooled blend weights.
SMALL_PLAN = TrainingPlan("small", ease={**DEFAULT_PLAN.ease, "l2": 200.0}, rp3=DEFAULT_PLAN.rp3, knn=DEFAULT_PLAN.knn,
                          nmf={**DEFAULT_PLAN.nmf, "factors": 32}, graph={**GRAPH_PARAMS, "weighting": "log1p"},
                          holdout="pooled")

#: Blend weights of `SMALL_PLAN` with the graph, re-derived by ``sonance eval tune --community-size 30``
#: ("blend"): coordinate ascent with the graph fixed at 1, on the validation rows of community seeds
#: 100-131 x split seeds 0-2 pooled (2,877 users). Mean validation NDCG@10: warm 0.2045 (graph alone
#: 0.1990), cold start (3 items) 0.0933 (graph alone 0.0789). Why 32 communities and not 8: weights
#: searched on 8 of them scored 0.2039 on 16 others, weights searched on 16 scored 0.2045 (two folds;
#: graph alone 0.1990). The configuration shipped before (weights from communities 100-107, rank
#: graph weights, EASE λ=100) scored 0.2028 on all 32 (its graph alone 0.1983).
POOLED_WEIGHTS: dict[str, float] = {"ease": 0.03, "rp3": 0.03, "knn": 0.0, "nmf": 0.03, "content": 1.0, "pop": 0.0,
                                    "graph": 1.0}
POOLED_COLD_WEIGHTS: dict[str, float] = {"ease": 0.0, "rp3": 0.0, "knn": 0.0, "nmf": 0.0, "content": 1.5,
                                         "pop": 0.7, "graph": 1.0}


def pooled_weights(names: Iterable[str]) -> tuple[dict[str, float], dict[str, float]] | None:
    """`POOLED_WEIGHTS` and `POOLED_COLD_WEIGHTS` for a hybrid with these components, or None when
    they do not apply (no graph component: the pooled search always had one)."""
    names = list(names)
    if "graph" not in names:
        return None
    return ({n: POOLED_WEIGHTS.get(n, 0.0) for n in names}, {n: POOLED_COLD_WEIGHTS.get(n, 0.0) for n in names})


#: The graph's blend weight (warm, cold start) wherever the other weights are *searched* on the
#: deployment's own validation rows (`DEFAULT_PLAN` with a base corpus, the large plan). Last.fm's
#: graph is computed from everyone's scrobbles, those rows included, so a search there overrates it:
#: with the base corpus it picked 12 (the top of the grid) and validation NDCG@10 fell to 0.2065,
#: against 0.2159 for weights searched on the server's 30 members only. So the graph is left out of
#: the search, which then uses every listener's rows, and its weight is this constant, re-derived by
#: ``sonance eval tune --community-size 30 --base --no-grid`` ("graph_weight"): base communities
#: 100-131 x split seeds 0-2 (2,877 members), the graph built from outsiders only, the other weights
#: searched as `sonance train` searches them; the largest weight within 0.001 of the best
#: (`tuning.tune_graph_weight` says why). Warm: 0.2204 at 1 (best 0.2212 at 0, 0.2210 at 0.2,
#: 0.2174 at 2.5, 0.2081 at 12); cold start: 0.0952 at 7 (best 0.0959 at 4, 0.0951 at 0).
#: (On communities 100-107 alone it had been warm 0.2, cold 4.)
SEARCHED_GRAPH_WEIGHTS: dict[str, float] = {"warm": 1.0, "cold": 7.0}


def fixed_weights(names: Iterable[str]) -> tuple[dict[str, float], dict[str, float]]:
    """The (warm, cold) weights a searched blend does not search: the graph's, when it has one."""
    if "graph" not in set(names):
        return {}, {}
    return {"graph": SEARCHED_GRAPH_WEIGHTS["warm"]}, {"graph": SEARCHED_GRAPH_WEIGHTS["cold"]}


def plan_for(n_users: int, n_items: int, nnz: int) -> TrainingPlan:
    """The training configuration for data of this size; `sonance train` and `sonance bench train`
    both call it, so the benchmark measures what production builds.

    Up to `SMALL_USERS` listeners (a fresh community server): `SMALL_PLAN`. Up to `LARGE_PAIRS`
    pairs (HetRec, a server with a base corpus): `DEFAULT_PLAN`, exactly. Above:
    * EASE keeps its 12,000-item cap (its dense inverse is 12,000² floats whatever the size) but
      solves in float32: half the memory and time of float64, and λ=100 keeps the Gram matrix
      well conditioned;
    * RP3beta and ItemKNN keep at most `NEIGHBOUR_CELLS` neighbours in all (k=200 up to 500k items,
      k=100 at 1M): their similarity matrices stay ~1 GB each;
    * NMF factorises the `NMF_MAX_ITEMS` most popular items for `NMF_LARGE_ITER` iterations (the
      long tail is reached by the neighbourhood and content components anyway);
    * blend weights are searched on validation rows of `VALIDATION_CELLS` / items users (300 to
      1,200: 600 at 250k items, 300 at 1M) held out from those users only, and every component is
      fitted once (`TrainingPlan.holdout`). The search scores every validation user over the whole
      catalogue with every component, twice (warm and cold-start rows): at 100k x 300k it was
      115 s of the 205 s this configuration replaced. At 100k x 300k that took training from 205 s to the figure
      `sonance bench train` reports (see core/recommender/README.md).
    """
    if n_users <= SMALL_USERS:
        return SMALL_PLAN
    if nnz <= LARGE_PAIRS:
        return DEFAULT_PLAN
    k = int(max(50, min(200, NEIGHBOUR_CELLS // max(1, n_items))))
    return TrainingPlan(
        "large",
        ease={**DEFAULT_PLAN.ease, "precision": "float32"},
        rp3={**DEFAULT_PLAN.rp3, "k": k},
        knn={**DEFAULT_PLAN.knn, "k": k},
        nmf={**DEFAULT_PLAN.nmf, "max_iter": NMF_LARGE_ITER, "max_items": NMF_MAX_ITEMS},
        max_validation_users=int(max(300, min(1200, VALIDATION_CELLS // max(1, n_items)))),
        holdout="sampled",
    )


def default_components(tags: ItemTags | None = None, quality: np.ndarray | None = None,
                       links: sp.spmatrix | None = None, graph: sp.spmatrix | None = None) -> dict[str, Model]:
    """EASE(+tags), RP3beta, ItemKNN, NMF, implicit ALS, content TF-IDF, popularity; AOTY quality/links and Last.fm's
    similar-artist graph when given.

    Hyper-parameters are re-derived by ``sonance eval tune --data-dir DIR`` (`core.recommender.tuning`):
    validation carved from the training rows of HetRec split seeds 0-2, test rows discarded, tag rows
    of held-out pairs dropped; mean validation NDCG@10 (a point must beat the default by > 0.001):
    EASE λ=100 on per-user rank weights with tags at weight 30: 0.1843 (λ=50 0.1792, λ=200 0.1848,
    no tags 0.1783, tags x60 0.1792); RP3beta α=1 β=0.25 k=200: 0.1697 (β=0.5 0.1033); ItemKNN
    k=200 shrink=10: 0.1710 (k=100 0.1681); NMF 16 factors on log1p: 0.1299 (32 factors 0.1154).
    Implicit ALS ("als", 64 factors, λ=20, α=5 on rank weights) alone 0.1778; the hybrid with it
    0.1942 against 0.1901 without (600 validation users per seed; in the hybrid, 32 factors 0.1945,
    λ=10 0.1938, α=10 0.1933).
    The graph (``sonance eval tune --community-size 30``, then community seeds 100-107 x split seeds
    0-2): rank weighting over G + Gᵀ 0.2042 (G alone 0.1917, log1p 0.2040, binary 0.2013, + two hops
    0.2009). Over 100-131 log1p edged ahead (0.1991 against 0.1979) and `SMALL_PLAN` took it; this
    plan keeps rank weights, which `SEARCHED_GRAPH_WEIGHTS` was derived with.
    """
    return DEFAULT_PLAN.components(tags, quality, links, graph)
