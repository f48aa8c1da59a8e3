"""The pair score and its breakdown.

raw(a, b) = sum over components c of w_c * (cos_c(a, b) - mean_c) / std_c, for c in overlap, tags,
latent. Z-scoring puts the three cosines on one scale before the fixed blend; since it is affine the
whole score stays a sum of dot products, which is what lets guild leaderboards be matrix products
that agree exactly with this pair function. The calibrated 0-100 score is the percentile of `raw`
among sampled pairs of known users. Everything here is symmetric in (a, b) by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import numpy as np

from core.compat.calibration import Calibration, label_for
from core.compat.profiles import Key, TasteSpace
from core.domain import Bridge, Compatibility, SharedArtist, Weighted
from core.errors import InvalidInput, NotEnoughHistory, PrivacyHidden

Visibility = Callable[[Any], bool] | Collection[Any]
COMPONENTS = ("overlap", "tags", "latent")


def is_visible(visible: Visibility, member: Key) -> bool:
    """`visible` is either a predicate or a collection of members who may be shown."""
    return bool(visible(member)) if callable(visible) else member in visible


def component_cosines(space: TasteSpace, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosines (overlap, tags, latent) for the user-index pairs (i[k], j[k]); shape (len(i), 3)."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    out = np.empty((i.size, 3), dtype=np.float64)
    if i.size == 0:
        return out
    out[:, 0] = np.asarray(space.overlap[i].multiply(space.overlap[j]).sum(axis=1), dtype=np.float64).ravel()
    out[:, 1] = np.einsum("ij,ij->i", space.tags_lsa[i].astype(np.float64), space.tags_lsa[j].astype(np.float64))
    out[:, 2] = np.einsum("ij,ij->i", space.latent[i].astype(np.float64), space.latent[j].astype(np.float64))
    return out


def raw_from_components(space: TasteSpace, cos: np.ndarray) -> np.ndarray:
    a, c0 = space.component_scales
    return cos @ a - c0


def raw_scores(space: TasteSpace, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Uncalibrated blend for index pairs; vectorised (used by calibration and tests)."""
    return raw_from_components(space, component_cosines(space, i, j))


def eligible_indices(space: TasteSpace) -> np.ndarray:
    return np.flatnonzero(space.n_artists >= space.params.min_artists)


def calibrate(space: TasteSpace, n_pairs: int | None = None) -> Calibration:
    """Sample pairs of known users (all pairs when few), record component stats and raw quantiles."""
    params = space.params
    n_pairs = params.calibration_pairs if n_pairs is None else n_pairs
    idx = eligible_indices(space)
    m = idx.size
    total = m * (m - 1) // 2
    if total == 0:
        return Calibration.from_sample(np.zeros(0), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), params.token())
    if total <= n_pairs:
        a, b = np.triu_indices(m, 1)
    else:
        rng = np.random.default_rng(params.seed)
        a = rng.integers(0, m, size=n_pairs)
        b = (a + rng.integers(1, m, size=n_pairs)) % m  # uniform over b != a
    cos = component_cosines(space, idx[a], idx[b])
    mean = cos.mean(axis=0)
    std = cos.std(axis=0)
    w = np.array([params.w_overlap, params.w_tags, params.w_latent])
    scale = np.divide(w, std, out=np.zeros(3), where=std > 1e-9)
    raw = cos @ scale - float(np.dot(scale, mean))
    return Calibration.from_sample(raw, tuple(mean.tolist()), tuple(std.tolist()),  # type: ignore[arg-type]
                                   params.token())


def user_confidence(space: TasteSpace, i: int) -> float:
    """0..1: how much a history can say. Few artists or few plays -> low (saturating exponentials)."""
    p = space.params
    artists = float(space.n_artists[i])
    plays = float(space.total_plays[i])
    return float((1.0 - np.exp(-artists / p.confidence_artist_scale)) * (1.0 - np.exp(-plays / p.confidence_play_scale)))


