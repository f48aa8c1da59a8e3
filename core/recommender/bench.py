"""Benchmarks of training and serving at production size, on synthetic music-shaped data.

The synthetic catalogue mimics music listening: item popularity follows a Zipf law (a few artists
everyone knows, a very long tail), users' history lengths are log-normal, each artist belongs to a
genre and most of a listener's artists come from their one to three favourite genres (so
co-listening carries signal, as it does in real data), and every artist carries a few tags: its
genre's own tags plus popular generic ones ("rock", "indie", ...). `sonance bench train` feeds it
through the very code `sonance train` runs (`core.recommender.training.fit_columns`), stage by
stage; `sonance bench recommend` times requests on the resulting engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.recommender.engine import RecommenderEngine
from core.recommender.evaluation import peak_rss_mb
from core.recommender.interactions import Interactions, Vocabulary
from core.recommender.requests import RecommendRequest

#: Genres of the synthetic catalogue, tags per genre and generic tags shared by all genres.
GENRES, GENRE_TAGS, GENERIC_TAGS = 60, 3, 400
#: Share of a listener's artists drawn from their favourite genres (the rest: global popularity).
IN_GENRE_SHARE = 0.7
#: Seconds in a year: last-played times spread over the past three years (recency weighting).
YEAR_S = 365.0 * 86400.0


@dataclass
class SyntheticPlays:
    """Columnar (user, item, plays, last played) rows as the database would return them, plus the
    artists' tags (``{"lastfm": {item id: {tag: count}}}``) and names."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    plays: np.ndarray
    last_played_s: np.ndarray  # POSIX seconds
    tags: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)


