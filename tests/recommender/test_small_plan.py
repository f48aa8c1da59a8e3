"""A fresh community server (few listeners): the small plan, its pooled blend weights, and how
`sonance eval tune` re-derives them over many communities at once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.recommender.community import community_task
from core.recommender.components import (
    DEFAULT_PLAN,
    GRAPH_PARAMS,
    POOLED_COLD_WEIGHTS,
    POOLED_WEIGHTS,
    SMALL_PLAN,
    SMALL_USERS,
    plan_for,
)
from core.recommender.evaluation import evaluate_scorer, run_evaluation
from core.recommender.hybrid import WEIGHT_GRID, CandidatePool, Hybrid, PoolSet, coordinate_ascent
from core.recommender.models import SimilarGraph
from core.recommender.tuning import MIN_GAIN, tune_blend, tune_graph_weight, validation_task
from tests.recommender.conftest import build_world
from tests.recommender.hetrec_world import write_hetrec


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hetrec(tmp_path_factory.mktemp("hetrec"))


def test_few_listeners_get_the_small_plan_and_more_get_todays() -> None:
    assert plan_for(30, 17_632, 960) is SMALL_PLAN
    assert plan_for(SMALL_USERS, 17_632, 5_000) is SMALL_PLAN
    assert plan_for(SMALL_USERS + 1, 17_632, 5_000) is DEFAULT_PLAN
    assert plan_for(1_892, 17_632, 92_834) is DEFAULT_PLAN  # a community with the base corpus
    assert SMALL_PLAN.holdout == "pooled" and SMALL_PLAN.nmf["factors"] == 32
    assert set(POOLED_WEIGHTS) == set(POOLED_COLD_WEIGHTS) == set(SMALL_PLAN.components(graph=np.eye(2)))
    assert POOLED_WEIGHTS["graph"] == POOLED_COLD_WEIGHTS["graph"] == 1.0  # the anchor of the pooled search


def test_each_plan_builds_its_graph_component_with_its_own_parameters() -> None:
    """The small plan's graph weighting came from the community grid; the default plan keeps its own."""
    for plan in (SMALL_PLAN, DEFAULT_PLAN):
        graph = plan.components(graph=np.eye(3))["graph"]
        assert {key: graph.params()[key] for key in plan.graph} == plan.graph
    assert DEFAULT_PLAN.graph == GRAPH_PARAMS and SMALL_PLAN.describe()["graph"] == SMALL_PLAN.graph


def test_with_the_graph_the_small_plan_takes_the_pooled_weights_instead_of_searching() -> None:
    data, tags, links = build_world()
    said: list[str] = []
    hybrid = Hybrid(SMALL_PLAN.components(tags, graph=links)).fit(data, holdout="pooled", progress=said.append)
    assert hybrid.weights == POOLED_WEIGHTS and hybrid.cold_weights == POOLED_COLD_WEIGHTS
    assert hybrid.tuning is not None and hybrid.tuning.scheme == "pooled" and hybrid.tuning.validation_users == 0
    assert not [m for m in said if m.startswith("tuning: ")]  # nothing fitted on a validation split
    assert len([m for m in said if m.startswith("fitting ")]) == len(hybrid.components)
    # Weights a caller passes with tune=False (a retrain reusing the last ones) are kept.
    kept = Hybrid(SMALL_PLAN.components(tags, graph=links), {"graph": 1.0}, {"pop": 1.0})
    kept.fit(data, tune=False, holdout="pooled", progress=said.append)
    assert (kept.weights, kept.cold_weights) == ({"graph": 1.0}, {"pop": 1.0})


def test_without_the_graph_the_small_plan_searches_as_before() -> None:
    data, tags, _links = build_world()
    said: list[str] = []
    hybrid = Hybrid(SMALL_PLAN.components(tags)).fit(data, holdout="pooled", progress=said.append)
    assert hybrid.tuning is not None and hybrid.tuning.scheme == "searched" and hybrid.tuning.validation_users > 0
    assert [m for m in said if m.startswith("tuning: fitting ")]


