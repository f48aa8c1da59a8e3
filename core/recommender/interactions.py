"""Who listened to what, as a sparse user x item matrix with id vocabularies.

The engine is generic over item ids: an item may be an artist, an album or a track, identified by a
database row id (or a dataset id offline). Every model works on row/column *indices*; the
vocabularies translate at the edges so the database can keep its own ids.

Matrix values are *strengths*: recency-weighted play counts (see `recency_weight`). Models decide
how to turn a strength into a confidence (binary, log1p, rank), because the best choice differs
per model and measurably changes quality.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.errors import ImportFileError

DEFAULT_HALF_LIFE_DAYS = 365.0
# Old listens still say something about taste; never let them vanish entirely.
DEFAULT_RECENCY_FLOOR = 0.25


@dataclass(frozen=True)
class Vocabulary:
    """External id <-> row index, in a fixed order (the order of `ids`).

    Ids are ints (database rows, dataset ids) or strings (e.g. MusicBrainz ids); they are kept in a
    numpy array so they can be saved in an .npz without pickle.
    """

    ids: np.ndarray
    _index: dict[object, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids)
        if ids.dtype == object:
            ids = ids.astype(str)
        object.__setattr__(self, "ids", ids)
        index = {_key(v): i for i, v in enumerate(ids.tolist())}
        if len(index) != len(ids):
            raise ValueError("vocabulary ids must be unique")
        object.__setattr__(self, "_index", index)

    @classmethod
    def of(cls, values: Iterable[object]) -> Vocabulary:
        """A vocabulary of the distinct values, sorted (so it is deterministic)."""
        return cls(np.unique(np.asarray(list(values) if not isinstance(values, np.ndarray) else values)))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, external_id: object) -> bool:
        return _key(external_id) in self._index

    def index(self, external_id: object) -> int:
        """Row index of an id; KeyError when unknown (callers decide whether that is an error)."""
        return self._index[_key(external_id)]

    def get(self, external_id: object, default: int = -1) -> int:
        return self._index.get(_key(external_id), default)

    def indices(self, external_ids: Iterable[object]) -> np.ndarray:
        """Indices of many ids; unknown ids map to -1."""
        return np.fromiter((self._index.get(_key(v), -1) for v in external_ids), dtype=np.int64)

    def external(self, index: int) -> object:
        value = self.ids[index]
        return value.item() if isinstance(value, np.generic) else value


def _key(value: object) -> object:
    """Normalise numpy scalars so np.int64(5) and 5 find the same row."""
    return value.item() if isinstance(value, np.generic) else value


def recency_weight(age_days: np.ndarray | float, half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
                   floor: float = DEFAULT_RECENCY_FLOOR) -> np.ndarray:
    """Weight of a listen by its age: ``max(floor, 0.5 ** (age_days / half_life_days))``.

    Halving every `half_life_days` lets tastes move on; the floor keeps an old favourite from
    disappearing (a fan who stopped playing an artist a few years ago still knows them).
    Future timestamps (clock skew) count as age 0.
    """
    age = np.maximum(np.asarray(age_days, dtype=np.float64), 0.0)
    return np.maximum(floor, np.power(0.5, age / half_life_days))


@dataclass(frozen=True)
class Interactions:
    """Users x items strengths plus vocabularies and the item -> artist key (for per-artist caps)."""

    matrix: sp.csr_matrix  # float32 strengths, users x items
    users: Vocabulary
    items: Vocabulary
    item_artists: np.ndarray | None = None  # artist key per item (same order as items), or None

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @classmethod
    def from_arrays(cls, users: Sequence[object] | np.ndarray, items: Sequence[object] | np.ndarray,
                    play_counts: Sequence[float] | np.ndarray,
                    last_played_at: Sequence[datetime | float | None] | np.ndarray | None = None, *,
                    now: datetime | None = None, half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
                    recency_floor: float = DEFAULT_RECENCY_FLOOR,
                    item_vocabulary: Vocabulary | None = None, user_vocabulary: Vocabulary | None = None,
                    item_artists: Mapping[object, object] | None = None) -> Interactions:
        """Build from parallel columns, e.g. straight from a DB query of (user, item, plays, last played).

        ``strength = play_count * recency_weight(now - last_played_at)``; without timestamps the
        strength is the play count. Duplicate (user, item) rows are summed. Passing
        `item_vocabulary` fixes the item universe (items not in it are dropped), which lets a
        catalogue include items nobody has played yet (e.g. albums known only from AOTY);
        `user_vocabulary` likewise fixes the users.
        `last_played_at` entries may be aware datetimes or POSIX seconds; None means "now".
        """
        users_arr = np.asarray(users)
        items_arr = np.asarray(items)
        plays = np.asarray(play_counts, dtype=np.float64)
        if not (len(users_arr) == len(items_arr) == len(plays)):
            raise ValueError("users, items and play_counts must have the same length")
        if np.any(plays < 0) or not np.all(np.isfinite(plays)):
            raise ValueError("play counts must be finite and non-negative")
        if last_played_at is not None:
            plays = plays * recency_weight(_ages_in_days(last_played_at, now), half_life_days, recency_floor)
        user_vocab = user_vocabulary or (Vocabulary.of(users_arr) if len(users_arr)
                                         else Vocabulary(np.array([], dtype=np.int64)))
        item_vocab = item_vocabulary or (Vocabulary.of(items_arr) if len(items_arr)
                                         else Vocabulary(np.array([], dtype=np.int64)))
        rows = user_vocab.indices(users_arr.tolist())
        cols = item_vocab.indices(items_arr.tolist())
        known = (cols >= 0) & (rows >= 0)
        matrix = sp.csr_matrix((plays[known].astype(np.float32), (rows[known], cols[known])),
                               shape=(len(user_vocab), len(item_vocab)), dtype=np.float32)
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        artists = None
        if item_artists is not None:
            artists = np.asarray([str(item_artists.get(item_vocab.external(i), "")) for i in range(len(item_vocab))])
        return cls(matrix, user_vocab, item_vocab, artists)

    @classmethod
    def from_hetrec(cls, path: Path) -> Interactions:
        """Build from a HetRec-style ``user_artists.dat`` (userID artistID weight) file."""
        from core.datasets import read_user_artists

        table = read_user_artists(path)
        if len(table.users) == 0:
            raise ImportFileError(path, None, "no rows")
        return cls.from_arrays(table.users, table.artists, table.weights)

    def user_row(self, user_id: object) -> sp.csr_matrix:
        """The user's strengths as a 1 x items row (empty row for an unknown user)."""
        index = self.users.get(user_id)
        if index < 0:
            return sp.csr_matrix((1, self.n_items), dtype=np.float32)
        return self.matrix[index]

    def history_row(self, items: Iterable[object], strengths: Iterable[float] | None = None) -> sp.csr_matrix:
        """A 1 x items row from a user's current history (items outside the vocabulary are ignored).

        This is what makes recommendations real time: the caller passes the user's listens as of
        now and every model scores from that row, no retraining needed.
        """
        item_list = list(items)
        values = (np.ones(len(item_list)) if strengths is None
                  else np.asarray(list(strengths), dtype=np.float64))
        cols = self.items.indices(item_list)
        known = (cols >= 0) & (values > 0)
        row = sp.csr_matrix((values[known].astype(np.float32), (np.zeros(known.sum(), dtype=np.int64),
                                                                 cols[known])),
                            shape=(1, self.n_items), dtype=np.float32)
        row.sum_duplicates()
        return row

    def item_user_counts(self) -> np.ndarray:
        """How many users know each item (the popularity every model and metric uses)."""
        return np.diff(self.matrix.tocsc().indptr).astype(np.int64)

    def with_matrix(self, matrix: sp.csr_matrix) -> Interactions:
        """Same vocabularies, other strengths (used by splits)."""
        return Interactions(matrix.tocsr().astype(np.float32), self.users, self.items, self.item_artists)


def _ages_in_days(last_played_at: Sequence[datetime | float | None] | np.ndarray,
                  now: datetime | None) -> np.ndarray:
    reference = (now or datetime.now(UTC)).timestamp()
    seconds = np.array([reference if v is None else (v.timestamp() if isinstance(v, datetime) else float(v))
                        for v in last_played_at], dtype=np.float64)
    return (reference - seconds) / 86400.0
