"""`scripts/bench` itself: it runs where you stand, imports `tests` from this checkout only, and
offers bot, sync and soak with the options and one-line JSON they had as `sonance bench …`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

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