def _require(space: TasteSpace, user: Key, visible: Visibility | None) -> int:
    if visible is not None and not is_visible(visible, user):
        raise PrivacyHidden()
    i = space.index_of(user)
    if i is None or not space.has_history(user):
        raise NotEnoughHistory("There isn't enough listening history to compare yet: both people need "
                               "some scrobbles synced first.", detail=f"user {user!r}")
    return i


def pair_score(space: TasteSpace, a: Key, b: Key, *, visible: Visibility | None = None) -> tuple[float, float]:
    """(calibrated 0..100, raw) for two users: the cheap path without a breakdown."""
    i, j = _indices(space, a, b, visible)
    raw = float(raw_scores(space, np.array([i]), np.array([j]))[0])
    return float(space.calibration.score(raw)), raw


def _indices(space: TasteSpace, a: Key, b: Key, visible: Visibility | None) -> tuple[int, int]:
    if a == b:
        raise InvalidInput("Pick someone other than yourself: you're always 100% compatible with you.")
    return _require(space, a, visible), _require(space, b, visible)


def compare(space: TasteSpace, a: Key, b: Key, *, visible: Visibility | None = None, top_artists: int = 8,
            top_tags: int = 8, n_bridges: int = 3, n_differences: int = 5) -> Compatibility:
    """Symmetric compatibility of users `a` and `b` with its breakdown.

    `visible` (predicate or collection), when given, must admit both users (include the requester);
    a hidden one raises `PrivacyHidden` before anything about them is computed. Raises
    `InvalidInput` for a self-comparison and `NotEnoughHistory` for an unknown or empty history.
    """
    i, j = _indices(space, a, b, visible)
    cos = component_cosines(space, np.array([i]), np.array([j]))[0]
    raw = float(raw_from_components(space, cos[None, :])[0])
    score = float(space.calibration.score(raw))
    confidence = min(user_confidence(space, i), user_confidence(space, j))
    different_a, different_b = _tag_differences(space, i, j, n_differences)
    return Compatibility(
        score=round(score, 1), label=label_for(score), raw=raw, confidence=round(confidence, 3),
        shared_artists=_shared_artists(space, i, j, top_artists),
        shared_tags=_shared_tags(space, i, j, top_tags),
        bridges=_bridges(space, i, j, "a", n_bridges) + _bridges(space, j, i, "b", n_bridges),
        differences_a=_differences(space, i, j, n_differences),
        differences_b=_differences(space, j, i, n_differences),
        components={name: float(c) for name, c in zip(COMPONENTS, cos, strict=True)}
        | {"shared_count": float(_row_set(space, i).intersection(_row_set(space, j)).__len__())},
        different_tags_a=different_a, different_tags_b=different_b,
    )


# --- breakdown helpers ---------------------------------------------------------------------------
def _row(space: TasteSpace, m: Any, i: int) -> tuple[np.ndarray, np.ndarray]:
    s, e = m.indptr[i], m.indptr[i + 1]
    return m.indices[s:e], m.data[s:e]


def _row_set(space: TasteSpace, i: int) -> set[int]:
    return set(_row(space, space.overlap, i)[0].tolist())


def _shared_artists(space: TasteSpace, i: int, j: int, top: int) -> tuple[SharedArtist, ...]:
    """Shared artists ranked by their contribution to the overlap cosine (so rare ones lead)."""
    ci, vi = _row(space, space.overlap, i)
    cj, vj = _row(space, space.overlap, j)
    common, ii, jj = np.intersect1d(ci, cj, assume_unique=True, return_indices=True)
    if common.size == 0:
        return ()
    contrib = vi[ii].astype(np.float64) * vj[jj]
    total = contrib.sum()
    order = np.lexsort((common, -contrib))[:top]
    plays = space.plays
    return tuple(
        SharedArtist(name=space.artist_names[common[k]], plays_a=float(plays[i, common[k]]),
                     plays_b=float(plays[j, common[k]]), weight=round(float(contrib[k] / total), 4))
        for k in order)


