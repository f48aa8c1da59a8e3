"""What the recommendation service hands the adapter: plain, immutable results."""

from __future__ import annotations

from dataclasses import dataclass

from core.domain import Kind, Recommendation


@dataclass(frozen=True)
class ShownRecommendation:
    """One item as shown to a user: its `recommendations_shown` row id (the buttons' key), the
    recommendation with its evidence, and a one-line reason."""

    shown_id: int
    rec: Recommendation
    reason: str


@dataclass(frozen=True)
class RecommendationList:
    kind: Kind
    items: tuple[ShownRecommendation, ...]
    discovery: float
    model_version: str
    note: str | None = None  # e.g. the cold-start explanation, or why the list is short
    tag: str | None = None


@dataclass(frozen=True)
class FeedbackOutcome:
    name: str
    value: int
    kind: Kind


@dataclass(frozen=True)
class SimilarResult:
    seed: str
    items: tuple[Recommendation, ...]
    note: str | None = None  # where the list comes from when not from the model (Last.fm's graph)
