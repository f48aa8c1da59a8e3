"""Smoke test of `scripts/bench bot` on a tiny synthetic HetRec folder.

Why a synthetic folder instead of the shared dataset: the benchmark's setup path (import_hetrec,
training, copying listeners to Discord members) is exercised exactly as on real data, in seconds,
and the test runs on machines without the dataset. Figures are not asserted (they depend on the
machine); the JSON shape and zero errors are.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.perf.bench_bot import BotBenchConfig, run_bot_bench

#: 4 genres x 15 artists: enough that three lists of 10 per member never run out of fresh picks.
GENRES = {genre: [f"{genre.title()} Artist {i}" for i in range(15)]
          for genre in ("electronic", "shoegaze", "metal", "pop")}


def write_tiny_hetrec(folder: Path, listeners: int = 40, seed: int = 3) -> Path:
    """A HetRec-format folder (same files and headers) with clustered tastes so training learns."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = [a for artists in GENRES.values() for a in artists]
    artist_id = {name: i + 1 for i, name in enumerate(names)}
    tag_id = {genre: i + 1 for i, genre in enumerate(GENRES)}
    (folder / "artists.dat").write_text("id\tname\turl\tpictureURL\n" + "".join(
        f"{i}\t{n}\thttp://www.last.fm/music/{n.replace(' ', '+')}\t\n" for n, i in artist_id.items()))
    (folder / "tags.dat").write_text("tagID\ttagValue\n" + "".join(f"{i}\t{g}\n" for g, i in tag_id.items()),
                                     encoding="latin-1")
    plays, tagged = ["userID\tartistID\tweight\n"], ["userID\tartistID\ttagID\tday\tmonth\tyear\n"]
    for user in range(2, listeners + 2):
        genre = rng.choice(list(GENRES))
        for name in [*rng.sample(GENRES[genre], k=4), rng.choice(names)]:
            plays.append(f"{user}\t{artist_id[name]}\t{rng.randint(10, 3000)}\n")
        for name in GENRES[genre][:2]:
            tagged.append(f"{user}\t{artist_id[name]}\t{tag_id[genre]}\t1\t4\t2009\n")
    (folder / "user_artists.dat").write_text("".join(dict.fromkeys(plays)))
    (folder / "user_taggedartists.dat").write_text("".join(tagged))
    (folder / "user_friends.dat").write_text("userID\tfriendID\n2\t3\n3\t2\n")
    return folder


async def test_bench_bot_smoke(tmp_path: Path) -> None:
    folder = write_tiny_hetrec(tmp_path / "hetrec")
    config = BotBenchConfig(hetrec_dir=folder, members=6, interactions=20, concurrency=5, warmup=2, mixed=True)

    report = await run_bot_bench(config)
    data = json.loads(json.dumps(report.to_json()))  # must be JSON-serialisable as printed

    rec = data["recommend"]
    assert rec["interactions"] == 20 and rec["concurrency"] == 5
    assert rec["errors"] == 0, rec["error_samples"]
    for key in ("ack_ms", "final_ms"):
        assert set(rec[key]) == {"p50", "p95", "max"}
        assert 0 < rec[key]["p50"] <= rec[key]["p95"] <= rec[key]["max"]
    assert rec["ack_ms"]["p95"] <= rec["final_ms"]["p95"]
    assert rec["throughput_per_s"] > 0
    mixed = data["mixed"]
    assert mixed["errors"] == 0, mixed["error_samples"]
    assert {"recommend", "whoknows", "top", "account"} <= set(mixed["by_command"])
    assert data["setup_seconds"] > 0 and data["members"] >= 6  # raised so cooldowns are never hit
    assert data["targets"]["met"] in (True, False)
    # The production entry point ran as its own process, warmed up before the measured runs.
    assert data["bot"] == "process" and rec["cpu_s"] > 0 and rec["load_cpu_s"] is not None
    assert not [n for n in data["notes"] if "before the bot was warm" in n], data["notes"]
