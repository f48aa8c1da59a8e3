"""Synthetic HetRec-shaped profiles and timings of the compatibility hot paths.

Profiles look like HetRec's: ~50 distinct artists per user drawn from ~20k artists with power-law
popularity (the top artist reaches about a quarter of users, most artists a handful), log-normal play
counts around HetRec's median of ~260, and a few power-law tags per artist. Taste is not clustered,
which does not matter for timing: the cost depends on sizes and popularity skew, not on who matches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.compat.leaderboard import (
    CANDIDATE_MIN_MEMBERS,
    best_matches,
    exhaustive_top_pairs,
    guild_leaderboard,
    rankable_members,
    top_pairs,
)
from core.compat.profiles import TasteSpace, build_taste_space_arrays
from core.compat.scoring import compare, pair_score


def synthetic_space(n_users: int, *, n_artists: int = 20_000, per_user: int = 50, n_tags: int = 2_000,
                    seed: int = 0) -> TasteSpace:
    """A `TasteSpace` over synthetic HetRec-shaped profiles (vectorised; 20k users in seconds)."""
    rng = np.random.default_rng(seed)
    popularity = (np.arange(n_artists) + 5.0) ** -0.85
    cdf = np.cumsum(popularity / popularity.sum())
    draws = 3 * per_user
    cand = np.minimum(np.searchsorted(cdf, rng.random((n_users, draws))), n_artists - 1)
    cand.sort(axis=1)
    first = np.ones_like(cand, dtype=bool)
    first[:, 1:] = cand[:, 1:] != cand[:, :-1]
    sizes = np.clip(rng.normal(per_user, per_user * 0.1, n_users).astype(int), 1, per_user)
    # keep a random subset of each user's distinct draws (not the most popular ones)
    priority = np.where(first, rng.random(cand.shape), 2.0)
    rank = np.argsort(np.argsort(priority, axis=1), axis=1)
    keep = first & (rank < sizes[:, None])
    users = np.repeat(np.arange(n_users), draws).reshape(n_users, draws)[keep]
    artists = cand[keep]
    plays = np.maximum(1.0, np.round(rng.lognormal(np.log(260.0), 1.3, artists.size)))
    tag_pop = (np.arange(n_tags) + 3.0) ** -1.0
    tag_cdf = np.cumsum(tag_pop / tag_pop.sum())
    artist_tags: dict[int, dict[int, int]] = {}
    tag_draws = np.minimum(np.searchsorted(tag_cdf, rng.random((n_artists, 6))), n_tags - 1)
    counts = rng.integers(1, 20, size=(n_artists, 6))
    for a in range(n_artists):
        artist_tags[a] = {int(t): int(c) for t, c in zip(tag_draws[a], counts[a], strict=True)}
    return build_taste_space_arrays(tuple(range(n_users)), users, tuple(range(n_artists)), artists, plays, None,
                                    artist_tags, tag_names={t: f"tag{t}" for t in range(n_tags)})


@dataclass(frozen=True)
class BenchResult:
    build_seconds: dict[int, float]
    pair_score_ms: float  # median, calibrated score without breakdown
    compare_ms: float  # median, full breakdown (shared artists, tags, bridges, differences)
    leaderboard_seconds: dict[int, float]  # guild size -> median seconds (top pairs + centre)
    matches_ms: dict[int, float]  # guild size -> median ms of one member's best matches
    leaderboard_method: dict[int, str]  # guild size -> "candidates" or "exhaustive" (chosen by size)
    exhaustive_seconds: dict[int, float]  # guild size -> exhaustive top-pairs scan of the timed guild
    top_pairs_overlap: dict[int, float]  # guild size -> mean share of the top 10 equal to exhaustive's
    top_pairs_overlap_min: dict[int, float]  # guild size -> worst guild sample
    overlap_samples: int  # guild samples per size behind the overlap figures

    def to_json_dict(self) -> dict[str, object]:
        def by_size(values: dict[int, float], digits: int = 3) -> dict[str, float]:
            return {str(k): round(v, digits) for k, v in values.items()}

        sizes = sorted(self.leaderboard_seconds)
        ratio = ({f"{sizes[-1]}/{sizes[-2]}": round(self.leaderboard_seconds[sizes[-1]]
                                                    / max(self.leaderboard_seconds[sizes[-2]], 1e-9), 2)}
                 if len(sizes) >= 2 else {})
        return {"build_seconds": by_size(self.build_seconds),
                "pair_score_ms": round(self.pair_score_ms, 3), "compare_ms": round(self.compare_ms, 3),
                "leaderboard_seconds": by_size(self.leaderboard_seconds),
                "matches_ms": by_size(self.matches_ms),
                "leaderboard_method": {str(k): v for k, v in self.leaderboard_method.items()},
                "leaderboard_ratio": ratio,
                "exhaustive_top_pairs_seconds": by_size(self.exhaustive_seconds),
                "top_pairs_overlap": by_size(self.top_pairs_overlap, 4),
                "top_pairs_overlap_min": by_size(self.top_pairs_overlap_min, 4),
                "overlap_samples": self.overlap_samples}


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def top_pairs_agreement(space: TasteSpace, members: list[int], top: int = 10) -> float:
    """Share of the leaderboard's top pairs that exhaustive scoring also ranks in its top `top`."""
    ranked = rankable_members(space, members, lambda _m: True)
    idx = np.array([space.user_index[m] for m in ranked], dtype=np.int64)
    expected = {(i, j) for _, i, j in exhaustive_top_pairs(space, idx, top)}
    if not expected:
        return 1.0
    return len(expected & {(i, j) for _, i, j in top_pairs(space, idx, top)}) / len(expected)


