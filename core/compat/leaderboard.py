"""Guild leaderboards as matrix products: top pairs, a member's best matches, the guild's centre.

Privacy first: members are filtered by the visibility predicate (and by having a history) *before*
any score is computed, so a hidden member influences nothing — not a rank, not a count, not the
centre. The raw score is a sum of dot products (see `core.compat.scoring`), so a guild's pair matrix is
D D^T + R R^T, where D holds the dense features (tag LSA, latent factors and the overlap columns of
artists that many members share) and R the sparse rest of the overlap; rows are processed in blocks so
memory stays bounded for 20,000 members, keeping only each block's best pairs.

That exhaustive scan is quadratic (20,000 members: ~7 s). From `CANDIDATE_MIN_MEMBERS` members on, the
top pairs come from `core.compat.pair_candidates` instead (pairs sharing rare artists, rescored exactly;
near-linear), which is both faster and, measured against this scan by `sonance bench compat`, the same
top 10. Below it the exhaustive scan is cheaper and exact, so small guilds keep it. The centre and a
member's best matches are linear already and always exact.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from core.compat.calibration import label_for
from core.compat.pair_candidates import candidate_top_pairs
from core.compat.profiles import Key, TasteSpace
from core.compat.scoring import Visibility, is_visible, raw_scores, user_confidence
from core.errors import NotEnoughHistory, PrivacyHidden

BLOCK_ROWS = 1024
# An artist that more than this share of the guild plays goes to the dense part: a dense column costs
# ~n^2 BLAS flops, a sparse one ~df^2 much slower scalar steps; the break-even measured near 3-5% of the guild.
DENSE_SHARE = 0.04
# From this guild size on, top pairs come from candidates (see the module docstring). At 5,000 members
# the candidate path took 0.2 s against 0.45 s exhaustive, at 3,000 0.24 s against 0.16 s; below that
# the exhaustive scan is cheaper, and it is exact by construction.
CANDIDATE_MIN_MEMBERS = 4_000


def pair_confidence(space: TasteSpace, a: Key, b: Key) -> float:
    """How much two histories can say together: the thinner one decides (as in `scoring.compare`).

    Boards pick their pairs by score alone, so this is computed for the few pairs they show, not
    for every pair they scan.
    """
    return round(min(member_confidence(space, a), member_confidence(space, b)), 3)


def member_confidence(space: TasteSpace, member: Key) -> float:
    """0..1 confidence of one member's history (0 for someone the space does not know)."""
    i = space.index_of(member)
    return 0.0 if i is None else user_confidence(space, i)


@dataclass(frozen=True)
class PairEntry:
    a: Key
    b: Key
    score: float  # calibrated 0..100
    raw: float
    label: str


@dataclass(frozen=True)
class MemberMatch:
    member: Key
    score: float  # calibrated 0..100 (for the centre: of the member's mean raw score with the others)
    raw: float
    label: str


@dataclass(frozen=True)
class GuildLeaderboard:
    top_pairs: tuple[PairEntry, ...]
    centre: MemberMatch | None  # the member closest to the guild's overall taste
    ranked_members: int  # visible members with a history (hidden ones are never counted)
    version: str  # the TasteSpace version the numbers come from


def rankable_members(space: TasteSpace, members: Iterable[Key], visible: Visibility) -> list[Key]:
    """Visible members with enough history, deduplicated, in the space's (deterministic) order.

    The visibility test runs first and alone decides whether a member is even looked up.
    """
    seen: set[int] = set()
    for member in members:
        if not is_visible(visible, member):
            continue
        i = space.index_of(member)
        if i is not None and space.has_history(member):
            seen.add(i)
    return [space.users[i] for i in sorted(seen)]


