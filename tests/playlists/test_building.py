"""Pure building rules on hand-made worlds: caps, flow, and blend fairness."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

from core.db.repositories.playlists import TrackRow
from core.playlists.building import (
    RankedArtist,
    adjacent_repeats,
    blend_picks,
    fairness,
    flow_order,
    pick_tracks,
    rule_words,
    seed_cap,
    spacing_violations,
)


def catalogue(artists: dict[int, int]) -> dict[int, list[TrackRow]]:
    """artist id -> n tracks, most played first (track id = artist * 100 + k)."""
    return {a: [TrackRow(a * 100 + k, a, f"Artist {a}", f"Song {k}", None, None, None, None, 100 - k)
                for k in range(n)] for a, n in artists.items()}


def test_pick_tracks_caps_two_per_artist_respects_length_and_skips() -> None:
    tracks = catalogue({1: 5, 2: 5, 3: 1, 4: 5})
    ranked = [RankedArtist(a, f"reason {a}") for a in (1, 2, 3, 4)]
    picked = pick_tracks(ranked, tracks, 20, skip=lambda r: r.track_id == 100)
    assert len(picked) == 7  # the catalogue runs out: shorter, never padded
    assert Counter(t.artist_id for t in picked) == {1: 2, 2: 2, 3: 1, 4: 2}
    assert 100 not in {t.track_id for t in picked}  # the skipped (worn-out) track
    assert [t.track_id for t in picked[:2]] == [101, 102]  # most played first


def test_pick_tracks_takes_a_second_track_only_when_it_can_be_spaced() -> None:
    """Six slots and four artists: a second track by artist 1 fits (slots 1 and 6), a second by
    artist 2 would not, so the list is five tracks rather than one that breaks the spacing."""
    tracks = catalogue({1: 5, 2: 5, 3: 1, 4: 5})
    ranked = [RankedArtist(a, f"reason {a}") for a in (1, 2, 3, 4)]
    picked = pick_tracks(ranked, tracks, 6)
    assert Counter(t.artist_id for t in picked) == {1: 2, 2: 1, 3: 1, 4: 1}
    assert spacing_violations(flow_order(picked, key=lambda t: t.artist_id)) == []
    assert Counter(t.artist_id for t in pick_tracks(ranked, tracks, 5)).most_common(1)[0][1] == 1


def test_flow_order_keeps_priority_when_nothing_is_similar_and_pins_the_seed() -> None:
    assert flow_order(list(range(1, 8)), key=lambda x: x) == list(range(1, 8))
    assert flow_order([1, 2, 3, 4, 5, 1, 6], key=lambda x: x) == [1, 2, 3, 4, 5, 1, 6]
    assert flow_order([5, 1, 1, 2], key=lambda x: x, pinned_first=True)[0] == 5


def test_flow_order_spreads_a_dominant_artist_instead_of_dropping_it() -> None:
    items = [1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]  # artist 1 needs slots 0, 5 and 10
    ordered = flow_order(items, key=lambda x: x, uncapped={1})
    assert sorted(ordered) == sorted(items)
    assert [i for i, x in enumerate(ordered) if x == 1] == [0, 5, 10]


def test_flow_order_leaves_out_what_cannot_be_spaced() -> None:
    """Three tracks by one artist cannot fit in 3 slots: one track is kept, never two close together."""
    assert flow_order([1, 1, 1], key=lambda x: x) == [1]
    assert flow_order([1, 2, 1, 2], key=lambda x: x) == [1, 2]


def test_flow_order_puts_similar_tracks_next_to_each_other() -> None:
    """Tracks are numbers; similarity is closeness. From 0, a tag-similar walk goes up step by step."""
    items = [0, 40, 10, 30, 20, 50]
    ordered = flow_order(items, key=lambda x: x, similarity=lambda a, b: -abs(a - b))
    assert ordered == [0, 10, 20, 30, 40, 50]
    jumps = sum(abs(a - b) for a, b in pairwise(ordered))
    assert jumps < sum(abs(a - b) for a, b in pairwise(items))


def test_blend_alternates_and_is_fair_on_a_small_world() -> None:
    # A and B share artists 1, 2; bridge 3; A alone loves 10-13, B alone 20-21 (fewer)
    tracks = catalogue({1: 3, 2: 3, 3: 3, 10: 3, 11: 3, 12: 3, 13: 3, 20: 3, 21: 3})
    queue_a = ([RankedArtist(a, "shared", "both") for a in (1, 2)] + [RankedArtist(3, "bridge", "both")]
               + [RankedArtist(a, "A's", "a") for a in (10, 11, 12, 13)])
    queue_b = ([RankedArtist(a, "shared", "both") for a in (2, 1)] + [RankedArtist(3, "bridge", "both")]
               + [RankedArtist(a, "B's", "b") for a in (20, 21)])
    for length in (5, 8, 10, 12, 14):
        picked = blend_picks(queue_a, queue_b, tracks, length)
        assert len(picked) == length
        assert max(Counter(t.artist_id for t in picked).values()) <= 2
        fair = fairness(picked)
        assert 0.4 <= fair.share_a <= 0.6 and 0.4 <= fair.share_b <= 0.6, (length, fair)
        assert abs(fair.share_a + fair.share_b - 1) < 1e-9
        ordered = flow_order(picked, key=lambda t: t.artist_id)
        assert adjacent_repeats(ordered) == 0 and spacing_violations(ordered) == []
        assert len(ordered) == len(picked)
        assert fairness(ordered) == fair  # reordering never changes who the tracks are for
    first_round = blend_picks(queue_a, queue_b, tracks, 3)
    assert [t.artist_id for t in first_round] == [1, 2, 3]  # shared first (A's, then B's pick), then the bridge


def test_blend_reports_imbalance_when_one_side_runs_dry() -> None:
    tracks = catalogue({10: 2, 11: 2, 12: 2, 13: 2, 14: 2, 20: 1})
    queue_a = [RankedArtist(a, "A's", "a") for a in (10, 11, 12, 13, 14)]
    queue_b = [RankedArtist(20, "B's", "b")]
    picked = blend_picks(queue_a, queue_b, tracks, 7)
    assert len(picked) == 7
    fair = fairness(picked)
    assert fair.only_b == 1 and fair.share_a > 0.8 and not fair.balanced


def test_the_rule_in_words_is_the_rule_kept_for_a_seed_artist() -> None:
    """The note's words come from the builder's constants: a seed artist allowed `seed_cap` tracks
    is named with that number, and a list built with that cap never has more of it, nor more than
    two of anyone else, nor one artist twice within five slots."""
    assert rule_words() == "at most two per artist, never one artist twice within five tracks"
    for length in (5, 25, 30, 60, 100):
        cap = seed_cap(length)
        assert rule_words("Seed", cap) == (f"at most two per artist, Seed's own up to {cap}, "
                                           "never one artist twice within five tracks")
        tracks = catalogue({1: 40, **{a: 5 for a in range(2, 40)}})
        ranked = [RankedArtist(a, f"reason {a}") for a in range(1, 40)]
        picked = pick_tracks(ranked, tracks, length, caps={1: cap})
        ordered = flow_order(picked, key=lambda t: t.artist_id, uncapped=frozenset({1}))
        per_artist = Counter(t.artist_id for t in ordered)
        assert per_artist[1] <= cap and all(n <= 2 for a, n in per_artist.items() if a != 1)
        assert spacing_violations(ordered, uncapped=frozenset({1})) == []
    assert seed_cap(25) == 4 and seed_cap(30) == 8  # four per 25 slots asked