def _zipf_weights(n_items: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.power(np.arange(1, n_items + 1, dtype=np.float64), exponent)
    return weights / weights.sum()


def _history_lengths(rng: np.random.Generator, n_users: int, mean_items: float) -> np.ndarray:
    return np.clip(rng.lognormal(np.log(mean_items) - 0.5, 1.0, n_users).astype(np.int64), 1, 500)


def synthetic_plays(n_users: int, n_items: int, *, mean_items: float = 20.0, zipf_exponent: float = 0.9,
                    seed: int = 0, now_s: float | None = None) -> SyntheticPlays:
    """Music-shaped listening rows for `n_users` x `n_items` (ids start at 1, like database rows).

    Duplicate (user, item) draws are kept as separate rows: the training input sums them, as it
    sums a user's plays of one item coming from several sources.
    """
    rng = np.random.default_rng(seed)
    weights = _zipf_weights(n_items, zipf_exponent)
    genre_of = rng.integers(0, GENRES, n_items)
    lengths = _history_lengths(rng, n_users, mean_items)
    total = int(lengths.sum())
    users = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    items = rng.choice(n_items, size=total, p=weights)
    # Most draws come from one of the user's favourite genres, by popularity within the genre.
    favourites = rng.integers(0, GENRES, (n_users, 3))
    in_genre = rng.random(total) < IN_GENRE_SHARE
    genre = favourites[users, np.minimum(rng.geometric(0.55, total) - 1, 2)]
    order = np.argsort(genre_of, kind="stable")
    starts = np.searchsorted(genre_of[order], np.arange(GENRES + 1))
    cumulative = np.cumsum(weights[order])
    for g in range(GENRES):
        pick = np.flatnonzero(in_genre & (genre == g))
        lo, hi = starts[g], starts[g + 1]
        if len(pick) == 0 or hi == lo:
            continue
        base = cumulative[lo - 1] if lo else 0.0
        targets = base + rng.random(len(pick)) * (cumulative[hi - 1] - base)
        items[pick] = order[np.minimum(np.searchsorted(cumulative, targets), hi - 1)]
    plays = np.maximum(1, (rng.pareto(1.2, total) * 10 + 1)).astype(np.int64)
    now_s = time.time() if now_s is None else now_s
    last_played = now_s - rng.random(total) * 3 * YEAR_S
    item_ids = items.astype(np.int64) + 1
    return SyntheticPlays(users + 1, item_ids, plays, last_played, synthetic_tags(genre_of, rng),
                          {i + 1: f"artist {i + 1}" for i in range(n_items)})


def synthetic_tags(genre_of: np.ndarray, rng: np.random.Generator) -> dict[str, dict[int, dict[str, float]]]:
    """Every artist: its genre's tags (counts 5-100) and 0-4 generic tags by Zipf popularity (1-20)."""
    n_items = len(genre_of)
    generic_weights = _zipf_weights(GENERIC_TAGS, 1.0)
    extra = rng.integers(0, 5, n_items)
    generic = rng.choice(GENERIC_TAGS, size=int(extra.sum()), p=generic_weights)
    genre_counts = rng.integers(5, 101, (n_items, GENRE_TAGS))
    generic_counts = rng.integers(1, 21, len(generic))
    out: dict[int, dict[str, float]] = {}
    at = 0
    for i in range(n_items):
        g = int(genre_of[i])
        tags = {f"genre{g}-{t}": float(genre_counts[i, t]) for t in range(GENRE_TAGS)}
        for j in range(at, at + int(extra[i])):
            tags[f"tag{int(generic[j])}"] = float(generic_counts[j])
        at += int(extra[i])
        out[i + 1] = tags
    return {"lastfm": out}


def synthetic_interactions(n_users: int = 100_000, n_items: int = 300_000, *, mean_items: float = 20.0,
                           zipf_exponent: float = 0.9, seed: int = 0) -> Interactions:
    """Users x items with power-law item popularity and log-normal history lengths (no genres)."""
    rng = np.random.default_rng(seed)
    weights = _zipf_weights(n_items, zipf_exponent)
    lengths = _history_lengths(rng, n_users, mean_items)
    total = int(lengths.sum())
    items = rng.choice(n_items, size=total, p=weights)
    users = np.repeat(np.arange(n_users), lengths)
    plays = rng.pareto(1.2, size=total) * 10 + 1
    matrix = sp.csr_matrix((plays.astype(np.float32), (users, items)), shape=(n_users, n_items), dtype=np.float32)
    matrix.sum_duplicates()
    return Interactions(matrix, Vocabulary(np.arange(n_users)), Vocabulary(np.arange(n_items)), None)


# --- measuring -------------------------------------------------------------------------------------


def rss_mb() -> float:
    """Resident set size now, in MiB (Linux /proc; 0 elsewhere)."""
    return _status_kb("VmRSS") / 1024


def high_water_mb() -> float:
    """Peak RSS since the last `reset_high_water` (or process start), in MiB (Linux /proc)."""
    return _status_kb("VmHWM") / 1024


def reset_high_water() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0: ``echo 5 > /proc/self/clear_refs``), so each
    stage reports its own peak; False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_kb(key: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def training_stage(message: str) -> str | None:
    """The stable stage key a training progress message opens, or None for a remark.

    "preparing interactions" -> prepare, "building tags" -> tags, "tuning: fitting ease on the
    validation split" -> tune_fit_ease, "tuning: searching blend weights" -> tune_search,
    "fitting ease" -> fit_ease, "saving artifact …" -> save.
    """
    if message == "preparing interactions":
        return "prepare"
    if message == "building tags":
        return "tags"
    if message.startswith("tuning: fitting "):
        return "tune_fit_" + message.removeprefix("tuning: fitting ").split()[0]
    if message == "tuning: searching blend weights":
        return "tune_search"
    if message.startswith("fitting "):
        return "fit_" + message.removeprefix("fitting ").split()[0]
    if message.startswith("saving artifact"):
        return "save"
    return None


class StageClock:
    """Wall time, CPU time and peak RSS per stage, the stages opened by progress messages.

    Training reports its steps through a progress callback ("fitting ease", "tuning: searching
    blend weights", ...); a message that names a stage (`training_stage`) closes the previous one
    and opens the next, so the training code needs no timing hooks of its own. Peak RSS is per
    stage where the kernel lets a process reset its high-water mark (Linux), else the process's.
    """

    def __init__(self, say: Callable[[str], None] | None = None,
                 key: Callable[[str], str | None] = training_stage, *, reset_peaks: bool = True) -> None:
        self.say = say or (lambda _m: None)
        self.key = key
        # Off: each stage reports the process's peak so far, and the kernel's own figure (what
        # `/usr/bin/time -v` prints) stays the whole run's peak.
        self.reset_peaks = reset_peaks
        self.stages: dict[str, dict[str, float]] = {}
        self._name: str | None = None
        self._wall = self._cpu = 0.0

    def __call__(self, message: str) -> None:
        self.say(message)
        name = self.key(message)
        if name is not None:
            self.start(name)

    def start(self, name: str) -> None:
        self.stop()
        self._name = name
        if self.reset_peaks:
            reset_high_water()
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        if self._name is None:
            return
        self.stages[self._name] = {"wall_s": round(time.perf_counter() - self._wall, 2),
                                   "cpu_s": round(time.process_time() - self._cpu, 2),
                                   "peak_rss_mb": round(high_water_mb() or peak_rss_mb(), 1)}
        self._name = None

    def total(self, prefix: str = "", skip: tuple[str, ...] = ()) -> float:
        """Summed wall seconds of the stages whose key starts with `prefix`."""
        return round(sum(v["wall_s"] for k, v in self.stages.items() if k.startswith(prefix) and k not in skip), 2)

    def peak(self, skip: tuple[str, ...] = ()) -> float:
        return max((v["peak_rss_mb"] for k, v in self.stages.items() if k not in skip), default=0.0)


# --- serving ---------------------------------------------------------------------------------------


def percentiles(timings_ms: list[float]) -> dict[str, float]:
    """p50/p95/max of a list of milliseconds, and how many there were."""
    values = np.asarray(timings_ms)
    return {"p50_ms": round(float(np.percentile(values, 50)), 2), "p95_ms": round(float(np.percentile(values, 95)), 2),
            "max_ms": round(float(values.max()), 2), "users": len(values)}


def latency_ms(engine: RecommenderEngine, rows: list[sp.csr_matrix], request: RecommendRequest | None = None,
               warmup: int = 5, progress: Callable[[int], None] | None = None) -> dict[str, float]:
    """p50/p95/max wall-clock ms of `engine.recommend` per user (evidence included)."""
    request = request or RecommendRequest(count=10)
    for row in rows[:warmup]:
        engine.recommend(row, request)
    timings = []
    for i, row in enumerate(rows):
        started = time.perf_counter()
        engine.recommend(row, request)
        timings.append((time.perf_counter() - started) * 1000)
        if progress:
            progress(i)
    return percentiles(timings)


def sample_rows(data: Interactions, n: int, seed: int = 0) -> list[sp.csr_matrix]:
    """Rows of `n` random users who have at least one item."""
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(np.diff(data.matrix.indptr) > 0)
    chosen = rng.choice(active, size=min(n, len(active)), replace=False)
    return [data.matrix[int(u)] for u in chosen]


# --- training --------------------------------------------------------------------------------------


def train_benchmark(n_users: int, n_items: int, out_dir: Path, *, seed: int = 0, tune: bool = True,
                    say: Callable[[str], None] | None = None, plays: SyntheticPlays | None = None,
                    stage_peaks: bool = True) -> tuple[RecommenderEngine, Path, dict]:
    """Generate music-shaped plays (unless given), then run what `sonance train` runs on them
    (`fit_and_save`: columns -> interactions -> tags -> the size's plan, tuned -> artifact under
    `out_dir`), timing every stage. Returns the engine, its artifact folder and the JSON-ready
    figures."""
    from datetime import UTC, datetime

    from core.domain import Kind
    from core.recommender.components import plan_for
    from core.recommender.training import PlayColumns, fit_and_save, model_version

    clock = StageClock(say, reset_peaks=stage_peaks)
    started = time.perf_counter()
    now = datetime.now(UTC)
    if plays is None:
        clock.start("generate")
        plays = synthetic_plays(n_users, n_items, seed=seed, now_s=now.timestamp())
    columns = PlayColumns(plays.user_ids, plays.item_ids, plays.plays.astype(np.float64), plays.last_played_s,
                          plays.item_ids)
    clock.start("version")
    version = model_version(Kind.ARTIST, columns, now)
    clock.stop()
    path = out_dir / "recommender" / str(Kind.ARTIST) / version
    engine, _seconds = fit_and_save(columns, plays.names, plays.tags, kind=Kind.ARTIST, now=now, tune=tune,
                                    path=path, progress=clock)
    clock.stop()
    nnz = int(engine.popularity.sum())  # users per item, summed: the (user, item) pairs
    tuning = engine.hybrid.tuning
    figures: dict = {
        "users": n_users, "items": n_items, "rows": len(columns), "kind": "artist",
        "pairs": nnz, "n_tags": len(engine.tags.names),
        "plan": plan_for(engine.n_users, len(engine.items), nnz).describe(),
        "stages": clock.stages,
        "train_wall_s": clock.total(skip=("generate",)),
        "fit_wall_s": round(clock.total("fit_") + clock.total("tune_fit_"), 2),
        "tuning_wall_s": clock.total("tune_"),
        "refitted": any(k.startswith("fit_") for k in clock.stages) and tune,
        "train_peak_rss_mb": clock.peak(skip=("generate",)),
        # Resetting the high-water mark per stage also resets getrusage's, hence the max.
        "process_peak_rss_mb": max(round(peak_rss_mb(), 1), clock.peak()),
        "total_wall_s": round(time.perf_counter() - started, 2),
        "weights": {k: round(float(v), 3) for k, v in engine.hybrid.weights.items()},
    }
    if tuning is not None:
        figures.update({"validation_ndcg@10": round(float(tuning.validation_ndcg), 4),
                        "validation_cold_ndcg@10": round(float(tuning.validation_cold_ndcg), 4),
                        "validation_users": int(tuning.validation_users)})
    return engine, path, figures
