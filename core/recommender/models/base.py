"""The one small interface every recommendation model implements.

Modelled on benfred/implicit: a model is fitted once on an `Interactions` matrix, then scores any
user *row* (the user's current strengths over the item vocabulary). Scoring from a row instead of a
stored user id is what makes the engine real time and cold-start safe: a listen that arrived a
second ago, or a user the model has never seen, is just a different row (NMF folds it in; item-item
models use it directly). Models work in item *indices*; vocabularies live in `Interactions`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from core.recommender.artifacts import ArtifactReader, ArtifactWriter
from core.recommender.interactions import Interactions
from core.recommender.models._row import UserRow
from core.recommender.models.terms import RowTerms, ScoresOnly


@dataclass(frozen=True)
class StateArray:
    """How one learned array is stored in an artifact: the type it is cast to on load (so an artifact
    written by an older version loads into the dtype today's scoring expects), whether it is a sparse
    matrix (`ArtifactWriter.put_sparse`), and the attribute holding it when that is not the key."""

    dtype: type
    sparse: bool = False
    attribute: str | None = None


class Model(ABC):
    """fit -> score rows -> recommend / similar items -> save / load."""

    name: ClassVar[str]
    n_items: int = 0
    #: The learned arrays, artifact key -> how it is stored, in the order they are written (the
    #: order is part of the file's bytes). Models declare this instead of hand-writing
    #: `write_state` / `read_state`; what is derived from the arrays is rebuilt in `_prepare`.
    state: ClassVar[Mapping[str, StateArray]] = {}

    # --- training -------------------------------------------------------------------------------
    @abstractmethod
    def fit(self, data: Interactions) -> Self:
        """Learn from the training strengths. Returns self so calls chain."""

    # --- scoring --------------------------------------------------------------------------------
    @abstractmethod
    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        """Scores (len(rows) x n_items, float32) for user rows of raw strengths; higher is better.

        An empty row must not fail: it gets the model's best guess (often all zeros).
        """

    def similar_items(self, item: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Most similar items to `item` (itself excluded): (indices, scores), best first."""
        scores = self.item_similarity(np.array([item]))[0].astype(np.float32, copy=True)
        scores[item] = -np.inf
        return top_n(scores, n)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Similarity rows (len(items) x n_items) used for 'similar items', feedback and evidence.

        Default: score a user who knows only that one item.
        """
        rows = sp.csr_matrix((np.ones(len(items), dtype=np.float32), (np.arange(len(items)), items)),
                             shape=(len(items), self.n_items))
        return self.score(rows)

    # --- one user row at serving time: one path for the scores and the evidence ----------------
    def row_terms(self, row: UserRow) -> RowTerms:
        """The row's scores and what they are made of (see core/recommender/models/terms.py).

        The scores must equal ``score(row.csr())[0]`` bit for bit; models override this to score
        from the row's arrays (skipping SciPy) and to say which history items drove each score.
        """
        return ScoresOnly(self.score(row.csr())[0])

    def _terms(self, row: UserRow) -> RowTerms:
        """`row_terms`, computed once per request (cached on the row: evidence reuses the scores' terms)."""
        key = ("terms", id(self))
        found = row.cache.get(key)
        if found is None:
            found = row.cache[key] = (self.row_terms(row), self)  # keep `self` alive: its id stays unique
        return found[0]  # type: ignore[no-any-return]

    def score_row(self, row: UserRow) -> np.ndarray:
        """``score(row)[0]`` for one user row given as arrays."""
        return self._terms(row).total()

    def contributions_row(self, row: UserRow, items: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Which of the user's items drove each of `items`: (history indices, contributions of shape
        len(history) x len(items)), or None if the model cannot say (e.g. popularity). They are
        terms of the same sum as `score_row` (batched over the recommended items: evidence is built
        for a whole list at once)."""
        return self._terms(row).block(np.asarray(items))

    def contributions(self, row: sp.csr_matrix, items: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """`contributions_row` for a sparse row (repeated columns count once, their strengths summed)."""
        user = UserRow.from_csr(row)
        if user is None:
            canonical = sp.csr_matrix(row, dtype=np.float32, copy=True)
            canonical.sum_duplicates()
            user = UserRow.from_csr(canonical)
            assert user is not None
        return self.contributions_row(user, items)

    def row_independent_scores(self) -> np.ndarray | None:
        """The scores every row gets, for models that ignore the row (priors); None otherwise.

        Lets the engine normalise them once instead of on every request.
        """
        return None

    def recommend(self, row: sp.csr_matrix, n: int = 10, *, exclude: np.ndarray | None = None,
                  filter_known: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-n item indices and scores for one user row, without known and excluded items."""
        scores = self.score(row)[0].astype(np.float32, copy=True)
        if filter_known:
            scores[row.indices] = -np.inf
        if exclude is not None and len(exclude):
            scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
        return top_n(scores, n)

    # --- persistence ----------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Constructor arguments, stored in the manifest so `load` rebuilds the same model."""
        return {}

    def write_state(self, writer: ArtifactWriter, prefix: str) -> None:
        """Put the arrays declared in `state` under `prefix` (so a hybrid can hold many models in one file)."""
        for key, spec in self.state.items():
            value = getattr(self, spec.attribute or key)
            if spec.sparse:
                writer.put_sparse(f"{prefix}{key}", value)
            else:
                writer.put(f"{prefix}{key}", value)

    def read_state(self, reader: ArtifactReader, prefix: str) -> None:
        """Restore what `write_state` wrote, then rebuild what is derived from it (`_prepare`)."""
        for key, spec in self.state.items():
            value = reader.get_sparse(f"{prefix}{key}") if spec.sparse else reader.get(f"{prefix}{key}")
            setattr(self, spec.attribute or key, value.astype(spec.dtype))
        self._prepare()

    def _prepare(self) -> None:  # noqa: B027 - optional hook: most models derive nothing
        """Rebuild derived state (caches, factorisations) from the arrays in `state`; after fit and load."""

    def save(self, path: Path) -> Path:
        writer = ArtifactWriter(meta={"model": self.name, "params": self.params(), "n_items": self.n_items})
        self.write_state(writer, "")
        return writer.save(path)

    @classmethod
    def load(cls, path: Path) -> Model:
        from core.recommender.models import MODEL_TYPES

        reader = ArtifactReader.open(path)
        model = MODEL_TYPES[reader.meta["model"]](**reader.meta.get("params", {}))
        model.n_items = int(reader.meta["n_items"])
        model.read_state(reader, "")
        return model


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the n largest finite scores, best first (argpartition: O(items))."""
    finite = np.isfinite(scores)
    n = int(min(n, finite.sum()))
    if n <= 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.float32)
    if n < len(scores):
        part = np.argpartition(-scores, n - 1)[:n]
    else:
        part = np.arange(len(scores))
    order = part[np.lexsort((part, -scores[part]))]
    order = order[np.isfinite(scores[order])][:n]
    return order.astype(np.int64), scores[order]


def binary_columns_popularity(matrix: sp.csr_matrix) -> np.ndarray:
    """Users per item (from a users x items matrix)."""
    return np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.float64)
