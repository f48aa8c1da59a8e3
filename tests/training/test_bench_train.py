"""`sonance bench train` and the serving benchmark, at a size a test can afford."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

import bot.commands.recommend_cmds  # noqa: F401 - registers the commands
from bot.cli_app import app
from core.recommender.bench import StageClock, synthetic_plays, training_stage
from core.recommender.serving_bench import service_benchmark


def test_synthetic_plays_are_music_shaped() -> None:
    plays = synthetic_plays(2_000, 3_000, seed=3)
    assert plays.user_ids.min() == 1 and plays.item_ids.min() >= 1 and plays.item_ids.max() <= 3_000
    per_item = np.bincount(plays.item_ids, minlength=3_001)[1:]
    top = np.sort(per_item)[::-1]
    assert top[:30].sum() > 0.1 * per_item.sum()  # a few artists everyone knows
    assert (per_item <= 2).sum() > 0.1 * 3_000  # and a long tail
    lengths = np.bincount(plays.user_ids)[1:]
    assert lengths.max() > 5 * np.median(lengths)  # log-normal histories: a few heavy listeners
    tags = plays.tags["lastfm"]
    assert len(tags) == 3_000 and all(3 <= len(t) <= 7 for t in tags.values())
    # Genres: a listener's artists share genre tags far more often than random artists do.
    genre = {i: next(t for t in tags[i] if t.startswith("genre")).split("-")[0] for i in tags}
    first = plays.user_ids == 1
    shared = max(np.unique([genre[int(i)] for i in plays.item_ids[first]], return_counts=True)[1])
    assert shared / first.sum() > 1 / 20


def test_stage_keys_are_stable() -> None:
    assert training_stage("preparing interactions") == "prepare"
    assert training_stage("building tags") == "tags"
    assert training_stage("tuning: fitting ease on the validation split") == "tune_fit_ease"
    assert training_stage("tuning: searching blend weights") == "tune_search"
    assert training_stage("fitting knn") == "fit_knn"
    assert training_stage("saving artifact artist-1") == "save"
    assert training_stage("1,000 listeners x 2,000 artists, 9,000 pairs") is None
    clock = StageClock()
    clock("fitting ease")
    clock("a remark")
    clock("saving artifact x")
    clock.stop()
    assert list(clock.stages) == ["fit_ease", "save"]
    assert all(v["wall_s"] >= 0 and v["peak_rss_mb"] > 0 for v in clock.stages.values())


def test_bench_train_prints_stages_as_json() -> None:
    result = CliRunner().invoke(app, ["bench", "train", "--users", "600", "--items", "900", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["users"] == 600 and report["items"] == 900 and report["pairs"] > 0
    assert report["plan"]["name"] == "default" and report["refitted"] is True
    stages = report["stages"]
    for stage in ("generate", "prepare", "tags", "tune_search", "save", *(
            f"{p}_{c}" for p in ("tune_fit", "fit") for c in ("ease", "rp3", "knn", "nmf", "content", "pop"))):
        assert set(stages[stage]) == {"wall_s", "cpu_s", "peak_rss_mb"}, stage
    assert report["train_wall_s"] >= report["fit_wall_s"] > 0
    assert report["train_peak_rss_mb"] > 0 and report["process_peak_rss_mb"] >= report["train_peak_rss_mb"]
    assert 0 <= report["validation_ndcg@10"] <= 1 and report["validation_users"] > 0


async def test_service_benchmark_times_whole_requests() -> None:
    engine, plays, figures = await service_benchmark(400, 700, requests=12)
    service = figures["service"]
    assert service["users"] == 12 and 0 < service["p50_ms"] <= service["p95_ms"] <= service["max_ms"]
    assert service["worker"] == "ready"
    # The model was trained on database row ids: every item it knows is a stored artist's.
    assert set(engine.items.ids.tolist()) <= set(plays.names)
    assert figures["training"]["plan"]["name"] == "default"
