"""Re-deriving the shipped hyper-parameters on validation data only (`sonance eval tune`).

For each split seed the evaluation task is built exactly as `sonance eval recommend` builds it, and
then its TEST part is thrown away: a validation split is carved from the *training* rows of the
evaluated users (`VALIDATION_SEED_OFFSET + seed`), tag rows of both held-out sets are dropped, and
every grid point is fitted on the rest and scored on validation NDCG@k. Nothing here ever reads a
test item, so the figures it prints are the ones the docstrings in `components.py` and
`models/ease.py` may quote. Split seeds 0-2 are the selection seeds; the quality tests use seed 7.
For the small-community protocol `tune_blend` also searches the small plan's blend weights once over
all the tuning communities' validation users pooled (`components.POOLED_WEIGHTS`); with the base
corpus, `tune_graph_weight` chooses the graph's weight beside searched ones
(`components.SEARCHED_GRAPH_WEIGHTS`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.recommender.components import SMALL_PLAN, TrainingPlan, plan_for
from core.recommender.evaluation import EvalTask, evaluate_scorer
from core.recommender.hetrec import held_out_pairs, hetrec_tags
from core.recommender.hybrid import (
    COLD_KEEP,
    VALIDATION_SEED_OFFSET,
    WEIGHT_GRID,
    CandidatePool,
    Hybrid,
    PoolSet,
    coordinate_ascent,
)
from core.recommender.models import EASE, IALS, NMF, ItemKNN, Model, RP3beta, SimilarGraph
from core.recommender.splits import cut_histories, holdout_split
from core.recommender.tags import ItemTags

SELECTION_SEEDS = (0, 1, 2)
QUALITY_TEST_SEED = 7  # never used for selection
#: A grid point replaces the incumbent (the component's first point, the shipped default) only when
#: its mean validation NDCG is higher by more than this: smaller gaps are within seed-to-seed noise.
MIN_GAIN = 0.001


@dataclass(frozen=True)
class GridPoint:
    component: str
    params: dict[str, Any]
    build: Callable[[ItemTags | None, Any], Model]


def default_grid() -> list[GridPoint]:
    """The small grid the shipped defaults come from (the first point of each component is the default)."""
    points: list[GridPoint] = []
    for l2, tag_weight in ((100.0, 30.0), (50.0, 30.0), (200.0, 30.0), (100.0, 0.0), (100.0, 60.0)):
        points.append(GridPoint("ease", {"l2": l2, "tag_weight": tag_weight},
                                lambda tags, graph, l2=l2, tw=tag_weight: EASE(l2=l2, weighting="rank", min_users=3,
                                                                               tags=tags, tag_weight=tw)))
    for beta in (0.25, 0.5):
        points.append(GridPoint("rp3", {"alpha": 1.0, "beta": beta, "k": 200},
                                lambda tags, graph, beta=beta: RP3beta(alpha=1.0, beta=beta, k=200, weighting="rank")))
    for k in (200, 100):
        points.append(GridPoint("knn", {"k": k, "shrink": 10.0},
                                lambda tags, graph, k=k: ItemKNN(k=k, shrink=10.0, weighting="rank")))
    for factors in (16, 32):
        points.append(GridPoint("nmf", {"factors": factors},
                                lambda tags, graph, f=factors: NMF(factors=f, weighting="log1p", max_iter=50,
                                                                   min_users=3)))
    for factors, reg, alpha in ((64, 20.0, 5.0), (32, 20.0, 5.0), (64, 10.0, 5.0), (64, 20.0, 10.0)):
        points.append(GridPoint("als", {"factors": factors, "reg": reg, "alpha": alpha},
                                lambda tags, graph, f=factors, r=reg, a=alpha: IALS(factors=f, reg=r, alpha=a)))
    for weighting, two_hop, symmetric in (("rank", 0.0, True), ("rank", 0.0, False), ("log1p", 0.0, True),
                                          ("binary", 0.0, True), ("rank", 0.3, True)):
        points.append(GridPoint("graph", {"weighting": weighting, "two_hop": two_hop, "symmetric": symmetric},
                                lambda tags, graph, w=weighting, h=two_hop, s=symmetric: SimilarGraph(
                                    graph, weighting=w, two_hop=h, symmetric=s)))
    return points


def validation_task(task: EvalTask, seed: int, tagged: Path | None = None, tag_names: Path | None = None,
                    max_users: int | None = None) -> EvalTask:
    """Validation carved from `task.train` for the users `task` evaluates; `task.test` is never read
    beyond its keys (which users) and its pairs (whose tag rows must go)."""
    split = holdout_split(task.train, seed=VALIDATION_SEED_OFFSET + seed)
    users = sorted(u for u in task.test if u in split.test)
    if max_users is not None and len(users) > max_users:
        users = sorted(np.random.default_rng(seed).choice(users, max_users, replace=False).tolist())
    tags = task.tags
    if tagged is not None:
        exclude = (held_out_pairs(task.train.users, task.train.items, task.test)
                   | held_out_pairs(task.train.users, task.train.items, split.test))
        tags = hetrec_tags(task.train.items, tagged, tag_names, exclude=exclude)
    return EvalTask(split.train, {u: split.test[u] for u in users}, tags, task.graph)


def tune_grid(tasks: Iterable[tuple[int, EvalTask]], grid: list[GridPoint], *, k: int = 10,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Validation NDCG@k of every grid point per seed, and the best point per component (by mean)."""
    say = progress or (lambda _m: None)
    scores: dict[int, list[float]] = {i: [] for i in range(len(grid))}
    seeds: list[int] = []
    for seed, task in tasks:
        seeds.append(seed)
        for index, point in enumerate(grid):
            if point.component == "graph" and task.graph is None:
                continue
            model = point.build(task.tags, task.graph).fit(task.train)
            value = evaluate_scorer(model.score, task, k)[f"ndcg@{k}"]
            scores[index].append(value)
            say(f"seed {seed}: {point.component} {point.params} validation ndcg@{k} {value:.4f}")
    table = [{"component": p.component, "params": p.params, "per_seed": [round(v, 4) for v in scores[i]],
              "validation_ndcg": round(float(np.mean(scores[i])), 4)}
             for i, p in enumerate(grid) if scores[i]]
    best: dict[str, Mapping[str, Any]] = {}
    for row in table:
        current = best.get(row["component"])
        if current is None or row["validation_ndcg"] > current["validation_ndcg"] + MIN_GAIN:
            best[row["component"]] = row
    return {"seeds": seeds, "grid": table, "best": best}


