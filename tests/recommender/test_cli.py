"""`sonance eval recommend` on tiny files: the last stdout line is the JSON report."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import bot.commands.recommend_cmds  # noqa: F401 - registers the commands
from bot.cli_app import app
from tests.recommender.conftest import FANS, scene_items


def _write(path, rows) -> None:
    path.write_text("userID\tartistID\tweight\n" + "".join(f"{u}\t{a}\t{w}\n" for u, a, w in rows))


def test_eval_recommend_from_files_prints_json_last(tmp_path) -> None:
    train, test = [], []
    user = 1
    for scene, fans in enumerate(FANS):
        for _ in range(fans):
            items = scene_items(scene)
            train += [(user, a, 10 + a) for a in items[:-1]]
            test.append((user, items[-1], 5))
            user += 1
    _write(tmp_path / "train.tsv", train)
    _write(tmp_path / "test.tsv", test)
    # Tagged by a listener outside TRAIN/TEST: tag rows of test pairs would be dropped as leaks.
    (tmp_path / "tagged.dat").write_text("userID\tartistID\ttagID\n" + "".join(
        f"999\t{a}\t{(a - 100) // 5}\n" for s in range(3) for a in scene_items(s)))
    result = CliRunner().invoke(app, ["eval", "recommend", "--train", str(tmp_path / "train.tsv"),
                                      "--test", str(tmp_path / "test.tsv"), "--tags", str(tmp_path / "tagged.dat"),
                                      "--k", "3", "--json", "--no-tune"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) >= {"hybrid", "MostPop", "ItemKNN", "NMF"}
    assert {"ndcg@3", "recall@3", "hr@3", "coverage", "mean_popularity", "train_seconds",
            "peak_rss_mb"} <= set(report["hybrid"])
    assert report["hybrid"]["ndcg@3"] > report["MostPop"]["ndcg@3"]


def test_eval_recommend_needs_both_files(tmp_path) -> None:
    result = CliRunner().invoke(app, ["eval", "recommend", "--train", str(tmp_path / "x.tsv")])
    assert result.exit_code == 1