def leaderboard_cache_key(kind: str, guild_id: object, members: Iterable[Key], visible: Visibility,
                          version: str, **options: object) -> str:
    """Deterministic cache key: kind, guild, the *visible* member set, the profile version, options.

    `version` is `TasteSpace.version` (or any token the caller bumps when listens or privacy change),
    so a stale entry is simply never asked for again. Hidden members never enter the key, so even the
    key reveals nothing about them.
    """
    shown = sorted({repr(m) for m in members if is_visible(visible, m)})
    blob = json.dumps({"kind": kind, "guild": repr(guild_id), "members": shown, "version": version,
                       "options": {k: repr(v) for k, v in sorted(options.items())}}, sort_keys=True)
    return f"compat:{kind}:" + hashlib.sha256(blob.encode()).hexdigest()[:32]


def _features(space: TasteSpace, idx: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix, float]:
    """(D, R, c0) with raw[i, j] = D_i . D_j + R_i . R_j - c0 for the members `idx`."""
    a, c0 = space.component_scales
    sa = np.sqrt(a).astype(np.float32)
    ov = space.overlap[idx]
    n = idx.size
    df = np.bincount(ov.indices, minlength=ov.shape[1])
    popular = np.flatnonzero(df > max(DENSE_SHARE * n, 1.0))
    dense_parts = [sa[1] * space.tags_lsa[idx], sa[2] * space.latent[idx]]
    if popular.size:
        dense_parts.append(sa[0] * ov[:, popular].toarray())
        keep = np.ones(ov.shape[1], dtype=np.float32)
        keep[popular] = 0.0
        rest = sp.csr_matrix(ov @ sp.diags(keep * sa[0]))
        rest.eliminate_zeros()
    else:
        rest = sp.csr_matrix(ov * sa[0])
    dense = np.ascontiguousarray(np.hstack(dense_parts), dtype=np.float32)
    return dense, rest.astype(np.float32), c0


def _block(dense: np.ndarray, rest: sp.csr_matrix, r0: int, r1: int, c_start: int, c0: float) -> np.ndarray:
    """Raw scores of rows r0:r1 against columns c_start:n (float32)."""
    scores = dense[r0:r1] @ dense[c_start:].T
    scores += (rest[r0:r1] @ rest[c_start:].T).toarray()
    scores -= np.float32(c0)
    return scores


