"""`RowTerms`: one user row's scores and the per-history-item contributions they are made of.

Each model scores a served user through one method, `Model.row_terms(row)`. Its result is the one
path both the scores and the evidence are drawn from: `total()` is the model's scores for the row
(`Model.score_row`), `block(items)` the contributions of each history item to the scores of `items`
(`Model.contributions_row`, "because you listen to X"). For the linear models (EASE, item-item
neighbourhoods, AOTY links, the similar graph) the scores *are* the contributions summed over the
history; the content model's are too, times one factor per row (`scale`: its profile's 1/‖p‖). So
the score and its explanation cannot drift apart: a change to a model's scoring changes both, and
the model contract suite checks that they add up.

A row's terms are computed once per request and cached on the `UserRow` (its per-request scratch),
so the evidence for the chosen items reuses what scoring already computed.
"""

from __future__ import annotations

import numpy as np

from core.recommender.models._row import RowGather, sequential_sum


class RowTerms:
    """A model's scores for one user row; `block` is None when the model cannot say what drove them."""

    def total(self) -> np.ndarray:
        """Scores over the whole vocabulary (1-D float32), equal to ``Model.score(row)[0]`` bit for bit."""
        raise NotImplementedError

    def block(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(history item indices, contributions of shape len(history) x len(items)), or None."""
        return None

    @property
    def scale(self) -> float:
        """The factor that turns the block's column sums into the scores (``total()[items]``)."""
        return 1.0


class ScoresOnly(RowTerms):
    """Scores with no per-history-item story (popularity and quality priors, NMF's fold-in)."""

    def __init__(self, scores: np.ndarray) -> None:
        self._scores = scores

    def total(self) -> np.ndarray:
        return self._scores.copy()


class DenseTerms(RowTerms):
    """Terms of a dense item-item model over a subset of `columns` (EASE: its modelled items).

    ``terms[k, c]`` = weight of history item k x matrix[k's row, c]; the scores are their sum.
    """

    def __init__(self, history: np.ndarray, columns: np.ndarray, terms: np.ndarray, n_items: int) -> None:
        self.history = history  # vocabulary index of each history row of `terms`
        self.columns = columns  # sorted vocabulary index of each column of `terms`
        self.terms = terms
        self.n_items = n_items

    def total(self) -> np.ndarray:
        out = np.zeros(self.n_items, dtype=np.float32)
        if len(self.columns):
            out[self.columns] = sequential_sum(self.terms)
        return out

    def block(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        if len(self.columns) == 0:
            return None
        items = np.asarray(items)
        positions = np.minimum(np.searchsorted(self.columns, items), len(self.columns) - 1)
        modelled = self.columns[positions] == items
        # C order: column sums over the history (the evidence's scale) then add rows in turn, as the
        # C-ordered blocks of the other models do; NumPy leaves this product in Fortran order.
        return self.history, np.ascontiguousarray(self.terms[:, positions] * modelled[None, :])


class GatherTerms(RowTerms):
    """Terms of a sparse item-item matrix (`RowGather`): the stored entries of the history's rows."""

    def __init__(self, history: np.ndarray, weights: np.ndarray, found: RowGather, n_columns: int) -> None:
        self.history = history
        self.weights = weights
        self.found = found
        self.n_columns = n_columns

    def total(self) -> np.ndarray:
        return self.found.dense(self.n_columns)

    def block(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = self.found.block(np.asarray(items), len(self.history))
        return self.history, self.weights[:, None] * values
