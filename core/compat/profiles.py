"""Taste profiles: from (user, artist, plays, last_played) rows and artist tags to a `TasteSpace`.

A `TasteSpace` is an immutable artifact (build it in a worker, swap it in atomically) holding, for
every known user, three views of taste that the pair score blends:

* overlap — the user's artists, each weighted by saturated recent plays x IDF (rare artists count
  more: sharing an obscure band says more than sharing the biggest pop star), L2-normalised;
* tags — the user's artists' tag profiles (TF-IDF over artists), summed and compressed by LSA;
* latent — truncated-SVD taste factors of the overlap matrix, which connect people whose artists
  differ but co-occur in other people's histories.

Because every view is a normalised vector, a pair score is a few dot products and a whole guild is
a few matrix products (see `core.compat.leaderboard`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from core.compat.calibration import Calibration
from core.compat.params import CompatParams
from core.errors import InvalidInput
from core.tags import canonical_tag, is_listener_tag, tag_key

Key = Hashable
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class ListenRow:
    """One aggregated listening fact; `last_played` is a UTC datetime, epoch seconds, or None."""

    user: Key
    artist: Key
    plays: float
    last_played: datetime | float | None = None


RowLike = ListenRow | tuple[Key, Key, float] | tuple[Key, Key, float, datetime | float | None]


def _epoch(value: datetime | float | None) -> float:
    if value is None:
        return math.nan
    if isinstance(value, datetime):
        if value.tzinfo is None:  # storage is UTC (README, "Architecture"); naive means UTC
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


def _vocabulary(keys: list[Key]) -> tuple[tuple[Key, ...], np.ndarray]:
    """Sorted vocabulary (deterministic whatever the row order) and the index of every key."""
    uniq = set(keys)
    try:
        vocab = tuple(sorted(uniq))  # type: ignore[type-var]
    except TypeError:  # mixed key types: order by repr, still deterministic
        vocab = tuple(sorted(uniq, key=repr))
    index = {k: i for i, k in enumerate(vocab)}
    return vocab, np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))


def recency_weights(last_played: np.ndarray, now: float | None, params: CompatParams) -> np.ndarray:
    """Weight of each row's plays by age; NaN (unknown) counts fully, future times count fully."""
    last_played = np.asarray(last_played, dtype=np.float64)
    weights = np.ones_like(last_played)
    known = np.isfinite(last_played)
    if not known.any():
        return weights
    if now is None:
        now = float(last_played[known].max())
    age_days = np.clip((now - last_played[known]) / SECONDS_PER_DAY, 0.0, None)
    decay = 0.5 ** (age_days / max(params.recency_half_life_days, 1e-9))
    weights[known] = params.recency_floor + (1.0 - params.recency_floor) * decay
    return weights


def _row_medians(m: sp.csr_matrix) -> np.ndarray:
    """Median of the stored (non-zero) values of every row, vectorised; 0 for empty rows."""
    counts = np.diff(m.indptr)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((m.data, rows))
    data = m.data[order]
    med = np.zeros(m.shape[0])
    nz = counts > 0
    lo = m.indptr[:-1][nz] + (counts[nz] - 1) // 2
    hi = m.indptr[:-1][nz] + counts[nz] // 2
    med[nz] = 0.5 * (data[lo] + data[hi])
    return med


def _normalise_rows(m: sp.csr_matrix | np.ndarray) -> sp.csr_matrix | np.ndarray:
    if sp.issparse(m):
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(inv) @ m)
    norms = np.linalg.norm(m, axis=1)
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return m * inv[:, None]


def _factors(m: sp.csr_matrix, dim: int, power: float, seed: int) -> np.ndarray:
    """Row factors U * S**power of a truncated SVD, L2-normalised; one zero column if impossible."""
    n_rows, n_cols = m.shape
    k = min(dim, min(n_rows, n_cols) - 1)
    if k < 1 or m.nnz == 0:
        return np.zeros((n_rows, 1), dtype=np.float32)
    if min(n_rows, n_cols) <= 4 * dim + 20:  # small: exact and deterministic
        u, s, _ = np.linalg.svd(m.toarray(), full_matrices=False)
        u, s = u[:, :k], s[:k]
    else:
        from sklearn.utils.extmath import randomized_svd

        u, s, _ = randomized_svd(m, k, n_iter=7, random_state=seed)
    z = u * (s ** power)
    return _normalise_rows(z).astype(np.float32)


