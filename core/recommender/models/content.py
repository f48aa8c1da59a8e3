"""Content-based scoring: TF-IDF over item tags and cosine similarity.

It needs no co-occurrence, so it reaches the long tail (most HetRec artists are known by one user)
and new catalogue items, and it gives the "tags that drove it" evidence. A user's taste profile is
the confidence-weighted sum of their items' TF-IDF vectors.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from core.recommender.interactions import Interactions
from core.recommender.models._row import UserRow, is_canonical, ranges
from core.recommender.models._sparse import dense_rows
from core.recommender.models.base import Model, StateArray
from core.recommender.models.terms import RowTerms, ScoresOnly
from core.recommender.tags import ItemTags, tfidf_vectors
from core.recommender.weighting import apply_weighting


class ContentTfidf(Model):
    name = "Content"
    state: ClassVar[dict[str, StateArray]] = {"vectors": StateArray(np.float32, sparse=True), "tag_names": StateArray(str)}

    def __init__(self, tags: ItemTags | None = None, weighting: str = "log1p", sublinear_tf: bool = True) -> None:
        self.tags = tags
        self.weighting = weighting
        self.sublinear_tf = sublinear_tf
        self.vectors = sp.csr_matrix((0, 0), dtype=np.float32)  # items x tags, L2-normalised TF-IDF
        self.tag_names = np.array([], dtype=str)

    def params(self) -> dict[str, Any]:
        return {"weighting": self.weighting, "sublinear_tf": self.sublinear_tf}

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        tags = self.tags or ItemTags.empty(data.n_items)
        if tags.matrix.shape[0] != data.n_items:
            raise ValueError("item tags must follow the interactions' item vocabulary")
        self.tag_names = tags.names
        if tags.matrix.shape[1] == 0:
            self.vectors = sp.csr_matrix((data.n_items, 0), dtype=np.float32)
            return self
        self.vectors = tfidf_vectors(tags, self.sublinear_tf)
        self._prepare()
        return self

    def profile(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        """Users x tags: L2-normalised taste profiles."""
        profile = sp.csr_matrix(apply_weighting(rows, self.weighting) @ self.vectors)
        norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ profile)

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        if self.vectors.shape[1] == 0:
            return np.zeros((rows.shape[0], self.n_items), dtype=np.float32)
        return dense_rows(self.profile(rows) @ self._vectors_t)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        if self.vectors.shape[1] == 0:
            return np.zeros((len(items), self.n_items), dtype=np.float32)
        return dense_rows(self.vectors[np.asarray(items)] @ self._vectors_t)

    def tag_overlap(self, row: sp.csr_matrix, items: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per item, tags shared by the user's profile and the item: (tag names, profile x item weight)."""
        if self.vectors.shape[1] == 0:
            return [(np.array([], dtype=str), np.array([], dtype=np.float32)) for _ in items]
        product = sp.csr_matrix(self.vectors[np.asarray(items)].multiply(self.profile(row)))
        out = []
        for r in range(product.shape[0]):
            start, end = product.indptr[r], product.indptr[r + 1]
            out.append((self.tag_names[product.indices[start:end]], product.data[start:end].astype(np.float32)))
        return out

    # --- one user row (bit-identical to profile/score/tag_overlap above) -------------------------
    def _row_ready(self) -> bool:
        """The fast path replays SciPy on canonical tag vectors (no repeated tag within an item)."""
        cached = self.__dict__.get("_canonical")
        if cached is None or cached[0] is not self.vectors:
            cached = self._canonical = (self.vectors, is_canonical(self.vectors))
        return cached[1]

    def _profile_row(self, row: UserRow) -> tuple[np.ndarray, np.ndarray, np.float32]:
        """`profile(row)` as (tag indices, values) in the order SciPy stores them, and 1/‖p‖.

        profile = diag(1/‖p‖) @ p with p = weighted row @ vectors. csr_matmat emits columns in the
        reverse order of their first touch, so p is stored in reverse first-touch order and the
        scaled profile in first-touch order; the norm sums p² in the order `multiply` leaves it.
        """
        key = ("content-profile", id(self.vectors))
        found = row.cache.get(key)
        if found is not None:
            return found[0], found[1], found[2]
        vectors = self.vectors
        positions, lengths = ranges(vectors.indptr, row.indices)
        tags = vectors.indices[positions]
        sums = np.zeros(vectors.shape[1], dtype=np.float32)
        np.add.at(sums, tags, np.repeat(row.weighted(self.weighting), lengths) * vectors.data[positions])
        first = np.full(vectors.shape[1], len(tags), dtype=np.int64)
        np.minimum.at(first, tags, np.arange(len(tags), dtype=np.int64))
        is_first = np.zeros(len(tags), dtype=bool)
        is_first[first[first < len(tags)]] = True
        stored = tags[is_first][::-1]  # reverse first-touch order
        stored = stored[sums[stored] != 0]
        values = sums[stored]
        canonical = len(stored) < 2 or bool((np.diff(stored) > 0).all())
        squares = values * values if canonical else (values * values)[::-1]
        squares = squares[squares != 0]
        norms = np.zeros(1, dtype=np.float32)
        if len(squares):
            norms[0] = np.add.reduceat(squares, [0])[0]
        norms = np.sqrt(norms)
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
        if scale[0] == 0:
            profile_tags, profile_values = stored[:0], values[:0]
        else:
            scaled = scale[0] * values
            keep = scaled != 0
            profile_tags, profile_values = stored[keep][::-1], scaled[keep][::-1]
        row.cache[key] = (profile_tags, profile_values, scale[0], vectors)
        return profile_tags, profile_values, scale[0]

    def row_terms(self, row: UserRow) -> RowTerms:
        if self.vectors.shape[1] == 0:
            return ScoresOnly(np.zeros(self.n_items, dtype=np.float32))
        return ContentTerms(self, row)

    def _scores_row(self, row: UserRow) -> np.ndarray:
        """`score(row)[0]` from the row's profile (the profile times every item's tag vector)."""
        if not self._row_ready():
            return self.score(row.csr())[0]
        tags, values, _scale = self._profile_row(row)
        transposed = self._vectors_t
        positions, lengths = ranges(transposed.indptr, tags)
        out = np.zeros(transposed.shape[1], dtype=np.float32)
        np.add.at(out, transposed.indices[positions], np.repeat(values, lengths) * transposed.data[positions])
        return out

    def _scale_row(self, row: UserRow) -> float:
        """1/‖p‖ of the row's profile (0 for an empty profile)."""
        if self._row_ready():
            return float(self._profile_row(row)[2])
        profile = sp.csr_matrix(apply_weighting(row.csr(), self.weighting) @ self.vectors)
        norm = float(np.sqrt(profile.multiply(profile).sum()))
        return 1.0 / norm if norm > 0 else 0.0

    def _block_row(self, row: UserRow, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each history item's weighted tag similarity to each of `items`: the score of an item is
        the profile (Σ weighted tag vectors, times 1/‖p‖) times its vector, so these summed and
        times 1/‖p‖ (`ContentTerms.scale`) are its score."""
        if not self._row_ready():
            weighted = apply_weighting(row.csr(), self.weighting)
            sims = dense_rows(self.vectors[weighted.indices] @ self._vectors_t[:, items])
            return weighted.indices, weighted.data[:, None] * sims
        vectors = self.vectors
        # The chosen items' tag vectors, dense over the tags they carry (tags x items).
        positions, lengths = ranges(vectors.indptr, items)
        item_tags = vectors.indices[positions]
        carried = np.sort(item_tags)  # the distinct tags (np.unique is slow on small arrays)
        carried = carried[np.concatenate(([True], carried[1:] != carried[:-1]))] if len(carried) else carried
        chosen = np.zeros((len(carried), len(items)), dtype=np.float32)
        stored = np.zeros((len(carried), len(items)), dtype=bool)
        at = (np.searchsorted(carried, item_tags), np.repeat(np.arange(len(items)), lengths))
        chosen[at] = vectors.data[positions]
        stored[at] = True
        # Each (history item, tag) entry meets the chosen items carrying that tag; the products are
        # summed per (history item, chosen item) in the history item's tag order, as csr_matmat does.
        positions, lengths = ranges(vectors.indptr, row.indices)
        tags = vectors.indices[positions]
        sims = np.zeros(row.nnz * len(items), dtype=np.float32)
        if len(carried) and len(tags):
            spot = np.minimum(np.searchsorted(carried, tags), len(carried) - 1)
            shared = np.flatnonzero(carried[spot] == tags)
            flat = np.flatnonzero(stored[spot[shared]])  # row-major: history tag order kept
            entry, column = shared[flat // len(items)], flat % len(items)
            terms = vectors.data[positions[entry]] * chosen[spot[entry], column]
            cells = np.repeat(np.arange(row.nnz), lengths)[entry] * len(items) + column
            np.add.at(sims, cells, terms)
        return row.indices, row.weighted(self.weighting)[:, None] * sims.reshape(row.nnz, len(items))

    def tag_overlap_row(self, row: UserRow, items: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """`tag_overlap(row, items)` for one user row given as arrays."""
        if self.vectors.shape[1] == 0 or not self._row_ready():
            return self.tag_overlap(row.csr(), items)
        items = np.asarray(items)
        tags, values, _scale = self._profile_row(row)
        profile = np.zeros(self.vectors.shape[1], dtype=np.float32)
        profile[tags] = values
        # One item: `multiply` is an element-wise product, in tag order when both rows are sorted.
        # Several: a product with diag(profile), which stores each item's tags in reverse order.
        ascending = len(items) == 1 and (len(tags) < 2 or bool((np.diff(tags) > 0).all()))
        indptr, indices, data = self.vectors.indptr, self.vectors.indices, self.vectors.data
        out = []
        for item in items.tolist():
            item_tags = indices[indptr[item]:indptr[item + 1]]
            weights = data[indptr[item]:indptr[item + 1]] * profile[item_tags]
            if not ascending:
                item_tags, weights = item_tags[::-1], weights[::-1]
            keep = weights != 0
            out.append((self.tag_names[item_tags[keep]], weights[keep].astype(np.float32)))
        return out

    def _prepare(self) -> None:
        self._vectors_t = sp.csr_matrix(self.vectors.T)


class ContentTerms(RowTerms):
    """A row's content scores and their per-history-item terms (see `ContentTfidf._block_row`).

    The block leaves out the profile's 1/‖p‖ (it is `scale`): evidence compares history items
    within one pick, so a common factor changes nothing there, and multiplying by it would round
    a few shown evidence weights differently from earlier versions (2 in 3,000 HetRec picks).
    """

    def __init__(self, model: ContentTfidf, row: UserRow) -> None:
        self.model = model
        self.row = row

    def total(self) -> np.ndarray:
        return self.model._scores_row(self.row)

    def block(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.model._block_row(self.row, np.asarray(items))

    @property
    def scale(self) -> float:
        return self.model._scale_row(self.row)