def tune_blend(tasks: Iterable[tuple[int, EvalTask]], plan: TrainingPlan = SMALL_PLAN, *, anchor: str = "graph",
               k: int = 10, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """One blend weight set (and a cold-start one) for many small validation tasks pooled: the weights
    `components.POOLED_WEIGHTS` quotes. A single community's own 30 validation users are too few to
    search seven weights on; the pooled users of many communities are not.

    Each task's components (`plan`'s, with its graph) are fitted on its training rows and its
    validation users pooled; the search is `coordinate_ascent` with `anchor` fixed at 1. Tasks
    without a graph are skipped (the pooled weights only apply with one).
    """
    say = progress or (lambda _m: None)
    warm: list[CandidatePool] = []
    cold: list[CandidatePool] = []
    for seed, task in tasks:
        if task.graph is None:
            continue
        components = plan.components(task.tags, graph=task.graph)
        for model in components.values():
            model.fit(task.train)
        users = np.array(sorted(task.test), dtype=np.int64)
        relevant = [task.test[int(u)] for u in users]
        rows = task.train.matrix[users]
        warm.append(CandidatePool.from_models(components, rows, relevant, k=k))
        cold.append(CandidatePool.from_models(components, cut_histories(rows, COLD_KEEP, seed=seed), relevant, k=k))
        say(f"blend: pooled {len(users)} validation users of split seed {seed} ({len(warm)} tasks)")
    if not warm:
        return {}
    out: dict[str, Any] = {"tasks": len(warm), "users": int(sum(len(p.ideal) for p in warm))}
    for key, pools in (("warm", PoolSet(warm)), ("cold", PoolSet(cold))):
        weights, score = coordinate_ascent(pools, anchor=anchor)
        out[key] = {"weights": weights, "validation_ndcg": round(score, 4),
                    f"{anchor}_alone": round(pools.ndcg({anchor: 1.0}, k), 4)}
    return out


def tune_graph_weight(tasks: Iterable[tuple[int, EvalTask]], plan: TrainingPlan | None = None, *, k: int = 10,
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The graph's weight beside blend weights searched on the deployment's own rows (with a base
    corpus): `components.SEARCHED_GRAPH_WEIGHTS`.

    Each task's hybrid is fitted as `sonance train` fits it (`plan`, by default `plan_for` its size;
    the other weights searched on every listener's carved-out rows, the graph left out of that
    search; a plan with pooled weights searches nothing, so its tasks are skipped), then the
    graph's weight is chosen over `WEIGHT_GRID` on the evaluated users' validation rows of all tasks
    pooled, the other weights held at what each task's search found. The graph must come from
    outside those users (the community protocol's outsiders), or it would win every weight.

    The choice is the largest weight within `MIN_GAIN` of the best: in this protocol the base
    corpus and the graph come from the same outsiders, so the graph can add little the base does
    not know, while in production it also reaches artists newer than the base corpus (HetRec is
    2011 music). Among weights validation cannot tell apart, the one that keeps that reach wins.
    """
    say = progress or (lambda _m: None)
    pools: dict[str, list[CandidatePool]] = {"warm": [], "cold": []}
    for seed, task in tasks:
        if task.graph is None:
            continue
        chosen = plan or plan_for(task.train.n_users, task.train.n_items, task.train.matrix.nnz)
        if chosen.holdout == "pooled":
            continue
        hybrid = Hybrid(chosen.components(task.tags, graph=task.graph))
        hybrid.fit(task.train, seed=seed, progress=lambda _m: None, max_validation_users=chosen.max_validation_users,
                   holdout=chosen.holdout)
        users = np.array(sorted(task.test), dtype=np.int64)
        relevant = [task.test[int(u)] for u in users]
        rows = task.train.matrix[users]
        for key, known, weights in (("warm", rows, hybrid.weights),
                                    ("cold", cut_histories(rows, COLD_KEEP, seed=seed), hybrid.cold_weights)):
            pool = CandidatePool.from_models(hybrid.components, known, relevant, k=k)
            rest = sum((np.float32(w) * pool.values[n] for n, w in weights.items() if w and n != "graph"),
                       np.zeros_like(pool.hits))
            pools[key].append(CandidatePool({"rest": rest, "graph": pool.values["graph"]}, pool.hits, pool.valid,
                                            pool.ideal))
        say(f"graph weight: fitted the {chosen.name} plan of split seed {seed} ({len(pools['warm'])} tasks)")
    if not pools["warm"]:
        return {}
    out: dict[str, Any] = {"tasks": len(pools["warm"]), "users": int(sum(len(p.ideal) for p in pools["warm"]))}
    for key, chosen in pools.items():
        table = {w: round(PoolSet(chosen).ndcg({"rest": 1.0, "graph": w}, k), 4) for w in WEIGHT_GRID}
        best = max(table.values())
        weight = max(w for w in WEIGHT_GRID if table[w] >= best - MIN_GAIN)
        out[key] = {"weight": weight, "validation_ndcg": table[weight], "best_ndcg": best, "by_weight": table}
    return out
