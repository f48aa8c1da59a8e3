"""`RecommendService`: the recommender as the adapter, the weekly DMs and the scheduler see it.

One per process (`RecommendService.of(services)`). A thin facade over the rooms that do the work:

* `served.ServedModels` — the model lifecycle (load, refresh, train, swap, warm; scoring workers),
  a `registry.ModelRegistry` over the saved artifacts;
* `lists.PersonalLists` — one member's list: history, feedback, window and /tune read fresh, turned
  into one `RecommendRequest` that the engine steers by, recorded as shown;
* `preferences.PreferenceStore` — /tune storage; `votes.Votes` — 👍/👎 and "Why?";
  `similar.SimilarArtists` — /similar and autocomplete; `codec` — what a shown row stores.

Personal methods take the `Asker` the adapter resolved once per interaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.asker import Asker, Caller
from core.domain import Kind
from core.errors import NotYours
from core.explain.types import Preferences
from core.recommender.lists import DISCOVERY_LEVELS, MAX_COUNT, PersonalLists
from core.recommender.preferences import PreferenceStore
from core.recommender.requests import RecommendRequest, UserHistory
from core.recommender.results import FeedbackOutcome, RecommendationList, ShownRecommendation, SimilarResult
from core.recommender.served import LoadedModel, NoItemData, ServedModels, StillLearning
from core.recommender.similar import SimilarArtists
from core.recommender.votes import Votes

if TYPE_CHECKING:
    from core.domain import Recommendation
    from core.recommender.scoring_worker import ScoringWorkers
    from core.services import Services
    from core.weekly import DigestContent

__all__ = ["DISCOVERY_LEVELS", "MAX_COUNT", "FeedbackOutcome", "LoadedModel", "NoItemData", "NotYours",
           "RecommendService", "RecommendationList", "ShownRecommendation", "SimilarResult", "StillLearning"]

WEEKLY_COUNT = 5


class RecommendService:
    """The process-wide recommender over the database (see the module docstring)."""

    def __init__(self, services: Services, *, refresh_interval_s: float = 60.0,
                 first_train_wait_s: float = 25.0) -> None:
        self.services = services
        self.models = ServedModels(services, refresh_interval_s=refresh_interval_s,
                                   first_train_wait_s=first_train_wait_s)
        self.lists = PersonalLists(services, self.models)
        self.preferences = PreferenceStore(services)
        self.votes = Votes(services)
        self.similar_artists = SimilarArtists(services, self.models)

    @classmethod
    def of(cls, services: Services) -> RecommendService:
        """The process's one instance (`Services.recommend`)."""
        return services.recommend

    async def aclose(self) -> None:
        """Let a running training finish its DB write (Services.close calls this)."""
        await self.models.aclose()

    # --- the model lifecycle (served.ServedModels) ---------------------------------------------------
    @property
    def scoring(self) -> ScoringWorkers:
        return self.models.scoring

    @property
    def swaps(self) -> int:
        """How many engines were swapped in (observability and tests)."""
        return self.models.registry.swaps

    async def warm_up(self, kind: Kind = Kind.ARTIST) -> None:
        await self.models.warm_up(kind)

    def status(self) -> dict[str, str]:
        return self.models.status()

    def model(self, kind: Kind | str = Kind.ARTIST) -> LoadedModel | None:
        """The engine currently served for `kind` (None before first use)."""
        return self.models.model(kind)

    async def ensure_model(self, kind: Kind | str = Kind.ARTIST) -> LoadedModel:
        """The engine to serve: loaded, refreshed from a newer active artifact, or trained now."""
        return await self.models.ensure(kind)

    async def retrain(self, kind: Kind | str = Kind.ARTIST, *, tune: bool = True) -> dict[str, Any]:
        return await self.models.retrain(kind, tune=tune)

    async def retrain_all(self, *, tune: bool = True) -> dict[str, dict[str, Any]]:
        return await self.models.retrain_all(tune=tune)

    def training_in_progress(self, kind: Kind | str = Kind.ARTIST) -> bool:
        """Whether a training of `kind` is running (a `retrain` now would join it, not start anew)."""
        return self.models.registry.building(Kind(kind))

    async def score(self, loaded: LoadedModel, history: UserHistory, request: RecommendRequest
                    ) -> list[Recommendation]:
        return await self.models.score(loaded, history, request)

    # --- requests --------------------------------------------------------------------------------
    async def recommend(self, asker: Asker | Caller, kind: Kind | str = Kind.ARTIST, count: int = 10,
                        discovery: float | str | None = None, tag: str | None = None,
                        context: str = "command", record: bool = True) -> RecommendationList:
        """A fresh list for the asker, each item recorded as shown (ids for the buttons) unless
        `record` is off (previews such as the demo). A `Caller` is resolved in the list's own first
        database session (`AskerDirectory.resolve_in`), saving the adapter a session of its own."""
        return await self.lists.recommend(asker, kind=kind, count=count, discovery=discovery, tag=tag,
                                          context=context, record=record)

    async def weekly_picks(self, asker: Asker, count: int = WEEKLY_COUNT) -> RecommendationList:
        """This week's DM picks (recorded with context "dm", so 👍/👎 in the DM work)."""
        return await self.lists.recommend(asker, kind=Kind.ARTIST, count=count, context="dm")

    async def weekly_content(self, asker: Asker) -> DigestContent:
        """`core.weekly.ContentPort`: the weekly DM's items from the recommender, with shown ids."""
        from core.weekly import DigestContent, DigestItem

        picks = await self.weekly_picks(asker)
        top = tuple(dict.fromkeys(w.name for s in picks.items for w in s.rec.evidence.items))[:3]
        tags = tuple(dict.fromkeys(w.name for s in picks.items for w in s.rec.evidence.tags))[:3]
        items = tuple(DigestItem(s.rec.name, s.reason, s.rec.url, str(picks.kind), s.shown_id) for s in picks.items)
        return DigestContent(items, "recommender", top_artists=top, top_tags=tags)

    async def feedback(self, asker: Asker, shown_id: int, value: int) -> FeedbackOutcome:
        return await self.votes.feedback(asker, shown_id, value)

    async def why(self, asker: Asker, shown_id: int) -> str:
        return await self.votes.why(asker, shown_id)

    async def set_preferences(self, asker: Asker, text: str) -> Preferences:
        return await self.preferences.update(asker, text)

    # --- not personal ----------------------------------------------------------------------------
    async def similar(self, query: str, kind: Kind | str = Kind.ARTIST, count: int = 10) -> SimilarResult:
        return await self.similar_artists.similar(query, kind, count)

    async def autocomplete(self, prefix: str, limit: int = 25) -> list[str]:
        return await self.similar_artists.autocomplete(prefix, limit)

    async def tag_autocomplete(self, prefix: str, limit: int = 25) -> list[str]:
        return await self.similar_artists.tag_autocomplete(prefix, limit)
