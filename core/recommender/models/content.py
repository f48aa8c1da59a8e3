"""Content-based scoring: TF-IDF over item tags and cosine similarity.

It needs no co-occurrence, so it reaches the long tail (most HetRec artists are known by one user)
and new catalogue items, and it gives the "tags that drove it" evidence. A user's taste profile is
the confidence-weighted sum of their items' TF-IDF vectors.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from core.recommender.artifacts import ArtifactReader, ArtifactWriter
from core.recommender.interactions import Interactions
from core.recommender.models._sparse import dense_rows
from core.recommender.models.base import Model
from core.recommender.tags import ItemTags, tfidf_vectors
from core.recommender.weighting import apply_weighting


class ContentTfidf(Model):
    name = "Content"

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
        self._vectors_t = sp.csr_matrix(self.vectors.T)
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

    def contributions(self, row: sp.csr_matrix, items: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        if self.vectors.shape[1] == 0:
            return None
        weighted = apply_weighting(row, self.weighting)
        sims = dense_rows(self.vectors[weighted.indices] @ self._vectors_t[:, np.asarray(items)])
        return weighted.indices, weighted.data[:, None] * sims

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

    def write_state(self, writer: ArtifactWriter, prefix: str) -> None:
        writer.put_sparse(f"{prefix}vectors", self.vectors)
        writer.put(f"{prefix}tag_names", self.tag_names)

    def read_state(self, reader: ArtifactReader, prefix: str) -> None:
        self.vectors = reader.get_sparse(f"{prefix}vectors").astype(np.float32)
        self._vectors_t = sp.csr_matrix(self.vectors.T)
        self.tag_names = reader.get(f"{prefix}tag_names").astype(str)
