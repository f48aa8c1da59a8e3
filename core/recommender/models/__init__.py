"""Recommendation models behind one interface (`Model`), registered by name for loading artifacts."""

from __future__ import annotations

from core.recommender.models.aoty import ItemLinks, QualityPrior
from core.recommender.models.base import Model, top_n
from core.recommender.models.content import ContentTfidf
from core.recommender.models.ease import EASE
from core.recommender.models.graph import SimilarGraph
from core.recommender.models.ials import IALS
from core.recommender.models.itemknn import ItemKNN
from core.recommender.models.nmf import NMF
from core.recommender.models.popularity import MostPop
from core.recommender.models.rp3beta import RP3beta

MODEL_TYPES: dict[str, type[Model]] = {m.name: m for m in (MostPop, ItemKNN, NMF, ContentTfidf, EASE, RP3beta,
                                                           QualityPrior, ItemLinks, SimilarGraph, IALS)}

__all__ = ["EASE", "IALS", "MODEL_TYPES", "NMF", "ContentTfidf", "ItemKNN", "ItemLinks", "Model", "MostPop",
           "QualityPrior", "RP3beta", "SimilarGraph", "top_n"]