def run_bench(sizes: tuple[int, ...] = (500, 5_000, 20_000), *, repeat: int = 3, seed: int = 0,
              overlap_samples: int = 3, progress: Callable[[str], None] | None = None) -> BenchResult:
    """One space of max(sizes) users; guilds are random subsets of it (visible = everyone).

    For every size that takes the candidate path, `overlap_samples` guilds (the timed one first) are
    also scored exhaustively to measure how much of the top 10 agrees."""
    say = progress or (lambda _msg: None)
    n = max(sizes)
    start = time.perf_counter()
    space = synthetic_space(n, seed=seed)
    build = {n: time.perf_counter() - start}
    say(f"built a space of {n:,} synthetic users in {build[n]:.1f} s")
    rng = np.random.default_rng(seed + 1)
    pairs = [tuple(int(x) for x in rng.choice(n, 2, replace=False)) for _ in range(30)]
    pair_ms = 1000 * float(np.median([_median_time(lambda p=p: pair_score(space, *p), 1) for p in pairs]))
    compare_ms = 1000 * float(np.median([_median_time(lambda p=p: compare(space, *p), 1) for p in pairs]))
    say(f"pair score {pair_ms:.2f} ms, with breakdown {compare_ms:.2f} ms")
    boards: dict[int, float] = {}
    matches: dict[int, float] = {}
    methods: dict[int, str] = {}
    exhaustive: dict[int, float] = {}
    overlap: dict[int, float] = {}
    overlap_min: dict[int, float] = {}
    everyone = set(range(n))
    for size in sizes:
        members = [int(x) for x in rng.choice(n, size, replace=False)]
        boards[size] = _median_time(lambda m=members: guild_leaderboard(space, m, everyone, top=10), repeat)
        matches[size] = 1000 * _median_time(lambda m=members: best_matches(space, m[0], m, everyone), repeat)
        methods[size] = "candidates" if size >= CANDIDATE_MIN_MEMBERS else "exhaustive"
        say(f"guild of {size:,}: leaderboard {boards[size]:.3f} s ({methods[size]}), "
            f"one member's matches {matches[size]:.1f} ms")
        if methods[size] == "candidates" and overlap_samples > 0:
            idx = np.array(sorted(members), dtype=np.int64)
            exhaustive[size] = _median_time(lambda i=idx: exhaustive_top_pairs(space, i, 10), 1)
            shares = [top_pairs_agreement(space, members)]
            shares += [top_pairs_agreement(space, [int(x) for x in rng.choice(n, size, replace=False)])
                       for _ in range(overlap_samples - 1)]
            overlap[size], overlap_min[size] = float(np.mean(shares)), float(np.min(shares))
            say(f"  exhaustive top pairs {exhaustive[size]:.2f} s; top-10 overlap with exhaustive "
                f"{overlap[size]:.1%} (worst {overlap_min[size]:.0%}) over {len(shares)} guilds")
    return BenchResult(build, pair_ms, compare_ms, boards, matches, methods, exhaustive, overlap, overlap_min,
                       overlap_samples)