def _tag_matrix(artists: tuple[Key, ...], artist_tags: Mapping[Key, Mapping[Key, float]] | None,
                tag_names: Mapping[Key, str] | None) -> tuple[sp.csr_matrix, tuple[str, ...]]:
    """Artist x tag TF-IDF (TF = share of the artist's tag applications), rows L2-normalised."""
    n_artists = len(artists)
    if not artist_tags:
        return sp.csr_matrix((n_artists, 0)), ()
    # Spellings of one tag ("synth pop", "synthpop") share a column, named by its shown form, so
    # they count as one tag in the score and a breakdown never lists both.
    tag_keys: dict[str, int] = {}
    shown_names: list[str] = []
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for i, artist in enumerate(artists):
        for tag, count in (artist_tags.get(artist) or {}).items():
            if count is None or not count > 0:
                continue
            name = str(tag_names.get(tag, tag)) if tag_names else str(tag)
            key = tag_key(name)
            if key not in tag_keys:
                tag_keys[key] = len(tag_keys)
                shown_names.append(canonical_tag(name))
            rows.append(i)
            cols.append(tag_keys[key])
            vals.append(float(count))
    if not vals:
        return sp.csr_matrix((n_artists, 0)), ()
    m = sp.csr_matrix((vals, (rows, cols)), shape=(n_artists, len(tag_keys)))
    m.sum_duplicates()
    totals = np.asarray(m.sum(axis=1)).ravel()
    m = sp.csr_matrix(sp.diags(np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)) @ m)
    tagged = int((totals > 0).sum())
    tag_df = np.bincount(m.indices, minlength=m.shape[1])
    tag_idf = np.log((tagged + 1.0) / (tag_df + 0.5))
    m = sp.csr_matrix(m @ sp.diags(tag_idf))
    return _normalise_rows(m), tuple(shown_names)


