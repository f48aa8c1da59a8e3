"""Taste compatibility: symmetric, calibrated pair scores with a breakdown, and guild leaderboards.

Pure computation (numpy/scipy): build a `TasteSpace` once from listening rows and artist tags (in a
worker), then score pairs and rank guilds against it. See `profiles`, `scoring`, `leaderboard`.
"""

from core.compat.calibration import LABELS, Calibration, label_for
from core.compat.leaderboard import (
    GuildLeaderboard,
    MemberMatch,
    PairEntry,
    best_matches,
    guild_leaderboard,
    leaderboard_cache_key,
    rankable_members,
)
from core.compat.params import CompatParams
from core.compat.profiles import ListenRow, TasteSpace, build_taste_space, build_taste_space_arrays
from core.compat.scoring import compare, pair_score

__all__ = [
    "LABELS",
    "Calibration",
    "CompatParams",
    "GuildLeaderboard",
    "ListenRow",
    "MemberMatch",
    "PairEntry",
    "TasteSpace",
    "best_matches",
    "build_taste_space",
    "build_taste_space_arrays",
    "compare",
    "guild_leaderboard",
    "label_for",
    "leaderboard_cache_key",
    "pair_score",
    "rankable_members",
]
