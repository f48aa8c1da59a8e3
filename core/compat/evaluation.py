"""Offline check that the score means something: can it tell HetRec friend pairs from the rest?

Over ALL unordered pairs of HetRec's 1,892 users (~1.79M), each formula's score is ranked and the AUC
says how often a random friend pair outranks a random non-friend pair. The friend graph is only ever
the label, never a feature; from user_taggedartists.dat only artist-level tag counts are used.

Peers scored in the same run:
* shared_over_own — |shared artists| / |own artists|, what Last.fm bots show. It is asymmetric, so an
  unordered pair gets the mean of both directions.
* cosine_log_plays — cosine of log(1 + plays) vectors.

Tuning protocol: users are split into two halves (seed 0). Every parameter choice of `CompatParams`
(BM25 k, latent dim and power, blend weights) was compared on pairs *within half A only*; half B's
pairs are held out and reported by `split_aucs` so the difference can be seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.compat.leaderboard import pair_matrix
from core.compat.params import CompatParams
from core.compat.profiles import build_taste_space_arrays
from core.datasets import (
    HETREC_DIRNAME,
    find_hetrec_dir,
    read_artist_names,
    read_artist_tag_counts,
    read_friend_pairs,
    read_tag_names,
    read_user_artists,
)
from core.errors import ConfigError

SPLIT_SEED = 0


@dataclass(frozen=True)
class HetRecData:
    users: tuple[int, ...]
    artists: tuple[int, ...]
    user_idx: np.ndarray
    artist_idx: np.ndarray
    plays: np.ndarray
    artist_tags: dict[int, dict[int, int]]
    tag_names: dict[int, str]
    artist_names: dict[int, str]
    friends: set[tuple[int, int]]


@dataclass(frozen=True)
class CompatEvalResult:
    auc: dict[str, float]
    pairs: int
    friend_pairs: int
    split_auc: dict[str, dict[str, float]] = field(default_factory=dict)  # {"A (tuning)": {...}, "B (held out)": ...}
    seconds: float = 0.0

    def to_json_dict(self) -> dict[str, object]:
        return {"auc": {k: round(v, 4) for k, v in self.auc.items()}, "pairs": self.pairs,
                "friend_pairs": self.friend_pairs}


def load_hetrec(data_dir: Path | str | None) -> HetRecData:
    """Read the files the evaluation needs; `ConfigError` naming the folder when they are missing."""
    if data_dir is not None:  # an explicit folder must hold the files: never silently use another copy
        base = Path(data_dir)
        found = next((c for c in (base, base / HETREC_DIRNAME) if (c / "user_artists.dat").is_file()), None)
    else:
        found = find_hetrec_dir()
    if found is None:
        raise ConfigError(f"No HetRec files (user_artists.dat…) found in {data_dir or 'the default locations'}. "
                          "Pass --data-dir DIR or set SONANCE_DATASET_DIR.")
    table = read_user_artists(found / "user_artists.dat")
    users, ui = np.unique(table.users, return_inverse=True)
    artists, ai = np.unique(table.artists, return_inverse=True)
    tags = read_artist_tag_counts(found / "user_taggedartists.dat") if (found / "user_taggedartists.dat").is_file() else {}
    tag_names = read_tag_names(found / "tags.dat") if (found / "tags.dat").is_file() else {}
    names = {k: v[0] for k, v in read_artist_names(found / "artists.dat").items()} \
        if (found / "artists.dat").is_file() else {}
    friends_file = found / "user_friends.dat"
    if not friends_file.is_file():
        raise ConfigError(f"{friends_file} is missing: the evaluation needs the friend pairs as labels.")
    return HetRecData(tuple(int(u) for u in users), tuple(int(a) for a in artists), ui, ai, table.weights,
                      tags, tag_names, names, read_friend_pairs(friends_file))


def half_mask(user_idx: np.ndarray, seed: int) -> np.ndarray:
    """Keep a random half (rounded up) of every user's artists: simulated thin histories."""
    rng = np.random.default_rng(seed)
    noise = rng.random(user_idx.size)
    order = np.lexsort((noise, user_idx))
    counts = np.bincount(user_idx)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(user_idx.size, dtype=np.int64)
    rank[order] = np.arange(user_idx.size) - np.repeat(starts, counts)
    return rank < (counts[user_idx] + 1) // 2


def _cosine_matrix(m: sp.csr_matrix) -> np.ndarray:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    mn = sp.csr_matrix(sp.diags(inv) @ m)
    return (mn @ mn.T).toarray()


def peer_matrices(n_users: int, n_artists: int, ui: np.ndarray, ai: np.ndarray, plays: np.ndarray) -> dict[str, np.ndarray]:
    """The two peer formulas as full pair matrices."""
    p = sp.csr_matrix((plays, (ui, ai)), shape=(n_users, n_artists))
    p.sum_duplicates()
    binary = sp.csr_matrix((np.ones(p.nnz), p.indices, p.indptr), shape=p.shape)
    shared = (binary @ binary.T).toarray()
    own = np.asarray(binary.sum(axis=1)).ravel()
    inv = np.divide(1.0, own, out=np.zeros_like(own), where=own > 0)
    shared_over_own = 0.5 * (shared * inv[:, None] + shared * inv[None, :])
    logp = p.copy()
    logp.data = np.log1p(logp.data)
    return {"shared_over_own": shared_over_own, "cosine_log_plays": _cosine_matrix(logp)}


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def evaluate_friend_auc(data_dir: Path | str | None = None, *, half_seed: int | None = None,
                        params: CompatParams | None = None, with_split: bool = True) -> CompatEvalResult:
    """AUC of Sonance's score and the two peers at separating friend pairs from all other pairs."""
    import time

    start = time.perf_counter()
    data = load_hetrec(data_dir)
    ui, ai, plays = data.user_idx, data.artist_idx, data.plays
    if half_seed is not None:
        keep = half_mask(ui, half_seed)
        ui, ai, plays = ui[keep], ai[keep], plays[keep]
    n = len(data.users)
    space = build_taste_space_arrays(data.users, ui, data.artists, ai, plays, None, data.artist_tags,
                                     artist_names=data.artist_names, tag_names=data.tag_names, params=params)
    matrices = {"sonance": pair_matrix(space, np.arange(n))}
    matrices.update(peer_matrices(n, len(data.artists), ui, ai, plays))

    pos = {u: i for i, u in enumerate(data.users)}
    friend = np.zeros((n, n), dtype=bool)
    for a, b in data.friends:
        if a in pos and b in pos:
            friend[pos[a], pos[b]] = friend[pos[b], pos[a]] = True
    iu = np.triu_indices(n, 1)
    labels = friend[iu]
    auc = {name: _auc(labels, m[iu]) for name, m in matrices.items()}
    split: dict[str, dict[str, float]] = {}
    if with_split:
        group_a = np.zeros(n, dtype=bool)
        group_a[np.random.default_rng(SPLIT_SEED).permutation(n)[: n // 2]] = True
        for title, mask in (("A (tuning)", group_a[iu[0]] & group_a[iu[1]]),
                            ("B (held out)", ~group_a[iu[0]] & ~group_a[iu[1]])):
            split[title] = {name: _auc(labels[mask], m[iu][mask]) for name, m in matrices.items()}
    return CompatEvalResult(auc, int(labels.size), int(labels.sum()), split, time.perf_counter() - start)
