"""Pure playlist building: choosing tracks for ranked artists, ordering for flow, fair blends.

No database and no engine here: the service hands in ranked artists and catalogue tracks, these
functions decide. That keeps the rules (at most two tracks per artist, no two adjacent tracks by one
artist when avoidable, alternating blend picks and their measured fairness) testable on tiny,
hand-made worlds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TypeVar

from core.db.repositories.playlists import TrackRow
from core.playlists.models import Fairness, PlaylistTrack

T = TypeVar("T")
#: At most this many tracks by one artist in a playlist: variety beats one artist's deep catalogue.
MAX_PER_ARTIST = 2


@dataclass(frozen=True)
class RankedArtist:
    """An artist the playlist should draw from, best first, with the reason shown on its tracks."""

    artist_id: int
    reason: str
    side: str | None = None  # blends: "a", "b" or "both"


def to_track(row: TrackRow, reason: str, side: str | None = None) -> PlaylistTrack:
    return PlaylistTrack(track_id=row.track_id, artist=row.artist, title=row.title, reason=reason,
                         album=row.album, duration_ms=row.duration_ms, spotify_id=row.spotify_id,
                         lastfm_url=row.lastfm_url, artist_id=row.artist_id, side=side)


def pick_tracks(artists: Sequence[RankedArtist], tracks: Mapping[int, Sequence[TrackRow]], length: int, *,
                per_artist: int = MAX_PER_ARTIST, skip: Callable[[TrackRow], bool] | None = None,
                first: Sequence[PlaylistTrack] = ()) -> list[PlaylistTrack]:
    """Up to `length` tracks: each artist in rank order contributes its best `per_artist` tracks.

    `first` tracks (a seed track) are taken as they are and count towards their artist's cap;
    `skip` drops tracks (e.g. ones the listener has worn out). Order is rank order: use
    `flow_order` afterwards.
    """
    chosen: list[PlaylistTrack] = list(first)[:length]
    used_tracks = {t.track_id for t in chosen}
    per: Counter[int] = Counter(t.artist_id for t in chosen if t.artist_id is not None)
    seen: set[int] = set()
    for artist in artists:
        if len(chosen) >= length:
            break
        if artist.artist_id in seen:
            continue
        seen.add(artist.artist_id)
        for row in tracks.get(artist.artist_id, ()):
            if len(chosen) >= length or per[artist.artist_id] >= per_artist:
                break
            if row.track_id in used_tracks or (skip is not None and skip(row)):
                continue
            chosen.append(to_track(row, artist.reason, artist.side))
            used_tracks.add(row.track_id)
            per[artist.artist_id] += 1
    return chosen


def _feasible(counts: Mapping[Hashable, int], picked: Hashable, rest: int) -> bool:
    """After placing `picked`, can `rest` items follow with no two neighbours by one artist?

    Classic bound: an artist may fill at most every other slot, and the one just placed cannot
    take the very next slot.
    """
    for key, count in counts.items():
        left = count - (1 if key == picked else 0)
        limit = rest // 2 if key == picked else (rest + 1) // 2
        if left > limit:
            return False
    return True


def flow_order(items: Sequence[T], key: Callable[[T], Hashable], *, pinned_first: bool = False) -> list[T]:
    """Reorder for flow: keep the given priority order as far as possible, but never put two items
    with the same key (artist) next to each other unless the mix makes it unavoidable.

    Greedy: at each slot take the highest-priority item whose artist differs from the previous one
    *and* leaves a still-arrangeable remainder, so a dominant artist is spread out early instead of
    piling up at the end. `pinned_first` keeps the first item first (a seed track starts the list).
    """
    remaining = list(items)
    out: list[T] = []
    if pinned_first and remaining:
        out.append(remaining.pop(0))
    counts: Counter[Hashable] = Counter(key(x) for x in remaining)
    while remaining:
        last = key(out[-1]) if out else None
        choice: int | None = None
        fallback: int | None = None
        for i, item in enumerate(remaining):
            k = key(item)
            if k == last:
                continue
            if fallback is None:
                fallback = i
            if _feasible(counts, k, len(remaining) - 1):
                choice = i
                break
        index = choice if choice is not None else (fallback if fallback is not None else 0)
        item = remaining.pop(index)
        counts[key(item)] -= 1
        out.append(item)
    return out


def adjacent_repeats(tracks: Sequence[PlaylistTrack]) -> int:
    """How many neighbours share an artist (0 for a well-flowing list)."""
    return sum(1 for a, b in pairwise(tracks) if a.artist_id == b.artist_id)


def blend_picks(taste_a: Sequence[RankedArtist], taste_b: Sequence[RankedArtist],
                tracks: Mapping[int, Sequence[TrackRow]], length: int, *,
                per_artist: int = MAX_PER_ARTIST) -> list[PlaylistTrack]:
    """Alternate picks between A's and B's queues until `length` tracks.

    Each queue is that person's view of the blend, best first: shared artists, then bridges both
    would like, then their own favourites. A pick takes the next artist in the queue that has not
    yet given a track in the current round (round r gives each artist its (r+1)-th track), so a
    shared artist A just picked is not immediately picked again by B. When one queue runs dry the
    other continues; the imbalance then shows in `fairness`, it is not hidden.
    """
    used: Counter[int] = Counter()
    out: list[PlaylistTrack] = []
    queues = {"a": list(taste_a), "b": list(taste_b)}
    cursors = {"a": [0, 0], "b": [0, 0]}  # (round, index) per side
    exhausted: set[str] = set()
    turn = "a"
    while len(out) < length and len(exhausted) < 2:
        side = turn
        turn = "b" if turn == "a" else "a"
        if side in exhausted:
            continue
        picked = _next_pick(queues[side], cursors[side], used, tracks, per_artist)
        if picked is None:
            exhausted.add(side)
            continue
        artist, row = picked
        used[artist.artist_id] += 1
        out.append(to_track(row, artist.reason, artist.side or side))
    return out


def _next_pick(queue: Sequence[RankedArtist], cursor: list[int], used: Counter[int],
               tracks: Mapping[int, Sequence[TrackRow]], per_artist: int) -> tuple[RankedArtist, TrackRow] | None:
    while cursor[0] < per_artist:
        round_, index = cursor
        while index < len(queue):
            artist = queue[index]
            index += 1
            available = tracks.get(artist.artist_id, ())
            taken = used[artist.artist_id]
            if taken <= round_ and taken < per_artist and taken < len(available):
                cursor[1] = index
                return artist, available[taken]
        cursor[0], cursor[1] = round_ + 1, 0
    return None


def fairness(tracks: Sequence[PlaylistTrack]) -> Fairness:
    """Share attributable to each side: own tracks count fully, shared ones half to each."""
    only_a = sum(1 for t in tracks if t.side == "a")
    only_b = sum(1 for t in tracks if t.side == "b")
    shared = sum(1 for t in tracks if t.side == "both")
    total = only_a + only_b + shared
    if total == 0:
        return Fairness(0.5, 0.5, 0, 0, 0)
    share_a = (only_a + shared / 2) / total
    return Fairness(round(share_a, 4), round(1 - share_a, 4), shared, only_a, only_b)
