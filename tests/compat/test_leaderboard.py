"""Guild leaderboards: equal to a brute-force pair loop, privacy before ranking, edge cases, keys."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core.compat import best_matches, guild_leaderboard, leaderboard_cache_key, pair_score
from core.compat import leaderboard as lb
from core.domain import EARLY_READ_CONFIDENCE, is_early_read
from core.errors import NotEnoughHistory, PrivacyHidden

MEMBERS = [f"u{i}" for i in range(40)]


def brute_force_pairs(space, members):
    scored = [(pair_score(space, a, b)[1], a, b) for a, b in itertools.combinations(members, 2)]
    return sorted(scored, key=lambda t: -t[0])


@pytest.mark.parametrize("dense_share", [0.04, 1.0, 0.0])  # mixed, all-sparse, all-dense overlap columns
def test_top_pairs_equal_brute_force(world, monkeypatch, dense_share):
    monkeypatch.setattr(lb, "DENSE_SHARE", dense_share)
    monkeypatch.setattr(lb, "BLOCK_ROWS", 7)  # exercise several blocks
    board = guild_leaderboard(world, MEMBERS, set(MEMBERS), top=15)
    expected = brute_force_pairs(world, MEMBERS)[:15]
    got = [(p.raw, p.a, p.b) for p in board.top_pairs]
    assert len(got) == 15
    for (raw_g, a_g, b_g), (raw_e, _, _) in zip(got, expected, strict=True):
        assert raw_g == pytest.approx(raw_e, abs=1e-4)
        assert pair_score(world, a_g, b_g)[1] == pytest.approx(raw_g, abs=1e-4)


def test_centre_is_highest_mean_compatibility(world):
    board = guild_leaderboard(world, MEMBERS[:12], set(MEMBERS))
    means = {m: np.mean([pair_score(world, m, o)[1] for o in MEMBERS[:12] if o != m]) for m in MEMBERS[:12]}
    assert board.centre is not None
    assert board.centre.member == max(means, key=means.get)
    assert board.centre.raw == pytest.approx(means[board.centre.member], abs=1e-6)


def test_best_matches_equal_brute_force(world):
    got = best_matches(world, "u0", MEMBERS, set(MEMBERS), top=5)
    expected = sorted(((pair_score(world, "u0", m)[1], m) for m in MEMBERS if m != "u0"), reverse=True)[:5]
    assert [m.member for m in got] == [m for _, m in expected]
    assert all(0 <= m.score <= 100 for m in got)


def test_hidden_members_never_appear_or_influence(world):
    hidden = {"u3", "u6", "u9"}
    visible = set(MEMBERS) - hidden
    board = guild_leaderboard(world, MEMBERS, visible.__contains__, top=50)
    shown = {p.a for p in board.top_pairs} | {p.b for p in board.top_pairs} | {board.centre.member}
    assert not shown & hidden
    assert board.ranked_members == len(MEMBERS) - len(hidden)
    # identical to a guild where the hidden members were never members at all
    without = guild_leaderboard(world, sorted(visible), visible, top=50)
    assert board == without
    matches = best_matches(world, "u0", MEMBERS, visible, top=50)
    assert not {m.member for m in matches} & hidden
    assert leaderboard_cache_key("guild", 1, MEMBERS, visible, world.version) == \
        leaderboard_cache_key("guild", 1, sorted(visible), visible, world.version)


def test_hidden_subject_of_matches(world):
    visible = set(MEMBERS) - {"u3"}
    with pytest.raises(PrivacyHidden):
        best_matches(world, "u3", MEMBERS, visible, requester="u0")
    own = best_matches(world, "u3", MEMBERS, visible, requester="u3")  # you may see your own matches
    assert own and "u3" not in {m.member for m in own}


def test_empty_one_member_and_historyless_guilds(world):
    empty = guild_leaderboard(world, [], set())
    assert empty.top_pairs == () and empty.centre is None and empty.ranked_members == 0
    one = guild_leaderboard(world, ["u0"], {"u0"})
    assert one.top_pairs == () and one.centre is None and one.ranked_members == 1
    ghosts = guild_leaderboard(world, ["nobody", "u0", "ghost"], lambda m: True)
    assert ghosts.ranked_members == 1
    assert best_matches(world, "u0", ["u0"], {"u0"}) == ()
    with pytest.raises(NotEnoughHistory):
        best_matches(world, "nobody", MEMBERS, lambda m: True)
    two = guild_leaderboard(world, ["u0", "u1", "u0"], lambda m: True)  # duplicates collapse
    assert len(two.top_pairs) == 1 and two.ranked_members == 2


def test_cache_key_deterministic_and_sensitive(world):
    k1 = leaderboard_cache_key("guild", 42, MEMBERS, set(MEMBERS), world.version, top=10)
    assert k1 == leaderboard_cache_key("guild", 42, list(reversed(MEMBERS)), set(MEMBERS), world.version, top=10)
    assert k1 != leaderboard_cache_key("guild", 42, MEMBERS, set(MEMBERS), "other-version", top=10)
    assert k1 != leaderboard_cache_key("guild", 42, MEMBERS, set(MEMBERS), world.version, top=5)
    assert k1 != leaderboard_cache_key("guild", 43, MEMBERS, set(MEMBERS), world.version, top=10)


def test_pair_confidence_is_the_confidence_compat_reports(world):
    """Boards mark early reads with `pair_confidence`; /compat shows `compare(...).confidence`. They
    must be one number, or a pair could be an early read in one place and not the other."""
    from core.compat import compare

    for a, b in itertools.combinations(MEMBERS[:8], 2):
        assert lb.pair_confidence(world, a, b) == compare(world, a, b).confidence
    assert lb.member_confidence(world, "nobody") == 0.0
    assert is_early_read(EARLY_READ_CONFIDENCE - 0.001) and not is_early_read(EARLY_READ_CONFIDENCE)