def test_a_pool_set_is_the_user_weighted_mean_of_its_pools() -> None:
    data, tags, links = build_world()
    models = SMALL_PLAN.components(tags, graph=links)
    for model in models.values():
        model.fit(data)
    rows = data.matrix[:12]
    relevant = [np.array([int(rows[u].indices[0])]) for u in range(12)]  # known items: trivially ranked low
    big = CandidatePool.from_models(models, rows, relevant)
    small = CandidatePool.from_models(models, rows[:3], relevant[:3])
    weights = {"graph": 1.0, "pop": 0.4}
    expected = (12 * big.ndcg(weights) + 3 * small.ndcg(weights)) / 15
    assert PoolSet([big, small]).ndcg(weights) == pytest.approx(expected)
    assert coordinate_ascent(PoolSet([big]), anchor="graph") == coordinate_ascent(big, anchor="graph")


def test_tune_blend_pools_the_validation_users_of_every_community(folder: Path) -> None:
    tagged, names = folder / "user_taggedartists.dat", folder / "tags.dat"
    tasks = [(s, validation_task(community_task(folder, size=10, community_seed=c, split_seed=s), s, tagged, names))
             for c in (1, 2) for s in (0, 1)]
    result = tune_blend(tasks)
    assert result["tasks"] == 4 and result["users"] == sum(len(t.test) for _s, t in tasks)
    for key in ("warm", "cold"):
        assert result[key]["weights"]["graph"] == 1.0
        assert set(result[key]["weights"]) == set(POOLED_WEIGHTS)
        assert result[key]["validation_ndcg"] >= result[key]["graph_alone"] - 1e-4  # the search starts there
    # Tasks without a graph are not pooled (the pooled weights only apply with one).
    assert tune_blend([(s, t.__class__(t.train, t.test, t.tags, None)) for s, t in tasks]) == {}


def test_the_community_evaluation_uses_the_small_plan_and_the_graph_peer_uses_the_graph_components_parameters(
        folder: Path) -> None:
    task = community_task(folder, size=10, community_seed=2, split_seed=0)
    results = run_evaluation(task, cold_start=0)
    assert results["hybrid"]["plan"] == "small" and results["hybrid"]["weights"] == POOLED_WEIGHTS
    peer = SimilarGraph(task.graph, **SMALL_PLAN.graph).fit(task.train)  # type: ignore[arg-type]
    assert results["SimilarGraph"]["ndcg@10"] == pytest.approx(evaluate_scorer(peer.score, task, 10)["ndcg@10"])


def test_tune_graph_weight_chooses_over_the_grid_beside_searched_weights(folder: Path) -> None:
    """With the base corpus the other weights are searched as `sonance train` searches them and the
    graph's weight is chosen on the members' pooled validation rows (`SEARCHED_GRAPH_WEIGHTS`)."""
    tagged, names = folder / "user_taggedartists.dat", folder / "tags.dat"
    tasks = [(s, validation_task(community_task(folder, size=10, community_seed=c, split_seed=s, base=True),
                                 s, tagged, names)) for c in (1, 2) for s in (0,)]
    result = tune_graph_weight(tasks, DEFAULT_PLAN)
    assert result["tasks"] == 2 and result["users"] == sum(len(t.test) for _s, t in tasks)
    for key in ("warm", "cold"):
        table = result[key]["by_weight"]
        assert list(table) == list(WEIGHT_GRID)
        weight, best = result[key]["weight"], result[key]["best_ndcg"]
        assert best == max(table.values()) and result[key]["validation_ndcg"] == table[weight] >= best - MIN_GAIN
        assert all(table[w] < best - MIN_GAIN for w in WEIGHT_GRID if w > weight)  # the largest that close
    # 80 listeners: plan_for gives the small plan, whose pooled weights search nothing, so nothing to choose
    assert tune_graph_weight(tasks) == {}


def test_eval_tune_no_grid_gives_only_the_community_weights(folder: Path) -> None:
    from typer.testing import CliRunner

    import bot.commands.recommend_cmds  # noqa: F401 - registers the commands
    from bot.cli_app import app

    common = ["eval", "tune", "--data-dir", str(folder), "--community-size", "10", "--community-seed", "1",
              "--split-seed", "0", "--no-grid", "--json"]
    fresh = CliRunner().invoke(app, common)
    assert fresh.exit_code == 0, fresh.output
    report = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert set(report) == {"blend"} and report["blend"]["warm"]["weights"]["graph"] == 1.0
    based = CliRunner().invoke(app, [*common, "--base"])
    assert based.exit_code == 0, based.output
    assert set(json.loads(based.stdout.strip().splitlines()[-1])) == {"graph_weight"}
    refused = CliRunner().invoke(app, ["eval", "tune", "--data-dir", str(folder), "--no-grid"])
    assert refused.exit_code == 1 and "--no-grid" in refused.output
