"""Inputs and outputs of the explainer, and the `Explainer` protocol every implementation follows.

The explainer turns engine results into short human sentences. It has its own small input types for
the two things the engine does not already describe as a dataclass (a playlist to name, a weekly DM
to open) and one output type, `Explanation`, which says where the text came from so callers and
logs can tell a model answer from a template (and tests can assert the fallback happened).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from core.domain import Compatibility, Recommendation

Source = Literal["llm", "template", "cache"]
UserRef = int | str | None  # whatever the caller uses as a user id; only ever logged hashed


@dataclass(frozen=True)
class Explanation:
    """A sentence (or two) ready to show, and its provenance.

    `source` is "llm" (fresh, grounded model answer), "cache" (a grounded model answer given
    earlier for the same evidence) or "template" (no model). `reason` says why the template was used
    ("no-llm", "timeout", "ungrounded: …", "budget", …) so fallbacks are visible in logs and tests.
    `name` is only set for playlists (the playlist's title; `text` is then its description).
    """

    text: str
    source: Source
    reason: str | None = None
    name: str | None = None
    kind: str = ""


@dataclass(frozen=True)
class PlaylistBrief:
    """What a playlist was built from: enough to name it without seeing its tracks.

    `seed` is the user's own description of the request ("rainy day shoegaze", "blend of Ana and
    Ben") or None for a playlist built from recommendations.
    """

    seed: str | None
    top_artists: tuple[str, ...] = ()
    top_tags: tuple[str, ...] = ()
    count: int = 0


@dataclass(frozen=True)
class WeeklyBrief:
    """What this week's DM contains; `display_name` is the name the user shows on Discord."""

    display_name: str
    rec_count: int
    top_tags: tuple[str, ...] = ()
    top_artists: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pair:
    """Display names for a compatibility explanation.

    `a` None means "the person asking", written in the second person ("you"). Only names given here
    are ever shown or sent to a model: never ids or usernames.
    """

    a: str | None = None
    b: str = "them"


@dataclass(frozen=True)
class Preferences:
    """Structured steering parsed from free-text feedback; the recommender applies it.

    - `boost_tags` / `avoid_tags`: lower-case tags (or free words the recommender may match to
      tags or artists), e.g. ("shoegaze",) / ("metal",).
    - `era`: inclusive year range, e.g. (1990, 1999) for "90s"; None when not mentioned.
    - `era_bias`: "older" / "newer" when the user asked relatively ("older stuff") rather than for
      a decade.
    - `discovery_delta`: relative change of the discovery level in -1..1 (+ = deeper cuts / less
      popular, - = more mainstream); `discovery`: an absolute level 0..1 when the user gave one.
    """

    boost_tags: tuple[str, ...] = ()
    avoid_tags: tuple[str, ...] = ()
    era: tuple[int, int] | None = None
    era_bias: Literal["older", "newer"] | None = None
    discovery_delta: float | None = None
    discovery: float | None = None

    @property
    def is_empty(self) -> bool:
        return self == Preferences()


@dataclass(frozen=True)
class FeedbackResult:
    """Parsed feedback and where it came from ("llm", "cache" or "template" = keyword parser)."""

    preferences: Preferences
    source: Source
    reason: str | None = None
    notes: tuple[str, ...] = field(default=())


@runtime_checkable
class Explainer(Protocol):
    """What every explainer offers. `user_id` is only used for budgets and hashed logs.

    Implementations: `TemplateExplainer` (no model, never fails), `OpenAIExplainer` (raises
    `ExplainFailed` when the model is slow, wrong or ungrounded) and `GroundedExplainer`, the one
    callers use, which tries the model within budget and deadline and falls back to the template.
    """

    async def recommendation(self, rec: Recommendation, *, user_id: UserRef = None) -> Explanation: ...

    async def recommendations(
        self, recs: Sequence[Recommendation], *, user_id: UserRef = None
    ) -> list[Explanation]: ...

    async def compatibility(
        self, compat: Compatibility, pair: Pair = Pair(), *, user_id: UserRef = None
    ) -> Explanation: ...

    async def playlist(self, brief: PlaylistBrief, *, user_id: UserRef = None) -> Explanation: ...

    async def weekly_opener(self, brief: WeeklyBrief, *, user_id: UserRef = None) -> Explanation: ...

    async def preferences(
        self, text: str, *, known_tags: Sequence[str] = (), user_id: UserRef = None
    ) -> FeedbackResult: ...


class ExplainFailed(Exception):
    """A model answer could not be used; `reason` is short and safe to log (no user data)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)
