"""Offline evaluation: train on a training matrix, rank every unseen item for each test user.

Protocol (the one `sonance eval recommend` reports): binary relevance; candidates are all catalogue
items absent from the user's training rows; metrics from `core.recommender.metrics`. Training time
is wall-clock on this machine; peak RSS is the process high-water mark (``ru_maxrss``) after the
model's training, so it includes the loaded dataset and is monotone across models in one run.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from core.recommender.components import TrainingPlan, plan_for
from core.recommender.hybrid import Hybrid
from core.recommender.interactions import Interactions
from core.recommender.metrics import summarise
from core.recommender.models import NMF, ItemKNN, MostPop, SimilarGraph
from core.recommender.splits import cut_histories
from core.recommender.tags import ItemTags

Scorer = Callable[[sp.csr_matrix], np.ndarray]


@dataclass(frozen=True)
class EvalTask:
    """Training data plus held-out items per user index (indices into `train.items`; -1 = unknown item)."""

    train: Interactions
    test: Mapping[int, np.ndarray]
    tags: ItemTags | None = None
    graph: sp.csr_matrix | None = None  # similar-artist graph (items x items match), e.g. Last.fm's


def peak_rss_mb() -> float:
    """Process high-water mark in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def top_k_lists(score: Scorer, rows: sp.csr_matrix, k: int, batch: int = 256) -> list[np.ndarray]:
    """Top-k item indices per row, the row's known items excluded; batched to bound memory."""
    rows = sp.csr_matrix(rows)
    out: list[np.ndarray] = []
    for start in range(0, rows.shape[0], batch):
        chunk = rows[start:start + batch]
        scores = np.asarray(score(chunk), dtype=np.float32).copy()
        r = np.repeat(np.arange(chunk.shape[0]), np.diff(chunk.indptr))
        scores[r, chunk.indices] = -np.inf
        kk = min(k, scores.shape[1] - 1)
        top = np.argpartition(-scores, kk, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        for i in range(chunk.shape[0]):
            finite = np.isfinite(scores[i, top[i]])
            out.append(top[i][finite])
    return out


def evaluate_scorer(score: Scorer, task: EvalTask, k: int, rows: sp.csr_matrix | None = None) -> dict[str, float]:
    users = np.array(sorted(task.test), dtype=np.int64)
    rows = task.train.matrix[users] if rows is None else rows
    lists = top_k_lists(score, rows, k)
    share = task.train.item_user_counts() / max(1, task.train.n_users)
    relevant = [task.test[int(u)] for u in users]
    return summarise(lists, relevant, k, task.train.n_items, share)


def run_evaluation(task: EvalTask, *, k: int = 10, seed: int = 0, cold_start: int | None = 3,
                   tune: bool = True, progress: Callable[[str], None] | None = None) -> dict[str, dict[str, float]]:
    """Hybrid vs MostPop, ItemKNN and plain NMF (and the similar-artist graph alone, when the task
    has one); optional cold-start NDCG. The hybrid is configured as `sonance train` would configure
    it for data of this size (`components.plan_for`): a 30-member community gets the small plan."""
    say = progress or (lambda _m: None)
    results: dict[str, dict[str, float]] = {}
    trained: dict[str, Scorer] = {}
    plan = plan_for(task.train.n_users, task.train.n_items, task.train.matrix.nnz)
    hybrid = Hybrid(plan.components(task.tags, graph=task.graph))
    candidates: list[tuple[str, Callable[[], Scorer]]] = [
        ("hybrid", lambda: _fit_hybrid(hybrid, plan, task, seed, tune, say)),
        ("MostPop", lambda: MostPop().fit(task.train).score),
        ("ItemKNN", lambda: ItemKNN().fit(task.train).score),
        ("NMF", lambda: NMF().fit(task.train).score),
    ]
    if task.graph is not None:
        # The peer ranks by the graph alone, as the hybrid's graph component does (the plan's validated
        # parameters, e.g. log1p history weights over G + Gᵀ for a small server), so "hybrid above the
        # peer" compares like with like.
        candidates.append(("SimilarGraph",
                           lambda: SimilarGraph(task.graph, **plan.graph).fit(task.train).score))  # type: ignore[arg-type]
    for name, fit in candidates:
        say(f"training {name}")
        started = time.perf_counter()
        scorer = fit()
        seconds = time.perf_counter() - started
        say(f"evaluating {name}")
        metrics = evaluate_scorer(scorer, task, k)
        metrics["train_seconds"] = round(seconds, 3)
        metrics["peak_rss_mb"] = round(peak_rss_mb(), 1)
        if name == "hybrid":
            metrics["plan"] = plan.name  # type: ignore[assignment]
        if name == "hybrid" and hybrid.tuning is not None:
            metrics["tuning_seconds"] = round(hybrid.tuning.seconds, 3)
            metrics["validation_ndcg"] = round(hybrid.tuning.validation_ndcg, 4)
            metrics["weights"] = hybrid.weights  # type: ignore[assignment]
        results[name] = metrics
        trained[name] = scorer
    if cold_start:
        users = np.array(sorted(u for u in task.test if task.train.matrix[u].nnz >= cold_start), dtype=np.int64)
        rows = cut_histories(task.train.matrix[users], cold_start, seed=seed)
        cold_task = EvalTask(task.train, {int(u): task.test[int(u)] for u in users}, task.tags)
        key = f"cold_start@{cold_start}"
        results[key] = {name: round(evaluate_scorer(scorer, cold_task, k, rows=rows)[f"ndcg@{k}"], 4)
                        for name, scorer in trained.items()}
        results[key]["users"] = len(users)
    return results


def _fit_hybrid(hybrid: Hybrid, plan: TrainingPlan, task: EvalTask, seed: int, tune: bool,
                say: Callable[[str], None]) -> Scorer:
    # As `sonance train` fits it: weights searched on every listener's validation rows, base corpus
    # included (the graph, built from the base users' complete rows, is not searched: see
    # `components.SEARCHED_GRAPH_WEIGHTS`).
    hybrid.fit(task.train, tune=tune, seed=seed, progress=say, max_validation_users=plan.max_validation_users,
               holdout=plan.holdout)
    return hybrid.score