@dataclass(frozen=True, eq=False)
class TasteSpace:
    """Everything the pair score and the leaderboards need, for every known user. Immutable."""

    params: CompatParams
    users: tuple[Key, ...]
    user_index: dict[Key, int]
    artists: tuple[Key, ...]
    artist_index: dict[Key, int]
    artist_names: tuple[str, ...]
    plays: sp.csr_matrix  # raw plays (for display)
    weights: sp.csr_matrix  # saturated, recency-weighted plays (no IDF): "how much they love it"
    idf: np.ndarray
    overlap: sp.csr_matrix  # weights x IDF, rows L2-normalised, float32
    tag_names: tuple[str, ...]
    artist_tags: sp.csr_matrix  # artist x tag TF-IDF, rows normalised
    tag_profile: sp.csr_matrix  # user x tag, rows normalised (exact, for the breakdown)
    tags_lsa: np.ndarray  # user x tag_dim, rows normalised, float32 (for the score)
    latent: np.ndarray  # user x latent_dim, rows normalised, float32
    n_artists: np.ndarray
    total_plays: np.ndarray
    calibration: Calibration
    version: str

    def index_of(self, user: Key) -> int | None:
        return self.user_index.get(user)

    def has_history(self, user: Key) -> bool:
        i = self.user_index.get(user)
        return i is not None and int(self.n_artists[i]) >= self.params.min_artists

    @cached_property
    def shown_tags(self) -> np.ndarray:
        """Boolean per tag column: may it be shown to a person? (The score uses every tag.)"""
        return np.array([is_listener_tag(name) for name in self.tag_names], dtype=bool)

    @cached_property
    def item_cosine_basis(self) -> sp.csc_matrix:
        """The overlap matrix with columns L2-normalised: X^T X is then item-item cosine."""
        col = self.overlap.tocsc().astype(np.float64)
        norms = np.sqrt(np.asarray(col.multiply(col).sum(axis=0)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csc_matrix(col @ sp.diags(inv))

    @cached_property
    def component_scales(self) -> tuple[np.ndarray, float]:
        """(a_c, c0) with raw = sum_c a_c * cos_c - c0: the z-scored blend as a linear form."""
        cal = self.calibration
        w = np.array([self.params.w_overlap, self.params.w_tags, self.params.w_latent])
        std = np.asarray(cal.component_std)
        a = np.divide(w, std, out=np.zeros(3), where=std > 1e-9)
        return a, float(np.dot(a, cal.component_mean))


def build_taste_space(rows: Iterable[RowLike], artist_tags: Mapping[Key, Mapping[Key, float]] | None = None,
                      *, artist_names: Mapping[Key, str] | None = None,
                      tag_names: Mapping[Key, str] | None = None, now: datetime | float | None = None,
                      params: CompatParams | None = None, calibration: Calibration | None = None,
                      version: str | None = None) -> TasteSpace:
    """Build a `TasteSpace` from listening rows (`ListenRow` or `(user, artist, plays[, last_played])`).

    Several rows for one (user, artist) are summed, each decayed by its own recency, so track-level or
    per-period rows work as well as aggregated ones. `artist_tags` maps artist -> {tag: count}; tag keys
    may be ids (then `tag_names` names them) or names. Pass a persisted `calibration` to keep scores
    comparable across rebuilds; otherwise one is sampled from this population.
    """
    users: list[Key] = []
    artists: list[Key] = []
    plays: list[float] = []
    stamps: list[float] = []
    for row in rows:
        if isinstance(row, ListenRow):
            u, a, p, t = row.user, row.artist, row.plays, row.last_played
        else:
            u, a, p = row[0], row[1], row[2]
            t = row[3] if len(row) > 3 else None  # type: ignore[misc]
        users.append(u)
        artists.append(a)
        plays.append(p)
        stamps.append(_epoch(t))
    user_vocab, ui = _vocabulary(users)
    artist_vocab, ai = _vocabulary(artists)
    return build_taste_space_arrays(
        user_vocab, ui, artist_vocab, ai, np.asarray(plays, dtype=np.float64), np.asarray(stamps, dtype=np.float64),
        artist_tags, artist_names=artist_names, tag_names=tag_names, now=now, params=params,
        calibration=calibration, version=version)


def build_taste_space_arrays(user_vocab: tuple[Key, ...], user_idx: np.ndarray, artist_vocab: tuple[Key, ...],
                             artist_idx: np.ndarray, plays: np.ndarray, last_played: np.ndarray | None,
                             artist_tags: Mapping[Key, Mapping[Key, float]] | None = None, *,
                             artist_names: Mapping[Key, str] | None = None,
                             tag_names: Mapping[Key, str] | None = None, now: datetime | float | None = None,
                             params: CompatParams | None = None, calibration: Calibration | None = None,
                             version: str | None = None) -> TasteSpace:
    """The vectorised core of `build_taste_space` (used directly by the evaluation and benchmarks).

    `user_idx`/`artist_idx` index into the vocabularies; `last_played` holds epoch seconds or NaN.
    """
    params = params or CompatParams()
    plays = np.asarray(plays, dtype=np.float64)
    if plays.size and (not np.all(np.isfinite(plays)) or plays.min() < 0):
        raise InvalidInput("Play counts must be finite, non-negative numbers.")
    n_users, n_artists = len(user_vocab), len(artist_vocab)
    if last_played is None:
        last_played = np.full(plays.shape, np.nan)
    keep = plays > 0
    user_idx, artist_idx = np.asarray(user_idx)[keep], np.asarray(artist_idx)[keep]
    plays, last_played = plays[keep], np.asarray(last_played, dtype=np.float64)[keep]
    effective = plays * recency_weights(last_played, None if now is None else _epoch(now), params)

    shape = (n_users, n_artists)
    raw_plays = sp.csr_matrix((plays, (user_idx, artist_idx)), shape=shape)
    raw_plays.sum_duplicates()
    eff = sp.csr_matrix((effective, (user_idx, artist_idx)), shape=shape)
    eff.sum_duplicates()

    # BM25-like saturation relative to each user's own median effective plays.
    med = _row_medians(eff)
    counts = np.diff(eff.indptr)
    denom = params.bm25_k * np.repeat(med, counts)
    sat = eff.copy()
    sat.data = eff.data / (eff.data + np.where(denom > 0, denom, 1.0))

    df = np.bincount(sat.indices, minlength=n_artists).astype(np.float64)
    idf = np.log((n_users + 1.0) / (df + 0.5))
    overlap = _normalise_rows(sp.csr_matrix(sat @ sp.diags(idf))).astype(np.float32)
    latent = _factors(overlap, params.latent_dim, params.latent_power, params.seed)

    tag_matrix, names_of_tags = _tag_matrix(artist_vocab, artist_tags, tag_names)
    if tag_matrix.shape[1]:
        tag_profile = _normalise_rows(sp.csr_matrix(sat @ tag_matrix))
        tags_lsa = _factors(tag_profile, params.tag_dim, 1.0, params.seed)
    else:
        tag_profile = sp.csr_matrix((n_users, 0))
        tags_lsa = np.zeros((n_users, 1), dtype=np.float32)

    names = tuple(str(artist_names.get(a, a)) if artist_names else str(a) for a in artist_vocab)
    n_art = counts.astype(np.int64)
    total = np.asarray(raw_plays.sum(axis=1)).ravel()
    if version is None:
        h = hashlib.sha256(params.token().encode())
        h.update(repr(user_vocab).encode())
        h.update(repr(artist_vocab).encode())
        for arr in (eff.indptr, eff.indices, eff.data):
            h.update(np.ascontiguousarray(arr).tobytes())
        version = h.hexdigest()[:16]

    space = TasteSpace(
        params=params, users=tuple(user_vocab), user_index={u: i for i, u in enumerate(user_vocab)},
        artists=tuple(artist_vocab), artist_index={a: i for i, a in enumerate(artist_vocab)},
        artist_names=names, plays=raw_plays, weights=sat, idf=idf, overlap=overlap, tag_names=names_of_tags,
        artist_tags=tag_matrix, tag_profile=tag_profile, tags_lsa=tags_lsa, latent=latent, n_artists=n_art,
        total_plays=total, calibration=calibration or _placeholder_calibration(params), version=version)
    if calibration is None:
        from core.compat.scoring import calibrate

        space = _with_calibration(space, calibrate(space))
    elif calibration.params_token != params.token():
        raise InvalidInput("The saved compatibility calibration was made with other settings.",
                           detail=f"{calibration.params_token} != {params.token()}")
    return space


def _placeholder_calibration(params: CompatParams) -> Calibration:
    return Calibration.from_sample(np.zeros(0), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), params.token())


def _with_calibration(space: TasteSpace, calibration: Calibration) -> TasteSpace:
    from dataclasses import replace

    return replace(space, calibration=calibration)
