"""Top pairs of a large guild without scoring every pair: candidates from shared rare artists, then
an exact rescoring of the candidates with the pair score itself.

Why candidates from rare artists: in the blend raw = a_o cos_overlap + a_t cos_tags + a_l cos_latent
- c0 the overlap weight a_o is by far the largest (it is divided by the overlap cosine's small
spread: ~100 against ~1.5 for tags and ~11 for latent factors on HetRec-shaped data, so the tag and
latent terms can move a pair by at most ~12 while the best pairs reach ~25-30 through overlap), and the
overlap vectors weight rare artists most (IDF). The best pairs of a guild are people who share many
rare artists.

1. Artists played by at most `DF_CAP` guild members are *rare*. Pairs sharing one come from the sparse
   product R R^T over the rare columns, upper triangle only, in row blocks; its cost is at most
   DF_CAP x (the guild's listens), i.e. linear in the guild, however popular the big artists are.
2. Each such pair is ranked by an estimate: its exact rare-overlap term, a share (`POP_WEIGHT`) of the
   Cauchy-Schwarz bound on its popular overlap (p_i p_j, the norms of the members' popular parts), and
   each member's mean tag and latent affinity with the guild (x_i . mean). The best
   `CANDIDATES_PER_PAIR x top` by this estimate are kept.
3. The kept pairs are rescored with `raw_scores`, the very function behind `pair_score`, so every
   reported score is exact; only membership of the top can differ from exhaustive scoring.

What is not proven: a pair whose score comes mostly from popular artists or from tags and latent
factors, not from rare shared artists, can be missed. `sonance bench compat` measures the agreement of
the top 10 with exhaustive scoring (`top_pairs_overlap`) over several guilds and seeds, and small
guilds, where scoring everything is cheaper anyway, never take this path (`core.compat.leaderboard`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from core.compat.profiles import TasteSpace
from core.compat.scoring import raw_scores

# An artist played by at most this many guild members is "rare": its pairs are enumerated. The
# enumeration costs at most DF_CAP x listens; 200 keeps a 20,000-member guild under a second, and on
# HetRec-shaped guilds the best pairs' shared artists lie in the rare set (bench: top_pairs_overlap).
DF_CAP = 200
BLOCK_ROWS = 2048
# Exact rescorings per requested pair (10,000 for a top 10: ~0.03 s). Measured on HetRec guilds and
# synthetic guilds of 5,000 and 20,000: 100 already found the whole top 10 with POP_WEIGHT below,
# 1,000 is the margin for guilds shaped unlike both.
CANDIDATES_PER_PAIR = 1_000
# The estimate counts a pair's popular overlap as this share of its Cauchy-Schwarz bound p_i p_j.
# 0 (ignore it) missed a HetRec top pair whose 32 shared artists were mostly mid-popular unless
# 1,000 candidates per pair were kept; 1 (the bound) over-ranked pop fans and missed synthetic top
# pairs even at 1,000; 0.3 missed none at 100, 300 or 1,000 on either.
POP_WEIGHT = 0.3


def _mean_affinity(m: np.ndarray) -> np.ndarray:
    """x_i . mean(x): the part of x_i . x_j that depends on i alone when x_j is near the guild mean."""
    m = np.asarray(m, dtype=np.float64)
    return m @ m.mean(axis=0)


def _keep_best(rows: np.ndarray, cols: np.ndarray, est: np.ndarray, keep: int) -> tuple[np.ndarray, ...]:
    if est.size <= keep:
        return rows, cols, est
    sel = np.argpartition(-est, keep - 1)[:keep]
    return rows[sel], cols[sel], est[sel]


def candidate_top_pairs(space: TasteSpace, idx: np.ndarray, top: int) -> list[tuple[float, int, int]]:
    """Best `top` pairs (raw, i, j), i < j, positions in `idx`, among pairs that share a rare artist;
    best first, ties broken by (i, j). Fewer than `top` when fewer pairs share a rare artist."""
    n = idx.size
    if n < 2 or top <= 0:
        return []
    a, _ = space.component_scales
    ov = space.overlap[idx].tocsr()
    df = np.bincount(ov.indices, minlength=ov.shape[1])
    rare = ((df >= 2) & (df <= DF_CAP)).astype(np.float32)
    rare_ov = sp.csr_matrix(ov @ sp.diags(rare), dtype=np.float32)
    rare_ov.eliminate_zeros()
    pop_ov = sp.csr_matrix(ov @ sp.diags((df > DF_CAP).astype(np.float64)))
    p = POP_WEIGHT * np.sqrt(np.asarray(pop_ov.multiply(pop_ov).sum(axis=1)).ravel())
    own = a[1] * _mean_affinity(space.tags_lsa[idx]) + a[2] * _mean_affinity(space.latent[idx])
    # est(i, j) <= a_o shared(i, j) + row_cap[i]: entries whose shared overlap cannot lift them to the
    # kept set's worst estimate are dropped before any per-entry arithmetic (a cheap first filter)
    row_cap = a[0] * p * p.max() + own + own.max()
    keep = CANDIDATES_PER_PAIR * top
    rows = cols = np.zeros(0, dtype=np.int64)
    est = np.zeros(0)
    floor = -np.inf
    for r0 in range(0, n - 1, BLOCK_ROWS):
        r1 = min(r0 + BLOCK_ROWS, n)
        # this block's rows against themselves and every later row: the upper triangle (and the
        # diagonal square's lower half, masked below)
        shared = rare_ov[r0:r1] @ rare_ov[r0:].T
        local = np.repeat(np.arange(r1 - r0), np.diff(shared.indptr))
        hit = (np.ones(shared.data.size, dtype=bool) if not np.isfinite(floor) or a[0] <= 0 else
               shared.data >= ((floor - row_cap[r0:r1]) / a[0] - 1e-6).astype(np.float32)[local])
        b_rows = local[hit] + r0
        b_cols = shared.indices[hit].astype(np.int64) + r0
        vals = shared.data[hit].astype(np.float64)
        upper = b_cols > b_rows
        b_rows, b_cols, vals = b_rows[upper], b_cols[upper], vals[upper]
        b_est = a[0] * (vals + p[b_rows] * p[b_cols]) + own[b_rows] + own[b_cols]
        rows, cols, est = _keep_best(np.concatenate([rows, b_rows]), np.concatenate([cols, b_cols]),
                                     np.concatenate([est, b_est]), keep)
        if est.size >= keep:
            floor = float(est.min())
    if rows.size == 0:
        return []
    raw = raw_scores(space, idx[rows], idx[cols])
    order = np.lexsort((cols, rows, -raw))[:top]
    return [(float(raw[k]), int(rows[k]), int(cols[k])) for k in order]
