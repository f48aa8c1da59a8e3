"""Pure playlist building: choosing tracks for ranked artists, ordering for flow, fair blends.

No database and no engine here: the service hands in ranked artists and catalogue tracks, these
functions decide. That keeps the rules (at most two tracks per artist in 25, never one artist twice
within 5 slots, neighbours ordered by tag similarity, alternating blend picks and their measured
fairness) testable on tiny, hand-made worlds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TypeVar

from core.db.repositories.playlists import TrackRow
from core.playlists.models import Fairness, PlaylistTrack

T = TypeVar("T")
#: At most this many tracks by one artist in a playlist: variety beats one artist's deep catalogue.
MAX_PER_ARTIST = 2
#: An artist comes back no sooner than this many slots later (1 and 6 is fine; 1 and 5 is not).
MIN_GAP = 5
#: In any run of this many slots, an artist has at most `MAX_PER_ARTIST` tracks (unless exempt).
WINDOW = 25
#: A seed artist's tracks per `WINDOW` slots of the asked length: the listener asked for this artist,
#: so it may come back more often than the others (still `MIN_GAP` apart).
SEED_ARTIST_PER_WINDOW = 4
_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def seed_cap(length: int) -> int:
    """How many tracks the seed artist may have in a playlist of `length` (the others: `MAX_PER_ARTIST`)."""
    return SEED_ARTIST_PER_WINDOW * -(-length // WINDOW)


def _words(number: int) -> str:
    return _NUMBER_WORDS[number] if 0 <= number < len(_NUMBER_WORDS) else str(number)


def rule_words(seed_artist: str | None = None, seed_tracks: int = 0) -> str:
    """The spacing rules a playlist keeps, in the words its note shows, made from the same constants
    the builder obeys, so the note cannot promise a rule the list breaks (it once said "at most two
    per artist" above a seed playlist with the seed artist three times).

    `seed_artist` and `seed_tracks` (its `seed_cap`): the one artist allowed more often.
    """
    per_artist = f"at most {_words(MAX_PER_ARTIST)} per artist"
    if seed_artist and seed_tracks > MAX_PER_ARTIST:
        per_artist += f", {seed_artist}'s own up to {seed_tracks}"
    return f"{per_artist}, never one artist twice within {_words(MIN_GAP)} tracks"


def room_for(per: Mapping[int, int], artist_id: int, length: int) -> bool:
    """Would one more track by this artist (with `per` tracks each so far) still fit in `length`
    slots with `MIN_GAP` between any artist's tracks? The classic cooldown-scheduling bound: the
    artists with the most tracks need (most-1)*gap slots plus one per such artist."""
    copies = per.get(artist_id, 0) + 1
    if copies == 1:
        return True
    peers = 1 + sum(1 for a, c in per.items() if c >= copies and a != artist_id)
    return (copies - 1) * MIN_GAP + peers <= length


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
                first: Sequence[PlaylistTrack] = (), caps: Mapping[int, int] | None = None) -> list[PlaylistTrack]:
    """Up to `length` tracks: each artist in rank order contributes its best `per_artist` tracks.

    `first` tracks (a seed track) are taken as they are and count towards their artist's cap;
    `skip` drops tracks (e.g. ones the listener has worn out); `caps` overrides `per_artist` for
    some artists (a seed artist the listener asked for). An artist's next track is only taken when
    the list can still hold it `MIN_GAP` slots from its others (five tracks are five artists).
    Order is rank order: use
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
            if len(chosen) >= length or per[artist.artist_id] >= (caps or {}).get(artist.artist_id, per_artist):
                break
            if not room_for(per, artist.artist_id, length):
                break
            if row.track_id in used_tracks or (skip is not None and skip(row)):
                continue
            chosen.append(to_track(row, artist.reason, artist.side))
            used_tracks.add(row.track_id)
            per[artist.artist_id] += 1
    return chosen


def _fits(counts: Mapping[Hashable, int], last: Mapping[Hashable, int], slot: int, gap: int) -> bool:
    """Can the remaining tracks (`counts` per artist) still all be placed from `slot` on?

    A necessary bound, cheap enough to check for every candidate: each artist's copies need
    (count-1)*gap+1 slots from the first slot its cooldown allows, and the artists with the most
    copies need (max-1)*gap + how many of them there are (the classic cooldown-scheduling bound).
    """
    rest = sum(counts.values())
    if rest == 0:
        return True
    top = max(counts.values())
    if (top - 1) * gap + sum(1 for c in counts.values() if c == top) > rest:
        return False
    for artist, count in counts.items():
        if count and max(0, last.get(artist, -gap) + gap - slot) + (count - 1) * gap + 1 > rest:
            return False
    return True


def flow_order(items: Sequence[T], key: Callable[[T], Hashable], *, pinned_first: bool = False,
               similarity: Callable[[T, T], float] | None = None, gap: int = MIN_GAP, window: int = WINDOW,
               per_window: int = MAX_PER_ARTIST, uncapped: Collection[Hashable] = ()) -> list[T]:
    """Order tracks so the playlist flows, under hard spacing rules.

    Rules (never broken; a track that cannot be placed is left out, so the list may come back
    shorter): one artist never twice within `gap` slots, and at most `per_window` tracks by one
    artist in any `window` slots, except artists in `uncapped` (a single-artist seed).

    Flow: each next track is the one most similar to the previous (`similarity`, e.g. the cosine of
    the artists' tags), ties going to the given priority order; a track whose placement would leave
    the rest unplaceable is passed over, and when nothing similar fits, the artist with most tracks
    still to place goes first (the optimal greedy for cooldown scheduling). `pinned_first` keeps the
    first item first (a seed track starts the list).
    """
    remaining = list(items)
    out: list[T] = []
    positions: dict[Hashable, list[int]] = {}
    counts: Counter[Hashable] = Counter(key(x) for x in remaining)

    def allowed(artist: Hashable, slot: int) -> bool:
        placed = positions.get(artist, ())
        if placed and slot - placed[-1] < gap:
            return False
        return artist in uncapped or sum(1 for p in placed if slot - p < window) < per_window

    def place(index: int) -> None:
        item = remaining.pop(index)
        artist = key(item)
        counts[artist] -= 1
        positions.setdefault(artist, []).append(len(out))
        out.append(item)

    if pinned_first and remaining:
        place(0)
    while remaining:
        slot = len(out)
        eligible = [i for i, x in enumerate(remaining) if allowed(key(x), slot)]
        if not eligible:
            break  # what is left cannot be placed without breaking a rule: leave it out
        previous = out[-1] if out else None
        if similarity is not None and previous is not None:
            scores = {i: similarity(previous, remaining[i]) for i in eligible}
            ranked = sorted(eligible, key=lambda i: (-scores[i], i))
        else:
            ranked = eligible
        last = {a: p[-1] for a, p in positions.items()}
        choice = None
        for i in ranked:
            artist = key(remaining[i])
            counts[artist] -= 1
            ok = _fits(counts, {**last, artist: slot}, slot + 1, gap)
            counts[artist] += 1
            if ok:
                choice = i
                break
        if choice is None:  # nothing keeps the rest placeable: spread the most repeated artist first
            choice = max(ranked, key=lambda i: counts[key(remaining[i])])
        place(choice)
    return out


def spacing_violations(tracks: Sequence[PlaylistTrack], *, gap: int = MIN_GAP, window: int = WINDOW,
                       per_window: int = MAX_PER_ARTIST, uncapped: Collection[Hashable] = ()) -> list[str]:
    """Every broken spacing rule in a playlist, in words (empty for a well-spaced list)."""
    problems: list[str] = []
    seen: dict[Hashable, list[int]] = {}
    for slot, track in enumerate(tracks):
        placed = seen.setdefault(track.artist_id or track.artist, [])
        if placed and slot - placed[-1] < gap:
            problems.append(f"{track.artist} at {placed[-1] + 1} and {slot + 1}")
        in_window = [p for p in placed if slot - p < window]
        if track.artist_id not in uncapped and len(in_window) >= per_window:
            problems.append(f"{track.artist}: {len(in_window) + 1} tracks within {window} slots")
        placed.append(slot)
    return problems


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
        picked = _next_pick(queues[side], cursors[side], used, tracks, per_artist, length)
        if picked is None:
            exhausted.add(side)
            continue
        artist, row = picked
        used[artist.artist_id] += 1
        out.append(to_track(row, artist.reason, artist.side or side))
    return out


def _next_pick(queue: Sequence[RankedArtist], cursor: list[int], used: Counter[int],
               tracks: Mapping[int, Sequence[TrackRow]], per_artist: int,
               length: int) -> tuple[RankedArtist, TrackRow] | None:
    while cursor[0] < per_artist:
        round_, index = cursor
        while index < len(queue):
            artist = queue[index]
            index += 1
            available = tracks.get(artist.artist_id, ())
            taken = used[artist.artist_id]
            if (taken <= round_ and taken < per_artist and taken < len(available)
                    and room_for(used, artist.artist_id, length)):
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
