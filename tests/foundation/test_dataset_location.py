"""Where the CLI finds HetRec: an explicit folder is the only one looked at, a SONANCE_DATASET_DIR
written in .env counts like an exported one, and an earlier download is found again.

Before: `find_hetrec_dir(path)` fell back to $SONANCE_DATASET_DIR and the shared copy, so
`sonance eval recommend --data-dir TYPO` evaluated another copy without a word, and the CLI read
SONANCE_DATASET_DIR from the process environment only (a value in .env was ignored).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import load_settings
from core.datasets import HETREC_DIRNAME, find_hetrec_dir, locate_hetrec
from tests.foundation.test_cli_demo import write_tiny_hetrec


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_hetrec(tmp_path / "tiny")


def test_an_explicit_folder_without_the_files_finds_nothing(tmp_path: Path, tiny: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONANCE_DATASET_DIR", str(tiny))  # a copy that a fallback would find
    assert find_hetrec_dir() == tiny
    assert find_hetrec_dir(tmp_path / "typo") is None
    assert find_hetrec_dir(tiny.parent) is None  # the folder above a copy is not the copy's folder
    nested = write_tiny_hetrec(tmp_path / "unpacked" / HETREC_DIRNAME)
    assert find_hetrec_dir(tmp_path / "unpacked") == nested  # the archive's own folder name is fine


def test_the_settings_folder_and_an_earlier_download_are_found(tmp_path: Path, tiny: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SONANCE_DATASET_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"SONANCE_DATASET_DIR={tiny}\nSONANCE_DATA_DIR={tmp_path / 'data'}\n")
    assert locate_hetrec(load_settings()) == tiny

    (tmp_path / ".env").write_text(f"SONANCE_DATA_DIR={tmp_path / 'data'}\n")
    downloaded = write_tiny_hetrec(tmp_path / "data" / "datasets" / HETREC_DIRNAME)
    assert locate_hetrec(load_settings()) == downloaded  # before the shared copy of CI machines


def test_eval_with_a_mistyped_data_dir_is_one_error_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "SONANCE_"))}
    env["SONANCE_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run([sys.executable, "-m", "bot.cli", "eval", "recommend", "--data-dir",
                             str(tmp_path / "typo"), "--json"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: No HetRec folder found")