def _shared_tags(space: TasteSpace, i: int, j: int, top: int) -> tuple[Weighted, ...]:
    if not space.tag_names:
        return ()
    prod = space.tag_profile[i].multiply(space.tag_profile[j]).tocoo()
    if prod.nnz == 0:
        return ()
    total = prod.data.sum()
    shown = np.flatnonzero(space.shown_tags[prod.col])  # listener words only ("seen live" is not taste)
    order = shown[np.lexsort((prod.col[shown], -prod.data[shown]))][:top]
    return tuple(Weighted(space.tag_names[prod.col[k]], round(float(prod.data[k] / total), 4)) for k in order)


def _tag_differences(space: TasteSpace, i: int, j: int, top: int) -> tuple[tuple[Weighted, ...], tuple[Weighted, ...]]:
    """Tags far more present in one profile than the other (each side's top positive gaps)."""
    if not space.tag_names:
        return (), ()
    diff = (space.tag_profile[i] - space.tag_profile[j]).toarray().ravel()

    def side(values: np.ndarray) -> tuple[Weighted, ...]:
        pos = np.flatnonzero((values > 0) & space.shown_tags)
        order = pos[np.lexsort((pos, -values[pos]))][:top]
        return tuple(Weighted(space.tag_names[k], round(float(values[k]), 4)) for k in order)

    return side(diff), side(-diff)


def _differences(space: TasteSpace, i: int, j: int, top: int) -> tuple[Weighted, ...]:
    """Artists `i` loves most (share of their saturated listening) that `j` has never played."""
    ci, vi = _row(space, space.weights, i)
    cj, _ = _row(space, space.weights, j)
    mask = ~np.isin(ci, cj)
    if not mask.any():
        return ()
    cols, vals = ci[mask], vi[mask] / vi.sum()
    order = np.lexsort((cols, -vals))[:top]
    return tuple(Weighted(space.artist_names[cols[k]], round(float(vals[k]), 4)) for k in order)


def bridge_scores(space: TasteSpace, j: int) -> np.ndarray:
    """Item-item (co-occurrence cosine) affinity of user `j` for every artist: X^T (X w_j).

    A two-step walk user -> their artists -> people who play them -> those people's artists, with
    column-normalised overlap weights so each step is a cosine; cheap (two sparse mat-vecs).
    """
    basis = space.item_cosine_basis
    cols, vals = _row(space, space.weights, j)
    w = np.zeros(basis.shape[1])
    w[cols] = vals
    item_sim_sum = basis.T @ (basis @ w)
    return np.asarray(item_sim_sum).ravel()


def _bridges(space: TasteSpace, i: int, j: int, side: str, top: int) -> tuple[Bridge, ...]:
    """What `i` loves that `j` is most likely to love next: i's top artists j hasn't played, ranked
    by j's item-item affinity; `likelihood` is the share of the artists j hasn't played *that j's
    taste reaches at all* (affinity > 0) with a lower affinity, 0..1 ("top 1 - likelihood").

    Unreached artists are left out of the scale on purpose: in a real catalogue they are nearly all
    of it, so counting them put every reachable bridge in the "top 1%".
    """
    ci, vi = _row(space, space.weights, i)
    cj, _ = _row(space, space.weights, j)
    mask = ~np.isin(ci, cj)
    if not mask.any():
        return ()
    cand, cand_love = ci[mask], vi[mask]
    favourites = cand[np.lexsort((cand, -cand_love))][:25]
    affinity = bridge_scores(space, j)
    unheard = np.ones(affinity.size, dtype=bool)
    unheard[cj] = False
    pool = np.sort(affinity[unheard & (affinity > 0)])
    if pool.size == 0:
        return ()
    # Share of the pool strictly below: 1 - likelihood is then the share at or above (itself
    # included), so the best of 8 reachable artists is "top 13%", not "top 1%".
    pct = np.searchsorted(pool, affinity[favourites], side="left") / pool.size
    keep = affinity[favourites] > 0
    favourites, pct = favourites[keep], pct[keep]
    order = np.lexsort((favourites, -affinity[favourites]))[:top]
    return tuple(Bridge(name=space.artist_names[favourites[k]], from_user=side, likelihood=round(float(pct[k]), 3))
                 for k in order)
