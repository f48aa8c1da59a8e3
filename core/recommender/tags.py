"""Item tags from several sources, aligned to an item vocabulary.

Tags arrive as item -> {tag: weight} per source (Last.fm tag counts, AOTY genres and tags…). Names
are lower-cased and merged across sources, so "Shoegaze" from AOTY and "shoegaze" from Last.fm
reinforce each other; each source gets a weight because a curated AOTY genre says more than one
stray Last.fm tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from core.recommender.interactions import Vocabulary

DEFAULT_SOURCE_WEIGHTS = {"lastfm": 1.0, "aoty": 3.0}


def normalise_tag(name: object) -> str:
    return " ".join(str(name).strip().lower().split())


@dataclass(frozen=True)
class ItemTags:
    """items x tags weights (rows follow the item vocabulary) plus tag names."""

    matrix: sp.csr_matrix
    names: np.ndarray

    @classmethod
    def empty(cls, n_items: int) -> ItemTags:
        return cls(sp.csr_matrix((n_items, 0), dtype=np.float32), np.array([], dtype=str))

    @classmethod
    def from_sources(cls, items: Vocabulary, sources: Mapping[str, Mapping[object, Mapping[object, float]]],
                     source_weights: Mapping[str, float] | None = None) -> ItemTags:
        """Merge ``{source: {item id: {tag: weight}}}``; items outside the vocabulary are ignored."""
        weights = {**DEFAULT_SOURCE_WEIGHTS, **(source_weights or {})}
        tag_index: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for source, by_item in sources.items():
            factor = float(weights.get(source, 1.0))
            for item_id, tags in by_item.items():
                row = items.get(item_id)
                if row < 0:
                    continue
                for tag, weight in tags.items():
                    if weight <= 0:
                        continue
                    name = normalise_tag(tag)
                    col = tag_index.setdefault(name, len(tag_index))
                    rows.append(row)
                    cols.append(col)
                    vals.append(factor * float(weight))
        matrix = sp.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)),
                               shape=(len(items), len(tag_index)), dtype=np.float32)
        matrix.sum_duplicates()
        names = np.array(sorted(tag_index, key=tag_index.__getitem__), dtype=str)
        return cls(matrix, names)

    def items_with_any(self, tags: Iterable[str], min_share: float = 0.0) -> np.ndarray:
        """Boolean mask of items carrying any of `tags` (a tag/genre filter).

        `min_share` ignores stray tags: the tag must hold at least that share of the item's weight.
        """
        wanted = {normalise_tag(t) for t in tags}
        cols = np.flatnonzero(np.isin(self.names, list(wanted)))
        if len(cols) == 0:
            return np.zeros(self.matrix.shape[0], dtype=bool)
        hits = np.asarray(self.matrix[:, cols].sum(axis=1)).ravel()
        totals = np.asarray(self.matrix.sum(axis=1)).ravel()
        return (hits > 0) & (hits >= min_share * totals)


def tfidf_vectors(tags: ItemTags, sublinear_tf: bool = True) -> sp.csr_matrix:
    """L2-normalised TF-IDF rows (items x tags); rows of untagged items stay zero.

    sublinear tf (1 + log count) keeps one tag applied 500 times from drowning the others; idf
    makes "rock" say less than "shoegaze".
    """
    from sklearn.feature_extraction.text import TfidfTransformer

    if tags.matrix.shape[1] == 0:
        return sp.csr_matrix(tags.matrix.shape, dtype=np.float32)
    tfidf = TfidfTransformer(sublinear_tf=sublinear_tf, norm="l2", smooth_idf=True)
    return sp.csr_matrix(tfidf.fit_transform(tags.matrix), dtype=np.float32)


def tag_variants(tags: Iterable[str]) -> list[str]:
    """The keyword parser writes "dream-pop" where Last.fm says "dream pop": accept both spellings."""
    out: list[str] = []
    for tag in tags:
        out += [tag, tag.replace("-", " "), tag.replace(" ", "-")]
    return list(dict.fromkeys(out))
