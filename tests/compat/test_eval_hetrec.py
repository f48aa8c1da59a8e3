"""Friend-pair AUC on HetRec (slow) and the CLI's JSON contract on a tiny fake dataset (fast)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from core.datasets import find_hetrec_dir


@pytest.mark.slow
def test_friend_auc_on_hetrec():
    data_dir = find_hetrec_dir()
    if data_dir is None:
        pytest.skip("HetRec dataset not found: set SONANCE_DATASET_DIR or place it in ../shared/data")
    from core.compat.evaluation import evaluate_friend_auc

    result = evaluate_friend_auc(data_dir, with_split=False)
    assert result.pairs == 1892 * 1891 // 2
    assert result.auc["sonance"] >= 0.855
    assert result.auc["sonance"] > max(result.auc["shared_over_own"], result.auc["cosine_log_plays"])


def _write(path, header, rows):
    path.write_text(header + "\n" + "\n".join("\t".join(map(str, r)) for r in rows) + "\n", encoding="utf-8")


def test_eval_cli_json_last_line(tmp_path):
    from bot.cli import _load_commands
    from bot.cli_app import app

    rows = []
    for u in range(1, 13):
        for a in range(5):
            rows.append((u, (u % 3) * 10 + (u + a) % 8, 10 + u * a))
    _write(tmp_path / "user_artists.dat", "userID\tartistID\tweight", rows)
    _write(tmp_path / "user_friends.dat", "userID\tfriendID", [(1, 4), (4, 1), (2, 5), (3, 6), (7, 10)])
    _write(tmp_path / "user_taggedartists.dat", "userID\tartistID\ttagID\tday\tmonth\tyear",
           [(1, a, a % 3, 1, 1, 2009) for a in range(30)])
    _write(tmp_path / "tags.dat", "tagID\ttagValue", [(0, "rock"), (1, "jazz"), (2, "pop")])
    _write(tmp_path / "artists.dat", "id\tname\turl\tpictureURL", [(a, f"A{a}", "u", "p") for a in range(30)])
    _load_commands()
    for extra in ([], ["--half-seed", "3"]):
        out = CliRunner().invoke(app, ["eval", "compat", "--data-dir", str(tmp_path), "--json", *extra])
        assert out.exit_code == 0, out.output
        last = json.loads(out.stdout.strip().splitlines()[-1])
        assert set(last["auc"]) == {"sonance", "shared_over_own", "cosine_log_plays"}
        assert last["pairs"] == 66 and last["friend_pairs"] == 4


def test_eval_cli_missing_data(tmp_path):
    from bot.cli import _load_commands
    from bot.cli_app import app

    _load_commands()
    out = CliRunner().invoke(app, ["eval", "compat", "--data-dir", str(tmp_path / "nope"), "--json"])
    assert out.exit_code == 1
