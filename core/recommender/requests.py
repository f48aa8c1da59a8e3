"""What a caller asks of the engine: the user's current history and the controls of one request.

Both are plain data so the DB layer (which knows listens, feedback and what was shown when) can
build them without knowing how scoring works, and the engine stays free of SQL and clocks.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from core.recommender.interactions import (
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_RECENCY_FLOOR,
    _ages_in_days,
    recency_weight,
)


@dataclass(frozen=True)
class UserHistory:
    """A user's listens as of now: item ids with strengths (recency-weighted play counts)."""

    items: Sequence[object]
    strengths: Sequence[float]

    @classmethod
    def from_rows(cls, items: Sequence[object], play_counts: Sequence[float],
                  last_played_at: Sequence[datetime | float | None] | None = None, *, now: datetime | None = None,
                  half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
                  recency_floor: float = DEFAULT_RECENCY_FLOOR) -> UserHistory:
        """Same strength formula as `Interactions.from_arrays`, so training and serving agree."""
        plays = np.asarray(play_counts, dtype=np.float64)
        if last_played_at is not None:
            plays = plays * recency_weight(_ages_in_days(last_played_at, now), half_life_days, recency_floor)
        return cls(tuple(items), tuple(plays.tolist()))


@dataclass(frozen=True)
class RecommendRequest:
    """Controls of one recommendation request.

    - count: how many items to return.
    - discovery: 0 = familiar favourites-adjacent picks .. 1 = deep cuts (a popularity penalty).
    - tags: keep only items carrying any of these tags/genres (empty = no filter).
    - max_per_artist: at most N items by the same artist (album/track lists); None = no cap.
    - include_known: allow items already in the user's history (off for discovery lists).
    - recently_shown: ids shown to the user inside the no-repeat window (the caller picks the
      window); they are skipped unless also in `liked`.
    - liked / disliked: thumbs-up pull an item's neighbours up; thumbs-down items never return and
      push their neighbours down.
    - exclude: any other ids to leave out.
    - boost_tags: /tune "more X": items carrying any of these tags move up the list (their rank
      position is multiplied by `BOOST_FACTOR` in the engine); nothing is dropped for them.
    - avoid_tags: /tune "less X": items for which any of these tags is a main tag (at least a fifth of
      their tag weight) are left out, unless the same tag is asked for in `tags`.
    Tag spellings with a hyphen or a space are both accepted for boosts and avoids.
    """

    count: int = 10
    discovery: float = 0.0
    tags: tuple[str, ...] = ()
    max_per_artist: int | None = None
    include_known: bool = False
    recently_shown: Collection[object] = field(default_factory=tuple)
    liked: Collection[object] = field(default_factory=tuple)
    disliked: Collection[object] = field(default_factory=tuple)
    exclude: Collection[object] = field(default_factory=tuple)
    with_evidence: bool = True
    boost_tags: tuple[str, ...] = ()
    avoid_tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if not 0.0 <= self.discovery <= 1.0:
            raise ValueError("discovery must be between 0 and 1")
        if self.max_per_artist is not None and self.max_per_artist < 1:
            raise ValueError("max_per_artist must be at least 1")
