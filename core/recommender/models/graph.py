"""SimilarGraph: scores from Last.fm's similar-artist graph (`artist.getSimilar`), followed from the user's plays.

score(j) = Σ_i w(i) · G[i, j] (+ `two_hop` · Σ_i w(i) · (G·G)[i, j]), where G[i, j] is the match of j
in i's similar list (G + Gᵀ with `symmetric`) and w the user's weighted history. The graph comes from everyone on Last.fm,
not from our members, so it knows artists no member plays: that is what lets a fresh server with
thirty listeners recommend beyond what those thirty already share. Evidence for a pick is the
user's artist(s) it is similar to ("similar to X on Last.fm").

The graph is an input like AOTY links (fixed at construction), so fitting only aligns it with the
vocabulary; it is saved with the artifact so serving never needs the database.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from core.recommender.interactions import Interactions
from core.recommender.models._sparse import keep_top_k_per_row
from core.recommender.models.item_item import ItemItemModel


class SimilarGraph(ItemItemModel):
    name = "SimilarGraph"

    def __init__(self, graph: sp.spmatrix | None = None, weighting: str = "rank", two_hop: float = 0.0,
                 k: int = 200, symmetric: bool = False) -> None:
        self.graph = sp.csr_matrix(graph, dtype=np.float32) if graph is not None else None
        self.weighting = weighting
        self.two_hop = two_hop
        self.k = k
        self.symmetric = symmetric
        self.sim = sp.csr_matrix((0, 0), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return {"weighting": self.weighting, "two_hop": self.two_hop, "k": self.k, "symmetric": self.symmetric}

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        graph = self.graph
        if graph is None or graph.shape != (data.n_items, data.n_items):
            graph = sp.csr_matrix((data.n_items, data.n_items), dtype=np.float32)
        sim = sp.csr_matrix(graph, dtype=np.float32, copy=True)
        if self.symmetric:
            # G + Gᵀ: "j is in i's list" and "i is in j's list" both say they are similar, and each
            # list is cut at 100, so the reverse direction recovers links the cut dropped.
            sim = sp.csr_matrix(sim + sim.T, dtype=np.float32)
        if self.two_hop > 0 and sim.nnz:
            # Friends of friends: reaches artists two "similar" steps away (G·G, pruned to k per row).
            hop = keep_top_k_per_row(sp.csr_matrix(sim @ sim, dtype=np.float32), self.k)
            hop.setdiag(0)
            peak = float(hop.data.max(initial=0.0))
            if peak > 0:
                sim = sp.csr_matrix(sim + np.float32(self.two_hop / peak) * hop, dtype=np.float32)
        sim.setdiag(0)
        sim.eliminate_zeros()
        sim.sort_indices()
        self.sim = sim
        return self
