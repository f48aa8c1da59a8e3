"""`sonance demo` through the real CLI on a tiny HetRec-format dataset: it reuses its model while the
data are unchanged, refuses a misspelt artist with a suggestion before training, keeps two model
versions, explains its metrics, and a missing dataset is one line (issue 13 §4, §6)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = {
    "rock": ["Radiohead", "Portishead", "Massive Attack", "Björk", "Blur", "Pulp"],
    "metal": ["Metallica", "Slayer", "Iron Maiden", "Megadeth", "Anthrax"],
    "pop": ["Taylor Swift", "Dua Lipa", "Madonna", "Kylie Minogue", "Robyn"],
}


def write_tiny_hetrec(folder: Path, listeners: int = 40, seed: int = 3) -> Path:
    """The five HetRec files, same columns and encodings, with a few dozen listeners."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    artists = [a for names in CLUSTERS.values() for a in names]
    ids = {a: i + 1 for i, a in enumerate(artists)}
    (folder / "artists.dat").write_text("id\tname\turl\tpictureURL\n" + "".join(
        f"{i}\t{a}\thttp://www.last.fm/music/{a.replace(' ', '+')}\t\n" for a, i in ids.items()), encoding="utf-8")
    tags = {name: i + 1 for i, name in enumerate(CLUSTERS)}
    (folder / "tags.dat").write_text("tagID\ttagValue\n" + "".join(f"{i}\t{t}\n" for t, i in tags.items()),
                                     encoding="latin-1")
    plays, tagged = ["userID\tartistID\tweight\n"], ["userID\tartistID\ttagID\tday\tmonth\tyear\n"]
    for user in range(2, listeners + 2):
        cluster = rng.choice(list(CLUSTERS))
        for artist in rng.sample(CLUSTERS[cluster], 4):
            plays.append(f"{user}\t{ids[artist]}\t{rng.randint(10, 900)}\n")
            tagged.append(f"{user}\t{ids[artist]}\t{tags[cluster]}\t1\t4\t2009\n")
    (folder / "user_artists.dat").write_text("".join(plays))
    (folder / "user_taggedartists.dat").write_text("".join(tagged))
    (folder / "user_friends.dat").write_text("userID\tfriendID\n2\t3\n3\t2\n")
    return folder


def demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "SONANCE_"))}
    full.update({"SONANCE_DATA_DIR": str(tmp_path / "data"), "SONANCE_WORKER_PROCESSES": "0", "COLUMNS": "200",
                 **(env or {})})
    return subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--db", str(tmp_path / "demo" / "demo.db"),
                           "--listeners", "1", "--count", "3", "--no-tune", *args],
                          capture_output=True, text=True, env=full, cwd=tmp_path, timeout=300)


def versions(tmp_path: Path) -> list[str]:
    folder = tmp_path / "demo" / "data" / "models" / "recommender" / "artist"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_hetrec(tmp_path / "hetrec")


def test_the_demo_reuses_its_model_until_told_to_retrain(tmp_path: Path, tiny: Path) -> None:
    first = demo(tmp_path, "--path", str(tiny))
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert "what it means" in first.stdout and "ranking quality" not in first.stdout  # --no-tune: no check
    assert "listening histories it learnt from" in first.stdout
    assert "Artists most like Radiohead" in first.stdout
    assert "trained" in first.stderr  # the progress bar's last step
    [trained] = versions(tmp_path)

    again = demo(tmp_path, "--path", str(tiny), "--artist", "metallica")
    assert again.returncode == 0, again.stderr
    assert f"reusing model {trained}" in again.stdout and "trained" not in again.stderr
    assert "Artists most like Metallica" in again.stdout
    assert versions(tmp_path) == [trained]

    for _ in range(2):
        forced = demo(tmp_path, "--path", str(tiny), "--retrain")
        assert forced.returncode == 0, forced.stderr
        assert "reusing" not in forced.stdout
    kept = versions(tmp_path)
    assert len(kept) == 2 and trained not in kept, "only the active model and the one before it are kept"


def test_a_misspelt_artist_is_refused_with_a_suggestion_before_training(tmp_path: Path, tiny: Path) -> None:
    result = demo(tmp_path, "--path", str(tiny), "--artist", "radiohed")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: The demo data have no artist called “radiohed”. Did you mean Radiohead?")
    assert versions(tmp_path) == [], "refused before training"


def test_no_dataset_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    result = demo(tmp_path, env={"SONANCE_DATASET_DIR": str(empty)})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: SONANCE_DATASET_DIR={empty} has no HetRec files (user_artists.dat)")
