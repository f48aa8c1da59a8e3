"""Property-based tests of the spacing rules: whatever the picks, the order never breaks them."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from core.playlists.building import MAX_PER_ARTIST, MIN_GAP, WINDOW, flow_order, spacing_violations
from core.playlists.models import PlaylistTrack


def tracks_of(artists: list[int]) -> list[PlaylistTrack]:
    return [PlaylistTrack(track_id=k, artist=f"Artist {a}", title=f"Song {k}", reason="", artist_id=a)
            for k, a in enumerate(artists)]


def placeable(counts: Counter[int]) -> bool:
    """The classic cooldown bound: the most repeated artists fit with MIN_GAP between copies."""
    top = max(counts.values())
    return (top - 1) * MIN_GAP + sum(1 for c in counts.values() if c == top) <= sum(counts.values())


picks = st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=100)
similarities = st.integers(min_value=0, max_value=3)


def similarity_by(variant: int):  # type: ignore[no-untyped-def]
    """A few different notions of closeness, including none at all."""
    return [None, lambda a, b: -abs(a.artist_id - b.artist_id), lambda a, b: float(a.artist_id % 3 == b.artist_id % 3),
            lambda a, b: float((a.track_id * 7 + b.track_id) % 5)][variant]


@settings(max_examples=300, deadline=None)
@given(picks, similarities, st.booleans())
def test_no_artist_twice_within_five_slots_nor_three_times_in_25(artists: list[int], variant: int,
                                                                  pinned: bool) -> None:
    tracks = tracks_of(artists)
    ordered = flow_order(tracks, key=lambda t: t.artist_id, similarity=similarity_by(variant), pinned_first=pinned)
    assert spacing_violations(ordered) == []
    assert Counter(t.track_id for t in ordered) <= Counter(t.track_id for t in tracks)  # nothing invented
    if pinned:
        assert ordered[0] == tracks[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=100), similarities)
def test_nothing_is_left_out_when_the_rules_can_be_met(artists: list[int], variant: int) -> None:
    """Picks capped at two per artist (as `pick_tracks` makes them) are all placed whenever the
    cooldown bound allows it: the rules shape the order, they do not silently shorten the list."""
    capped: list[int] = []
    for a in artists:
        if capped.count(a) < MAX_PER_ARTIST:
            capped.append(a)
    counts = Counter(capped)
    ordered = flow_order(tracks_of(capped), key=lambda t: t.artist_id, similarity=similarity_by(variant))
    assert spacing_violations(ordered) == []
    if placeable(counts):
        assert len(ordered) == len(capped)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=2, max_value=6), st.lists(st.integers(min_value=2, max_value=40), max_size=60))
def test_a_single_artist_seed_may_return_but_stays_spaced(seed_tracks: int, others: list[int]) -> None:
    artists = [1] * seed_tracks + others
    ordered = flow_order(tracks_of(artists), key=lambda t: t.artist_id, uncapped={1}, pinned_first=True)
    assert spacing_violations(ordered, uncapped={1}) == []
    positions = [i for i, t in enumerate(ordered) if t.artist_id == 1]
    assert all(b - a >= MIN_GAP for a, b in pairwise(positions))
    assert WINDOW // MIN_GAP >= max(Counter(t.artist_id for t in ordered[:WINDOW]).values(), default=0)
