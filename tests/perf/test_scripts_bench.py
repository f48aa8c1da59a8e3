"""`scripts/bench` itself: it runs where you stand, imports `tests` from this checkout only, and
offers bot, sync and soak with the options and one-line JSON they had as `sonance bench …`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "PYTHON"))}
    return subprocess.run([str(ROOT / "scripts" / "bench"), *args], capture_output=True, text=True,
                          env={**env, "COLUMNS": "200"}, cwd=cwd, timeout=300, check=False)


def decoy(tmp_path: Path) -> Path:
    """A directory with a `tests` package of its own, which must not shadow the checkout's."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("raise SystemExit('the decoy tests package was imported')\n")
    return tmp_path


def test_lists_the_three_tools_from_any_directory(tmp_path: Path) -> None:
    result = bench(decoy(tmp_path), "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: scripts/bench" in result.stdout
    for name in ("bot", "sync", "soak"):
        assert f"│ {name} " in result.stdout


def test_options_are_those_of_the_former_sonance_bench_commands(tmp_path: Path) -> None:
    expected = {
        "bot": ("--path", "--database-url", "--members", "--interactions", "--concurrency", "--warmup",
                "--mixed", "--no-mixed", "--tune", "--profile", "--in-process", "--json"),
        "sync": ("--scrobbles", "--postgres-url", "--sqlite-only", "--json", "--limited-scrobbles"),
        "soak": ("--minutes", "--rate", "--max-in-flight", "--interval", "--warmup", "--members", "--sync-every",
                 "--database-url", "--json"),
    }
    for command, options in expected.items():
        result = bench(tmp_path, command, "--help")
        assert result.returncode == 0, result.stderr
        missing = [o for o in options if o not in result.stdout]
        assert not missing, (command, missing)


def test_sync_runs_end_to_end_and_prints_its_json(tmp_path: Path) -> None:
    result = bench(decoy(tmp_path), "sync", "--sqlite-only", "--scrobbles", "400", "--limited-scrobbles", "0", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["sqlite"]["listens"] == 400


def test_a_usage_error_is_one_clear_message(tmp_path: Path) -> None:
    result = bench(tmp_path, "soak", "--minutes", "1", "--warmup", "60")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: --warmup must be shorter than the run"


@pytest.mark.slow
def test_a_short_soak_runs_end_to_end_with_its_sync_rounds(tmp_path: Path) -> None:
    """The soak drives the real bot and syncs through the real LastfmSync: a refactor that breaks any
    of its steps (as the typed Services fields once did to the sync round) fails here, not in a
    30-minute run."""
    dataset = os.environ.get("SONANCE_DATASET_DIR")
    if not dataset or not (Path(dataset) / "user_artists.dat").is_file():
        pytest.skip("the soak seeds its world from HetRec: set SONANCE_DATASET_DIR")
    result = bench(tmp_path, "soak", "--minutes", "0.75", "--warmup", "15", "--sync-every", "10",
                   "--rate", "3", "--json")
    # exit 1 is also a memory verdict, which 45 s cannot give fairly: the report's own fields decide
    assert result.returncode in (0, 1) and result.stdout.strip(), result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["interactions"] > 0 and report["errors"] == 0, report["error_samples"]
    assert report["syncs"]["rounds"] >= 2 and report["syncs"]["errors"] == 0, report["syncs"]
    assert report["syncs"]["inserted"] > 0
    assert report["log_errors"] == 0 and report["fake_discord"]["internal_errors"] == 0