def pair_matrix(space: TasteSpace, idx: np.ndarray) -> np.ndarray:
    """The full raw pair matrix of users `idx` (dense; for evaluations and small guilds)."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 0:
        return np.zeros((0, 0), np.float32)
    dense, rest, c0 = _features(space, idx)
    return np.vstack([_block(dense, rest, r0, min(r0 + BLOCK_ROWS, idx.size), 0, c0)
                      for r0 in range(0, idx.size, BLOCK_ROWS)])


def exhaustive_top_pairs(space: TasteSpace, idx: np.ndarray, top: int) -> list[tuple[float, int, int]]:
    """Best `top` pairs (raw, i, j), i < j, scanning only the upper triangle block by block."""
    n = idx.size
    if n < 2 or top <= 0:
        return []
    dense, rest, c0 = _features(space, idx)
    best: list[tuple[float, int, int]] = []
    for r0 in range(0, n - 1, BLOCK_ROWS):
        r1 = min(r0 + BLOCK_ROWS, n)
        scores = _block(dense, rest, r0, r1, r0, c0)  # columns r0..n-1
        width = n - r0
        # within the diagonal square keep j > i only
        diag = np.arange(r1 - r0)
        scores[:, : r1 - r0][diag[:, None] >= diag[None, :]] = -np.inf
        flat = scores.ravel()
        k = min(top, (r1 - r0) * width - (r1 - r0) * (r1 - r0 + 1) // 2)
        if k <= 0:
            continue
        cand = np.argpartition(-flat, k - 1)[:k]
        best.extend((float(flat[c]), r0 + int(c) // width, r0 + int(c) % width) for c in cand)
        best.sort(key=lambda t: (-t[0], t[1], t[2]))
        del best[top:]
    return best


def top_pairs(space: TasteSpace, idx: np.ndarray, top: int) -> list[tuple[float, int, int]]:
    """Best `top` pairs (raw, i, j), i < j, of users `idx`: exhaustive for small guilds, candidates
    for large ones. Falls back to the exhaustive scan when too few pairs share a rare artist to fill
    the board (a guild whose members all play the same few artists)."""
    n = idx.size
    if n < CANDIDATE_MIN_MEMBERS:
        return exhaustive_top_pairs(space, idx, top)
    found = candidate_top_pairs(space, idx, top)
    if len(found) < min(top, n * (n - 1) // 2):
        return exhaustive_top_pairs(space, idx, top)
    return found


def _centre(space: TasteSpace, idx: np.ndarray) -> tuple[int, float] | None:
    """Member with the highest mean raw score against the others: f_i . (sum_j f_j - f_i) / (n - 1)."""
    n = idx.size
    if n < 2:
        return None
    a, c0 = space.component_scales
    ov = space.overlap[idx].astype(np.float64)
    ov_sum = np.asarray(ov.sum(axis=0)).ravel()
    self_ov = np.asarray(ov.multiply(ov).sum(axis=1)).ravel()
    cos_sum = np.empty((n, 3))
    cos_sum[:, 0] = ov @ ov_sum - self_ov
    for c, m in ((1, space.tags_lsa[idx]), (2, space.latent[idx])):
        m = m.astype(np.float64)
        cos_sum[:, c] = m @ m.sum(axis=0) - np.einsum("ij,ij->i", m, m)
    mean_raw = (cos_sum / (n - 1)) @ a - c0
    best = int(np.argmax(mean_raw))  # first maximum: deterministic
    return best, float(mean_raw[best])


def _entry_pair(space: TasteSpace, members: list[Key], raw: float, i: int, j: int) -> PairEntry:
    score = float(space.calibration.score(raw))
    return PairEntry(members[i], members[j], round(score, 1), raw, label_for(score))


def guild_leaderboard(space: TasteSpace, members: Iterable[Key], visible: Visibility, *, top: int = 10) -> GuildLeaderboard:
    """The `top` most compatible pairs among visible members, and the member closest to the guild's
    overall taste. Empty or one-member guilds give no pairs (and no centre) rather than an error.

    Cache the result under `leaderboard_cache_key("guild", guild_id, members, visible, space.version,
    top=top)`.
    """
    ranked = rankable_members(space, members, visible)
    idx = np.array([space.user_index[m] for m in ranked], dtype=np.int64)
    pairs = tuple(_entry_pair(space, ranked, raw, i, j) for raw, i, j in top_pairs(space, idx, top))
    centre = _centre(space, idx)
    centre_match = None
    if centre is not None:
        score = float(space.calibration.score(centre[1]))
        centre_match = MemberMatch(ranked[centre[0]], round(score, 1), centre[1], label_for(score))
    return GuildLeaderboard(pairs, centre_match, len(ranked), space.version)


def best_matches(space: TasteSpace, member: Key, members: Iterable[Key], visible: Visibility, *,
                 top: int = 10, requester: Key | None = None) -> tuple[MemberMatch, ...]:
    """`member`'s best matches among the visible members of the guild, best first.

    A hidden `member` can only be looked up by themselves (`requester == member`); everyone else gets
    `PrivacyHidden`. Cache under `leaderboard_cache_key("matches", guild_id, members, visible,
    space.version, member=member, top=top)`.
    """
    if requester != member and not is_visible(visible, member):
        raise PrivacyHidden()
    if not space.has_history(member):
        raise NotEnoughHistory("There isn't enough listening history to find matches yet.", detail=repr(member))
    i = space.user_index[member]
    others = [m for m in rankable_members(space, members, visible) if m != member]
    if not others or top <= 0:
        return ()
    j = np.array([space.user_index[m] for m in others], dtype=np.int64)
    raw = raw_scores(space, np.full(j.size, i), j)
    order = np.lexsort((np.arange(j.size), -raw))[:top]
    scores = np.atleast_1d(space.calibration.score(raw[order]))
    return tuple(MemberMatch(others[k], round(float(s), 1), float(raw[k]), label_for(float(s)))
                 for k, s in zip(order, scores, strict=True))
