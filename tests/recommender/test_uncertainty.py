"""Evaluation figures with their luck of the draw: `metrics.group_interval` and the "uncertainty" key
of `sonance eval recommend` over several communities."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bot.commands.recommend_cmds  # noqa: F401 - registers the commands
from bot.cli_app import app
from core.recommender.metrics import group_interval
from tests.recommender.hetrec_world import write_hetrec


def test_runs_of_one_group_count_as_one_draw() -> None:
    # Two communities, three split seeds each: community means 0.2 and 0.4.
    values = [0.1, 0.2, 0.3, 0.4, 0.4, 0.4]
    interval = group_interval(values, [0, 0, 0, 1, 1, 1])
    assert interval["mean"] == pytest.approx(0.3) and interval["groups"] == 2
    # sd of (0.2, 0.4) is 0.1414; se = 0.1; t(0.975, 1 df) = 12.706.
    assert interval["se"] == pytest.approx(0.1, abs=1e-4)
    assert interval["ci95"] == pytest.approx([0.3 - 1.2706, 0.3 + 1.2706], abs=1e-3)
    # Counted as six independent draws the interval would be far narrower: that is the mistake avoided.
    naive = group_interval(values, list(range(6)))
    assert naive["ci95"][1] - naive["ci95"][0] < (interval["ci95"][1] - interval["ci95"][0]) / 4


def test_a_single_group_has_no_error_and_bad_input_is_refused() -> None:
    alone = group_interval([0.2, 0.3], ["a", "a"])
    assert alone["mean"] == pytest.approx(0.25) and alone["groups"] == 1 and math.isnan(alone["se"])
    with pytest.raises(ValueError):
        group_interval([0.1], [1, 2])
    with pytest.raises(ValueError):
        group_interval([], [])


def test_eval_over_communities_reports_intervals_and_the_hybrids_paired_gaps(tmp_path: Path) -> None:
    folder = write_hetrec(tmp_path / "hetrec")
    result = CliRunner().invoke(app, ["eval", "recommend", "--data-dir", str(folder), "--community-size", "10",
                                      "--community-seed", "1", "--community-seed", "2", "--split-seed", "0",
                                      "--split-seed", "1", "--cold-start", "0", "--no-tune", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    spread = report["uncertainty"]
    assert spread["unit"] == "community" and spread["groups"] == 2
    per_run = report["per_seed"]
    assert len(per_run) == 4
    for name in ("hybrid", "SimilarGraph", "MostPop"):
        interval = spread["ndcg@10"][name]
        assert interval["mean"] == pytest.approx(report[name]["ndcg@10"], abs=1e-4)
        assert interval["ci95"][0] <= interval["mean"] <= interval["ci95"][1]
    gap = spread["hybrid_minus"]["SimilarGraph"]
    expected = sum(run["hybrid"] - run["SimilarGraph"] for run in per_run.values()) / 4
    assert gap["mean"] == pytest.approx(expected, abs=1e-4)
    assert "hybrid" not in spread["hybrid_minus"]
