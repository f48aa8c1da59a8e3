"""The default set of hybrid components and their hyper-parameters (selected on validation data only).

Kept apart from the hybrid so a deployment (or the large-scale benchmark) can swap the menu
without touching blending code. Component names are stable: they appear in evidence `sources`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from core.recommender.models import (
    EASE,
    NMF,
    ContentTfidf,
    ItemKNN,
    ItemLinks,
    Model,
    MostPop,
    QualityPrior,
    RP3beta,
    SimilarGraph,
)
from core.recommender.tags import ItemTags

#: SimilarGraph hyper-parameters (see `default_components`).
GRAPH_PARAMS: dict[str, object] = {"weighting": "rank", "two_hop": 0.0, "symmetric": True}


def default_components(tags: ItemTags | None = None, quality: np.ndarray | None = None,
                       links: sp.spmatrix | None = None, graph: sp.spmatrix | None = None) -> dict[str, Model]:
    """EASE(+tags), RP3beta, ItemKNN, NMF, content TF-IDF, popularity; AOTY quality/links and Last.fm's
    similar-artist graph when given.

    Hyper-parameters are re-derived by ``sonance eval tune --data-dir DIR`` (`core.recommender.tuning`):
    validation carved from the training rows of HetRec split seeds 0-2, test rows discarded, tag rows
    of held-out pairs dropped; mean validation NDCG@10 (a point must beat the default by > 0.001):
    EASE λ=100 on per-user rank weights with tags at weight 30: 0.1843 (λ=50 0.1792, λ=200 0.1848,
    no tags 0.1783, tags x60 0.1792); RP3beta α=1 β=0.25 k=200: 0.1697 (β=0.5 0.1033); ItemKNN
    k=200 shrink=10: 0.1710 (k=100 0.1681); NMF 16 factors on log1p: 0.1299 (32 factors 0.1154).
    The graph (``sonance eval tune --community-size 30``, community seeds 100-107 x split seeds 0-2):
    rank weighting over G + Gᵀ 0.2042 (G alone 0.1917, log1p 0.2040, binary 0.2013, + two hops 0.2009).
    """
    components: dict[str, Model] = {
        "ease": EASE(l2=100.0, weighting="rank", min_users=3, tags=tags, tag_weight=30.0),
        "rp3": RP3beta(alpha=1.0, beta=0.25, k=200, weighting="rank"),
        "knn": ItemKNN(k=200, shrink=10.0, weighting="rank"),
        "nmf": NMF(factors=16, weighting="log1p", max_iter=50, min_users=3),
        "content": ContentTfidf(tags),
        "pop": MostPop(),
    }
    if quality is not None:
        components["quality"] = QualityPrior(quality)
    if links is not None:
        components["links"] = ItemLinks(links)
    if graph is not None:
        components["graph"] = SimilarGraph(graph, **GRAPH_PARAMS)
    return components


def scalable_components(tags: ItemTags | None = None, *, ease_items: int = 3000) -> dict[str, Model]:
    """For catalogues of hundreds of thousands of items: EASE capped to the most popular items,
    sparse neighbourhoods, content and popularity (NMF dropped: its fit dominates at that scale)."""
    return {
        "ease": EASE(l2=100.0, weighting="rank", min_users=3, max_items=ease_items, tags=tags, tag_weight=30.0),
        "rp3": RP3beta(alpha=1.0, beta=0.25, k=100, weighting="rank"),
        "knn": ItemKNN(k=100, shrink=10.0, weighting="rank"),
        "content": ContentTfidf(tags),
        "pop": MostPop(),
    }
