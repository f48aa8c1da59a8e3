"""The knobs of the compatibility engine, in one frozen place.

Every default below was chosen on principle or on HetRec users of *one* random half (seed 0) and
checked on the other half, never on the pairs the AUC is reported on alone (see
`core.compat.evaluation`). Keeping them here means a persisted `Calibration` can record exactly which
formula produced its raw scores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class CompatParams:
    """Parameters of the pair score; `token()` goes into cache keys and calibration files."""

    # BM25-like saturation of plays: w = p / (p + k * median plays of that user). Relative to the
    # user's own median so a heavy and a light listener weigh their favourites alike, and saturating
    # so one artist played 10,000 times cannot dominate the whole profile.
    bm25_k: float = 2.0
    # Recency: a play of age t counts floor + (1 - floor) * 0.5 ** (t / half_life). The floor keeps
    # the whole history in play (old loves still say something about taste) while recent listening
    # leads. Rows without a last-played time count fully (HetRec has none).
    recency_half_life_days: float = 180.0
    recency_floor: float = 0.25
    # Latent taste factors: truncated SVD of the IDF-weighted, row-normalised BM25 matrix. Users are
    # compared by U * S**power: power 1 is plain LSA, power 2 is second-order ("people who resemble
    # the same people") similarity; 1.5 sits between and was best on the tuning half (32 dims beat 48
    # there on full histories).
    latent_dim: int = 32
    latent_power: float = 1.5
    # Tag profiles are compressed (LSA) to this many dimensions so guild leaderboards stay matrix
    # products of a few dozen columns.
    tag_dim: int = 48
    # Blend of the z-scored component cosines (overlap, tags, latent). On the tuning half, tags helped
    # thin (halved) histories (w 0.25 best) and slightly hurt full ones (w 0 best): 0.1 is the compromise.
    w_overlap: float = 1.0
    w_tags: float = 0.1
    w_latent: float = 1.0
    # A user needs this many artists with plays to be compared at all.
    min_artists: int = 1
    # Confidence: 1 - exp(-artists / scale) * ... (see `core.compat.scoring.user_confidence`).
    confidence_artist_scale: float = 20.0
    confidence_play_scale: float = 100.0
    # Calibration: how many random pairs of known users to sample for the percentile scale.
    calibration_pairs: int = 20_000
    seed: int = 0

    def token(self) -> str:
        """A short stable string naming this parameter set (for cache keys and calibration files)."""
        import hashlib
        import json

        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
