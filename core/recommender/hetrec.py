"""HetRec 2011 Last.fm inputs for offline evaluation, benchmarks and the demo model.

Only artist-level tag counts are used (the tagging user is ignored), matching what production
knows about an artist. The catalogue is every artist the files mention, so "rank all unseen
artists" means the same thing in both evaluation modes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np

from core.datasets import iter_rows, read_artist_names, read_tag_names, read_user_artists
from core.errors import ConfigError, ImportFileError
from core.recommender.evaluation import EvalTask
from core.recommender.interactions import Interactions, Vocabulary
from core.recommender.splits import holdout_split
from core.recommender.tags import ItemTags


def read_tag_rows(path: Path) -> list[tuple[int, int, int]]:
    """(user, artist, tag) rows of ``user_taggedartists.dat``; the user is kept so held-out pairs can be dropped."""
    rows: list[tuple[int, int, int]] = []
    for lineno, fields in iter_rows(path, ("userID", "artistID", "tagID")):
        try:
            rows.append((int(fields[0]), int(fields[1]), int(fields[2])))
        except ValueError:
            raise ImportFileError(path, lineno, "userID, artistID and tagID must be whole numbers") from None
    return rows


def hetrec_tags(items: Vocabulary, tagged_path: Path | None, tag_names_path: Path | None = None,
                exclude: Collection[tuple[int, int]] = ()) -> ItemTags | None:
    """Artist tags as an `ItemTags` aligned to `items` (tag ids named via tags.dat when present).

    `exclude` holds (user, artist) pairs whose tag rows must not count: the evaluation's held-out
    pairs, since a user tagging an artist reveals that they listen to it (about 8 % of HetRec's tag
    rows belong to the test pairs of a split).
    """
    if tagged_path is None or not Path(tagged_path).is_file():
        return None
    banned = set(exclude)
    names = read_tag_names(Path(tag_names_path)) if tag_names_path and Path(tag_names_path).is_file() else {}
    rows = [r for r in read_tag_rows(Path(tagged_path)) if (r[0], r[1]) not in banned]
    return tags_from_rows(items, rows, names)


def tags_from_rows(items: Vocabulary, rows: list[tuple[int, int, int]], names: Mapping[int, str]) -> ItemTags:
    """Artist-level tag counts (the tagging user ignored, as production only knows an artist's tags)."""
    by_artist: dict[int, dict[str, float]] = {}
    for _user, artist, tag in rows:
        bucket = by_artist.setdefault(artist, {})
        name = names.get(tag, str(tag))
        bucket[name] = bucket.get(name, 0) + 1
    return ItemTags.from_sources(items, {"lastfm": by_artist})


def held_out_pairs(users: Vocabulary, items: Vocabulary, test: Mapping[int, np.ndarray]) -> set[tuple[int, int]]:
    """The (external user, external artist) pairs of a split's test set."""
    return {(int(users.external(u)), int(items.external(int(i)))) for u, held in test.items() for i in held
            if i >= 0}


def task_from_dir(data_dir: Path, seed: int = 0, test_fraction: float = 0.2, min_items: int = 5) -> EvalTask:
    """Per-user random split of the whole dataset (users with >= `min_items` artists)."""
    data_dir = Path(data_dir)
    if not (data_dir / "user_artists.dat").is_file():
        raise ConfigError(f"{data_dir} has no user_artists.dat; pass the HetRec folder with --data-dir.")
    data = Interactions.from_hetrec(data_dir / "user_artists.dat")
    split = holdout_split(data, test_fraction=test_fraction, min_items=min_items, seed=seed)
    tags = hetrec_tags(data.items, data_dir / "user_taggedartists.dat", data_dir / "tags.dat",
                       exclude=held_out_pairs(data.users, data.items, split.test))
    return EvalTask(split.train, split.test, tags)


def task_from_files(train_path: Path, test_path: Path, tags_path: Path | None = None,
                    artists_path: Path | None = None) -> EvalTask:
    """TRAIN/TEST files with user_artists.dat columns; catalogue = train ∪ artists.dat ∪ tagged artists.

    Test items outside the catalogue stay relevant (so they count as misses) but can never be hit.
    """
    train = read_user_artists(Path(train_path))
    test = read_user_artists(Path(test_path))
    # Every tag row of a TEST pair goes before anything is fitted or the catalogue is drawn (even
    # for test items the training data knows: the tag still says "this user plays it").
    test_pairs = set(zip(test.users.tolist(), test.artists.tolist(), strict=True))
    tag_rows = [r for r in read_tag_rows(Path(tags_path)) if (r[0], r[1]) not in test_pairs] if tags_path else []
    catalogue = set(train.artists.tolist())
    if artists_path is not None:
        catalogue |= set(read_artist_names(Path(artists_path)))
    catalogue |= {artist for _user, artist, _tag in tag_rows}
    items = Vocabulary(np.array(sorted(catalogue), dtype=np.int64))
    users = Vocabulary(np.unique(np.concatenate([train.users, test.users])))
    data = Interactions.from_arrays(train.users, train.artists, train.weights, item_vocabulary=items,
                                    user_vocabulary=users)
    held: dict[int, list[int]] = {}
    unknown = -1
    for user, artist in zip(test.users.tolist(), test.artists.tolist(), strict=True):
        index = items.get(artist)
        if index < 0:
            index, unknown = unknown, unknown - 1
        held.setdefault(users.index(user), []).append(index)
    known = data.matrix
    relevant = {}
    for user, values in held.items():
        seen = set(known.indices[known.indptr[user]:known.indptr[user + 1]].tolist())
        fresh = sorted(set(values) - seen)
        if fresh:
            relevant[user] = np.asarray(fresh, dtype=np.int64)
    tags = None
    if tags_path is not None:
        tag_names = Path(tags_path).with_name("tags.dat")
        tags = tags_from_rows(items, tag_rows, read_tag_names(tag_names) if tag_names.is_file() else {})
    return EvalTask(data, relevant, tags)


def artist_names(data_dir: Path) -> dict[int, str]:
    path = Path(data_dir) / "artists.dat"
    return {k: v[0] for k, v in read_artist_names(path).items()} if path.is_file() else {}
