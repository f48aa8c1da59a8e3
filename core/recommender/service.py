"""`RecommendService`: Discord ids in, personal recommendation lists (recorded as shown) out.

One per process (`RecommendService.of(services)`), shared by the cog, the weekly DMs and the
scheduler. Why it is shaped like this:

* **Models are immutable and swapped atomically.** Engines live in one dict that is *replaced* by a
  single assignment when a (re)trained or newly activated model arrives; a request takes its engine
  reference once at the start, so it never mixes two models. Training runs in a worker thread
  (`core.recommender.training`), never on the event loop.
* **Everything personal is read at request time.** The user's plays, thumbs up/down, what was shown
  inside the repeat window and their /tune preferences come from the database on every request and
  are handed to the engine as a history row plus request controls. A listen synced a second ago or a
  thumbs-down just clicked changes the next list with no retraining.
* **First use loads, or learns.** The active `model_artifacts` row is loaded on first use; other
  processes (the CLI, another shard) may activate newer versions, which are picked up within
  `refresh_interval_s`. With no artifact but data, training starts in the background and the user is
  told "still learning" if it does not finish within `first_train_wait_s`.
* **Honesty over filler.** Users with no usable history get popular picks with a note saying so;
  album/track lists need synced listens and say so instead of guessing; users with nothing linked
  get `NotLinked`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.db.repositories import AccountRepository, CatalogRepository, SchedulingRepository, UserRepository
from core.db.repositories.recommendations import ItemInfo, RecommendationRepository
from core.db.types import utcnow
from core.domain import AotyFacts, Evidence, Kind, Recommendation, Weighted
from core.errors import InvalidInput, NotEnoughHistory, NotFound, NotLinked, SonanceError
from core.explain.types import Preferences
from core.fuzzy import complete_artists, complete_tags, did_you_mean, suggest_artist, suggest_tag
from core.matching import artist_key
from core.recommender.engine import RecommenderEngine
from core.recommender.requests import RecommendRequest, UserHistory
from core.recommender.scoring_worker import ScoringWorkers
from core.recommender.training import ARTIFACT_KIND, train_from_db
from core.tags import is_listener_tag, tag_key

if TYPE_CHECKING:
    from core.services import Services
    from core.weekly import DigestContent

log = logging.getLogger(__name__)

COMPONENT = "recommend"
#: Discovery dial presets of /recommend (0 = close to what you play, 1 = deep cuts).
DISCOVERY_LEVELS = {"familiar": 0.0, "balanced": 0.4, "deep cuts": 0.8}
MAX_COUNT = 25
MAX_PER_ARTIST = 2  # album/track lists: at most this many by one artist
BOOST_FACTOR = 0.5  # a /tune "more X" item's rank position is multiplied by this (moves it up)
CACHE_NAMESPACE = "recs"


class StillLearning(SonanceError):
    user_message = ("I'm still learning everyone's taste from the listening data (training a model). "
                    "Try again in a minute!")


class NotYours(SonanceError):
    user_message = "Those buttons belong to someone else's recommendations. Run /recommend for your own!"


class NoItemData(NotEnoughHistory):
    """Album/track recommendations without item-level listens: say so instead of faking it."""


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


@dataclass(frozen=True)
class LoadedModel:
    """An engine and the artifact version it came from; replaced whole, never mutated."""

    engine: RecommenderEngine
    version: str
    path: Path | None = None  # its saved artifact, which scoring workers load


@dataclass
class _KindState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    training: asyncio.Task[LoadedModel] | None = None
    checked_at: float = float("-inf")


def preferences_to_json(prefs: Preferences) -> dict[str, Any]:
    data = asdict(prefs)
    data["boost_tags"], data["avoid_tags"] = list(prefs.boost_tags), list(prefs.avoid_tags)
    data["era"] = list(prefs.era) if prefs.era else None
    return data


def preferences_from_stored(data: dict[str, Any] | None) -> Preferences:
    """Stored JSON -> Preferences; tolerant of older or partial rows (they only steer, never fail)."""
    if not data:
        return Preferences()
    era = data.get("era")
    return Preferences(
        boost_tags=tuple(str(t) for t in data.get("boost_tags") or ()),
        avoid_tags=tuple(str(t) for t in data.get("avoid_tags") or ()),
        era=(int(era[0]), int(era[1])) if isinstance(era, list | tuple) and len(era) == 2 else None,
        era_bias=data.get("era_bias") if data.get("era_bias") in ("older", "newer") else None,
        discovery_delta=float(data["discovery_delta"]) if data.get("discovery_delta") is not None else None,
        discovery=float(data["discovery"]) if data.get("discovery") is not None else None)


def merge_preferences(old: Preferences, new: Preferences) -> Preferences:
    """A new /tune refines the old one: "more X" cancels an earlier "less X" and vice versa."""
    boost = [t for t in old.boost_tags if t not in new.avoid_tags] + list(new.boost_tags)
    avoid = [t for t in old.avoid_tags if t not in new.boost_tags] + list(new.avoid_tags)
    return Preferences(
        boost_tags=tuple(dict.fromkeys(boost)), avoid_tags=tuple(dict.fromkeys(avoid)),
        era=new.era or old.era, era_bias=new.era_bias or old.era_bias,
        discovery_delta=new.discovery_delta if new.discovery_delta is not None else old.discovery_delta,
        discovery=new.discovery if new.discovery is not None else old.discovery)


def tag_variants(tags: Sequence[str]) -> list[str]:
    """The keyword parser writes "dream-pop" where Last.fm says "dream pop": accept both spellings."""
    out: list[str] = []
    for tag in tags:
        out += [tag, tag.replace("-", " "), tag.replace(" ", "-")]
    return list(dict.fromkeys(out))


def evidence_to_json(rec: Recommendation) -> dict[str, Any]:
    """What a shown row stores: enough to rebuild the Recommendation for "Why?" months later."""
    ev = rec.evidence
    # Spelled out rather than `dataclasses.asdict`: that deep-copies recursively and cost ~1 ms per
    # /recommend (measured under `sonance bench bot`); the shape is the same.
    evidence = {"items": [{"name": w.name, "weight": w.weight} for w in ev.items],
                "tags": [{"name": w.name, "weight": w.weight} for w in ev.tags],
                "sources": dict(ev.sources),
                "aoty": None if ev.aoty is None else {f: getattr(ev.aoty, f) for f in _AOTY_FIELDS},
                "popularity": ev.popularity, "lastfm_listeners": ev.lastfm_listeners, "note": ev.note,
                "similar_to": [{"name": w.name, "weight": w.weight} for w in ev.similar_to]}
    return {"name": rec.name, "artist": rec.artist, "score": rec.score, "url": rec.url,
            "image_url": rec.image_url, "evidence": evidence}


_AOTY_FIELDS = tuple(f.name for f in fields(AotyFacts))


def recommendation_from_json(kind: str, item_id: int, data: dict[str, Any] | None) -> Recommendation:
    data = data or {}
    ev = data.get("evidence") or {}
    aoty = ev.get("aoty")
    evidence = Evidence(
        items=tuple(Weighted(str(w["name"]), float(w["weight"])) for w in ev.get("items") or ()),
        tags=tuple(Weighted(str(w["name"]), float(w["weight"])) for w in ev.get("tags") or ()),
        sources={str(k): float(v) for k, v in (ev.get("sources") or {}).items()},
        aoty=AotyFacts(**{**aoty, "genres": tuple(aoty.get("genres") or ())}) if isinstance(aoty, dict) else None,
        popularity=ev.get("popularity"), note=ev.get("note"),
        lastfm_listeners=int(ev["lastfm_listeners"]) if ev.get("lastfm_listeners") is not None else None,
        similar_to=tuple(Weighted(str(w["name"]), float(w["weight"])) for w in ev.get("similar_to") or ()))
    return Recommendation(kind=Kind(kind), item_id=item_id, name=str(data.get("name") or "?"),
                          score=float(data.get("score") or 0.0), evidence=evidence, artist=data.get("artist"),
                          image_url=data.get("image_url"), url=data.get("url"))


class RecommendService:
    """The process-wide recommender over the database (see the module docstring)."""

    def __init__(self, services: Services, *, refresh_interval_s: float = 60.0,
                 first_train_wait_s: float = 25.0) -> None:
        self.services = services
        self.refresh_interval_s = refresh_interval_s
        self.first_train_wait_s = first_train_wait_s
        self._models: dict[Kind, LoadedModel] = {}
        self._state: dict[Kind, _KindState] = {}
        self.swaps = 0  # how many engines were swapped in (observability and tests)
        self._last_metrics: dict[Kind, dict[str, Any]] = {}
        self.scoring = ScoringWorkers(services.settings.worker_processes)

    @classmethod
    def of(cls, services: Services) -> RecommendService:
        return services.component(COMPONENT, cls)

    async def aclose(self) -> None:
        """Let a running training finish its DB write (Services.close calls this)."""
        tasks = [s.training for s in self._state.values() if s.training is not None and not s.training.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.scoring.aclose()

    async def warm_up(self, kind: Kind = Kind.ARTIST) -> None:
        """Load the served model and its scoring workers now (at bot start), not on the first request.

        With data but no saved model yet this starts the first training; with no data it quietly
        does nothing (the model is trained once listens arrive).
        """
        try:
            loaded = await self.ensure_model(kind)
        except SonanceError as exc:
            log.info("recommender warm-up skipped: %s", exc)
            return
        if loaded.path is not None:
            task = self.scoring.warm(loaded.path, loaded.version)
            if task is not None:
                await task

    def status(self) -> dict[str, str]:
        """For /healthz: whether the artist model is loaded and the scoring workers are ready."""
        return {"recommender": "ready" if Kind.ARTIST in self._models else "not loaded",
                "scoring_workers": self.scoring.status()}

    # --- models -----------------------------------------------------------------------------------
    def model(self, kind: Kind | str = Kind.ARTIST) -> LoadedModel | None:
        """The engine currently served for `kind` (None before first use)."""
        return self._models.get(Kind(kind))

    def _swap(self, kind: Kind, loaded: LoadedModel) -> None:
        """Atomic: one assignment replaces the mapping; readers holding the old engine keep it."""
        self._models = {**self._models, kind: loaded}
        self.swaps += 1
        log.info("recommender %s model %s is now serving", kind, loaded.version)

    def _kind_state(self, kind: Kind) -> _KindState:
        return self._state.setdefault(kind, _KindState())

    async def retrain(self, kind: Kind | str = Kind.ARTIST, *, tune: bool = True) -> dict[str, Any]:
        """Train from the DB off the event loop and swap the new engine in (the nightly job).

        Returns the training metrics (with ``version``). Concurrent calls for one kind share a run.
        """
        kind = Kind(kind)
        loaded = await self._train(kind, tune=tune)
        return {"version": loaded.version, **self._last_metrics.get(kind, {})}

    def training_in_progress(self, kind: Kind | str = Kind.ARTIST) -> bool:
        """Whether a training of `kind` is running (a `retrain` now would join it, not start anew)."""
        state = self._state.get(Kind(kind))
        return state is not None and state.training is not None and not state.training.done()

    async def retrain_all(self, *, tune: bool = True) -> dict[str, dict[str, Any]]:
        """The nightly job: retrain every granularity that has listening data (artists, albums,
        tracks), one after the other; a kind without enough data is skipped, not an error.

        Why all three: album and track models were otherwise trained once, on their first request,
        and never again, so albums and tracks listened to after that could never be recommended.
        Returns per kind either the metrics or {"skipped": reason}.
        """
        results: dict[str, dict[str, Any]] = {}
        for kind in (Kind.ARTIST, Kind.ALBUM, Kind.TRACK):
            try:
                results[str(kind)] = await self.retrain(kind, tune=tune)
            except NotEnoughHistory as exc:
                results[str(kind)] = {"skipped": exc.user_message}
        return results

    async def _train(self, kind: Kind, *, tune: bool = True) -> LoadedModel:
        state = self._kind_state(kind)
        if state.training is None or state.training.done():
            state.training = asyncio.create_task(self._train_and_swap(kind, tune), name=f"recommender-train-{kind}")
        return await asyncio.shield(state.training)

    async def _train_and_swap(self, kind: Kind, tune: bool) -> LoadedModel:
        engine, metrics = await train_from_db(self.services, kind=kind, tune=tune)
        loaded = LoadedModel(engine, str(metrics["version"]), Path(metrics["path"]) if metrics.get("path") else None)
        self._last_metrics = {**self._last_metrics, kind: metrics}
        self._swap(kind, loaded)
        self._kind_state(kind).checked_at = time.monotonic()
        return loaded

    async def ensure_model(self, kind: Kind) -> LoadedModel:
        """The engine to serve: loaded, refreshed from a newer active artifact, or trained now."""
        state = self._kind_state(kind)
        current = self._models.get(kind)
        if current is not None and time.monotonic() - state.checked_at < self.refresh_interval_s:
            return current
        async with state.lock:
            current = self._models.get(kind)
            if current is not None and time.monotonic() - state.checked_at < self.refresh_interval_s:
                return current
            if state.training is not None and not state.training.done():
                return await self._wait_for_training(state, current)
            async with self.services.session() as session:
                artifact = await SchedulingRepository(session).active_artifact(ARTIFACT_KIND, str(kind))
                has_data = artifact is not None or await RecommendationRepository(session).has_item_plays(str(kind))
            if artifact is not None and (current is None or current.version != artifact.version):
                try:
                    engine = await asyncio.to_thread(RecommenderEngine.load, Path(artifact.path))
                except SonanceError:
                    log.warning("active %s artifact %s unreadable; retraining", kind, artifact.version, exc_info=True)
                else:
                    self._swap(kind, LoadedModel(engine, artifact.version, Path(artifact.path)))
                    state.checked_at = time.monotonic()
                    return self._models[kind]
            elif artifact is not None and current is not None:
                state.checked_at = time.monotonic()
                return current
            if not has_data:
                raise self._no_data(kind)
            state.training = asyncio.create_task(self._train_and_swap(kind, True), name=f"recommender-train-{kind}")
            return await self._wait_for_training(state, current)

    async def _wait_for_training(self, state: _KindState, current: LoadedModel | None) -> LoadedModel:
        assert state.training is not None
        if current is not None:
            return current  # keep serving the old model while the new one trains
        try:
            return await asyncio.wait_for(asyncio.shield(state.training), self.first_train_wait_s)
        except TimeoutError:
            raise StillLearning() from None

    @staticmethod
    def _no_data(kind: Kind) -> SonanceError:
        if kind == Kind.ARTIST:
            return NotEnoughHistory("There's no listening data to learn from yet. Once members link Last.fm "
                                    "(/link) or an admin imports a dataset, I can recommend artists.")
        return NoItemData(f"{kind.capitalize()} recommendations need synced listening history (individual "
                          f"listens with {kind}s), and there isn't any yet. Link Last.fm with /link so I can "
                          "sync it, or ask for artists instead.")

    # --- users ------------------------------------------------------------------------------------
    async def _user_id(self, discord_id: int) -> int:
        async with self.services.session() as session:
            user = await UserRepository(session).by_discord_id(discord_id)
            if user is None:
                raise NotLinked()
            return int(user.id)

    # --- recommend --------------------------------------------------------------------------------
    async def recommend(self, discord_id: int, guild_id: int | None = None, kind: Kind | str = Kind.ARTIST,
                        count: int = 10, discovery: float | str | None = None, tag: str | None = None,
                        context: str = "command") -> RecommendationList:
        """A fresh list for a Discord user, each item recorded as shown (ids for the buttons)."""
        user_id = await self._user_id(discord_id)
        return await self.recommend_for_user(user_id, guild_id=guild_id, kind=kind, count=count,
                                             discovery=discovery, tag=tag, context=context)

    async def weekly_picks(self, user_id: int, count: int = 5) -> RecommendationList:
        """This week's DM picks for a DB user (recorded with context "dm", so 👍/👎 in the DM work)."""
        return await self.recommend_for_user(user_id, kind=Kind.ARTIST, count=count, context="dm")

    async def weekly_content(self, user_id: int) -> DigestContent:
        """`core.weekly.ContentPort`: the weekly DM's items from the recommender, with shown ids."""
        from core.weekly import DigestContent, DigestItem

        picks = await self.weekly_picks(user_id)
        top = tuple(dict.fromkeys(w.name for s in picks.items for w in s.rec.evidence.items))[:3]
        tags = tuple(dict.fromkeys(w.name for s in picks.items for w in s.rec.evidence.tags))[:3]
        items = tuple(DigestItem(s.rec.name, s.reason, s.rec.url, str(picks.kind), s.shown_id) for s in picks.items)
        return DigestContent(items, "recommender", top_artists=top, top_tags=tags)

    def _discovery(self, value: float | str | None, stored: float, prefs: Preferences) -> float:
        if isinstance(value, str):
            if value not in DISCOVERY_LEVELS:
                raise InvalidInput(f"Discovery must be one of: {', '.join(DISCOVERY_LEVELS)}.")
            return DISCOVERY_LEVELS[value]
        if value is not None:
            return float(min(1.0, max(0.0, value)))
        level = prefs.discovery if prefs.discovery is not None else stored
        if prefs.discovery_delta is not None:
            level += prefs.discovery_delta
        return float(min(1.0, max(0.0, level)))

    async def recommend_for_user(self, user_id: int, *, guild_id: int | None = None,
                                 kind: Kind | str = Kind.ARTIST, count: int = 10,
                                 discovery: float | str | None = None, tag: str | None = None,
                                 context: str = "command", record: bool = True) -> RecommendationList:
        """The whole request: current history + feedback + window + preferences -> engine -> record."""
        kind = Kind(kind)
        if not 1 <= count <= MAX_COUNT:
            raise InvalidInput(f"Pick between 1 and {MAX_COUNT} recommendations.")
        settings = self.services.settings
        since = utcnow() - timedelta(days=settings.repeat_window_days)
        async with self.services.session() as session:
            repo = RecommendationRepository(session)
            plays = await repo.item_plays(str(kind), user_id)
            if not plays and not await AccountRepository(session, None).has_any(user_id) \
                    and not await repo.item_plays("artist", user_id):
                raise NotLinked()
            votes = await repo.feedback(user_id, str(kind))
            recent = await repo.recently_shown(user_id, str(kind), since)
            discovery_setting, stored_preferences = await UserRepository(session).taste_settings(user_id)
            stored_discovery = float(discovery_setting if discovery_setting is not None else 0.3)
            prefs = preferences_from_stored(stored_preferences)
        loaded = await self.ensure_model(kind)
        engine = loaded.engine
        level = self._discovery(discovery, stored_discovery, prefs)
        history = UserHistory.from_rows([p.item_id for p in plays], [p.plays for p in plays],
                                        [p.last_played_at for p in plays])
        liked = {i for i, v in votes.items() if v > 0}
        disliked = {i for i, v in votes.items() if v < 0}
        tags = tuple(tag_variants([tag.strip().lower()])) if tag and tag.strip() else ()
        if tags and not engine.tags.items_with_any(tags).any():  # a tag nothing carries: say so, and guess
            raise NotFound(did_you_mean(f"I don't know a tag called “{tag.strip()[:60]}”.",  # type: ignore[union-attr]
                                        await suggest_tag(self.services, tags[0])))
        avoid = self._avoided(engine, prefs, tags)
        want = min(MAX_COUNT * 4, max(count * 3, count + 10)) if prefs.boost_tags else count
        request = RecommendRequest(count=want, discovery=level, tags=tags,
                                   max_per_artist=None if kind == Kind.ARTIST else MAX_PER_ARTIST,
                                   recently_shown=tuple(recent), liked=tuple(liked), disliked=tuple(disliked),
                                   exclude=tuple(avoid))
        recs = await self.score(loaded, history, request)
        recs = self._boosted(engine, recs, prefs.boost_tags)[:count]
        known_in_model = int(np.count_nonzero(engine.items.indices(history.items) >= 0))
        note = self._note(kind, len(plays), known_in_model, len(recs), count, tag)
        if not recs:
            raise NotFound(note or "I ran out of new things to recommend right now. Try again later or widen the tag.")
        shown_ids: list[int] = [0] * len(recs)
        async with self.services.session() as session:  # one unit of work: decorate, then record
            repo = RecommendationRepository(session)
            recs = await self._decorate(repo, kind, recs)
            if record:
                shown_ids = await repo.record_shown(
                    user_id, str(kind), [{"item_id": r.item_id, "score": float(r.score),
                                          "evidence": evidence_to_json(r)} for r in recs],
                    context=context, guild_id=guild_id, model_version=loaded.version)
        reasons = await self._reasons(recs, user_id)
        items = tuple(ShownRecommendation(s, r, why) for s, r, why in zip(shown_ids, recs, reasons, strict=True))
        return RecommendationList(kind, items, level, loaded.version, note, tag.strip().lower() if tags and tag else None)

    async def score(self, loaded: LoadedModel, history: UserHistory, request: RecommendRequest
                     ) -> list[Recommendation]:
        """Score in a worker process when there is one (see `scoring_worker`), else on the loop.

        Not in a worker thread: serving takes ~5 ms (p95 4.8 ms on HetRec; `sonance bench recommend`)
        and numpy's many short GIL releases made a thread and the loop trade the lock back and forth:
        under 50 concurrent /recommend, ~5 ms more CPU per request than scoring on the loop.
        """
        if self.scoring.enabled and loaded.path is not None:
            if self.scoring.ready(loaded.version):
                try:
                    return await self.scoring.recommend(loaded.path, loaded.version, history, request)
                except Exception:
                    log.warning("scoring worker failed for model %s; scoring in-process", loaded.version,
                                exc_info=True)
            else:
                self.scoring.warm(loaded.path, loaded.version)
        return loaded.engine.recommend(history, request)

    @staticmethod
    def _avoided(engine: RecommenderEngine, prefs: Preferences, tags: tuple[str, ...]) -> list[object]:
        """Items carrying a /tune "less X" tag (unless the user explicitly asked for that tag now)."""
        avoid = [t for t in prefs.avoid_tags if t not in tags]
        if not avoid:
            return []
        mask = engine.tags.items_with_any(tag_variants(avoid), min_share=0.2)
        return [engine.items.external(int(i)) for i in np.flatnonzero(mask)]

    @staticmethod
    def _boosted(engine: RecommenderEngine, recs: list[Recommendation], boost: Sequence[str]) -> list[Recommendation]:
        """Soft steering for "more X": tagged items move up (rank position halved), nothing is dropped."""
        if not boost or not recs:
            return recs
        mask = engine.tags.items_with_any(tag_variants(boost))
        rows = engine.items.indices([r.item_id for r in recs])
        keys = [pos * (BOOST_FACTOR if row >= 0 and mask[row] else 1.0) for pos, row in enumerate(rows.tolist())]
        order = sorted(range(len(recs)), key=lambda i: (keys[i], i))
        return [recs[i] for i in order]

    @staticmethod
    def _note(kind: Kind, n_plays: int, known: int, got: int, wanted: int, tag: str | None) -> str | None:
        if n_plays == 0:
            return (f"I don't have your {kind} listening history yet, so these are popular picks among "
                    "listeners here. Sync or import your listens to make them personal.")
        if known == 0:
            return ("Your listens aren't in the model yet (it learns nightly), so these lean on tags and "
                    "popularity.")
        if known < 5:
            return f"Based on only {known} {kind}s you play, so these lean on tags and popularity."
        if got < wanted:
            return (f"Only {got} fresh pick{'s' if got != 1 else ''}" + (f" tagged {tag}" if tag else "")
                    + " right now (I skip what you know and what I showed you recently).")
        return None

    @staticmethod
    async def _decorate(repo: RecommendationRepository, kind: Kind,
                        recs: list[Recommendation]) -> list[Recommendation]:
        """Attach links, cover art and (albums) AOTY facts from the catalogue."""
        infos: dict[int, ItemInfo] = await repo.item_info(str(kind), [r.item_id for r in recs])
        aoty = await repo.aoty_for_albums([r.item_id for r in recs]) if kind == Kind.ALBUM else {}
        out = []
        for rec in recs:
            info = infos.get(rec.item_id)
            evidence = rec.evidence
            page = aoty.get(rec.item_id)
            if page is not None and evidence.aoty is None:
                evidence = replace(evidence, aoty=AotyFacts(
                    critic_score=page.critic_score, critic_count=page.critic_count, user_score=page.user_score,
                    user_count=page.user_count, url=page.url, must_hear=page.must_hear,
                    genres=tuple(str(g) for g in page.genres or ())))
            if info is None:
                out.append(replace(rec, evidence=evidence))
                continue
            if info.listeners is not None:
                evidence = replace(evidence, lastfm_listeners=info.listeners)
            out.append(replace(rec, name=info.name, artist=info.artist or rec.artist, url=info.url,
                               image_url=info.image_url, evidence=evidence))
        return out

    async def _reasons(self, recs: Sequence[Recommendation], user_id: int) -> list[str]:
        explainer = self.services.explainer
        if explainer is None:
            from core.explain.template import TemplateExplainer

            return [e.text for e in await TemplateExplainer().recommendations(recs)]
        return [e.text for e in await explainer.recommendations(recs, user_id=user_id)]

    # --- feedback and why -------------------------------------------------------------------------
    async def feedback(self, discord_id: int, shown_id: int, value: int) -> FeedbackOutcome:
        """Record 👍 (+1) / 👎 (-1) on a shown item; only the person it was shown to may vote."""
        if value not in (-1, 1):
            raise InvalidInput("Feedback is a thumbs up or a thumbs down.")
        async with self.services.session() as session:
            user = await UserRepository(session).by_discord_id(discord_id)
            repo = RecommendationRepository(session)
            shown = await repo.shown(shown_id)
            if shown is None:
                raise NotFound("I can't find that recommendation any more.")
            if user is None or shown.user_id != user.id:
                raise NotYours()
            await repo.set_feedback(user.id, shown.item_kind, shown.item_id, value)
            user_id = int(user.id)
        await self.services.cache.delete_matching(CACHE_NAMESPACE, f"u{user_id}:")
        name = str((shown.evidence or {}).get("name") or "that")
        return FeedbackOutcome(name, value, Kind(shown.item_kind))

    async def why(self, discord_id: int, shown_id: int) -> str:
        """The explanation of a shown item, from the evidence stored when it was shown (owner only)."""
        async with self.services.session() as session:
            user = await UserRepository(session).by_discord_id(discord_id)
            shown = await RecommendationRepository(session).shown(shown_id)
        if shown is None:
            raise NotFound("I can't find that recommendation any more.")
        if user is None or shown.user_id != user.id:
            raise NotYours("That explanation is about someone else's listening, so only they can see it.")
        key = f"u{shown.user_id}:why:{shown_id}"
        cached = await self.services.cache.get(CACHE_NAMESPACE, key)
        if isinstance(cached, str):
            return cached
        rec = recommendation_from_json(shown.item_kind, shown.item_id, shown.evidence)
        explainer = self.services.explainer
        if explainer is None:
            from core.explain.template import TemplateExplainer

            text = (await TemplateExplainer().recommendation(rec)).text
        else:
            text = (await explainer.recommendation(rec, user_id=shown.user_id)).text
        await self.services.cache.set(CACHE_NAMESPACE, key, text, 7 * 86_400)
        return text

    # --- similar, autocomplete, preferences -------------------------------------------------------
    async def similar(self, query: str, kind: Kind | str = Kind.ARTIST, count: int = 10) -> SimilarResult:
        """Artists most like the named one: from the model when it knows the artist, otherwise from
        Last.fm's similar-artist graph (stored, or asked now), so any artist Last.fm knows works.

        The name is resolved by normalised name; a prefix match is only a fallback when Last.fm is
        not configured (with Last.fm, its autocorrect finds the artist the user meant)."""
        kind = Kind(kind)
        if kind != Kind.ARTIST:
            raise InvalidInput("Similar items work for artists for now.")
        key = artist_key(query or "")
        if not key:
            raise InvalidInput("Tell me an artist name.")
        from core.sync.similar_graph import SimilarGraph

        graph = SimilarGraph.of(self.services)
        async with self.services.session() as session:
            catalog = CatalogRepository(session)
            artist = await catalog.artist_by_key(key)
            if artist is None and graph.client is None:
                found = await catalog.search_artists(key, limit=1)
                artist = found[0] if found else None
        if artist is None and graph.client is None:
            raise NotFound(did_you_mean(f"I don't know an artist called “{query[:100]}”.",
                                        await suggest_artist(self.services, query)))
        engine = await self._engine_if_any(kind) if artist is not None else None
        if artist is not None and engine is not None and artist.id in engine.items:
            recs = await asyncio.to_thread(engine.similar, artist.id, count)
            async with self.services.session() as session:
                decorated = await self._decorate(RecommendationRepository(session), kind, recs)
            return SimilarResult(artist.name, tuple(decorated))
        if graph.client is None and artist is not None:
            raise NotFound(f"I don't know enough about {artist.name} yet to find similar artists.")
        try:
            answer = await graph.similar_to(artist.name if artist is not None else query, limit=count)
        except NotFound as exc:  # neither we nor Last.fm know the name: suggest the closest one we know
            raise NotFound(did_you_mean(exc.user_message, await suggest_artist(self.services, query)),
                           detail=exc.detail) from None
        recs = [Recommendation(kind=Kind.ARTIST, item_id=int(a.id), name=a.name, score=match,
                               evidence=Evidence(items=(Weighted(answer.seed, match),), sources={"graph": match},
                                                 note=f"similar to {answer.seed} on Last.fm"),
                               url=a.lastfm_url, image_url=a.image_url)
                for a, match in answer.neighbours[:count]]
        return SimilarResult(answer.seed, tuple(recs), note=f"Similar to {answer.seed} on Last.fm")

    async def _engine_if_any(self, kind: Kind) -> RecommenderEngine | None:
        """The served engine, or None while there is none to serve (no data yet, still learning)."""
        try:
            return (await self.ensure_model(kind)).engine
        except SonanceError as exc:
            log.info("similar: no %s model to ask (%s); using Last.fm's graph", kind, exc.user_message)
            return None

    async def autocomplete(self, prefix: str, limit: int = 25) -> list[str]:
        """Artist names starting with `prefix` (normalised), for /similar."""
        key = artist_key(prefix or "")
        async with self.services.session() as session:
            found = await CatalogRepository(session).search_artists(key, limit=limit)
        return await complete_artists(self.services, prefix, [a.name for a in found], limit)

    async def tag_autocomplete(self, prefix: str, limit: int = 25) -> list[str]:
        """Tags to pick from: listener words only ("seen live" is no filter), one spelling each;
        the closest listener words when nothing starts with what was typed."""
        async with self.services.session() as session:
            names = await RecommendationRepository(session).search_tags(prefix or "", limit=limit * 4)
        shown: dict[str, str] = {}
        for name in names:  # the stored spelling: it is what the tag filter matches
            if is_listener_tag(name):
                shown.setdefault(tag_key(name), name)
        return await complete_tags(self.services, prefix, list(shown.values())[:limit], limit)

    async def set_preferences(self, discord_id: int, text: str) -> Preferences:
        """Parse free text ("less metal, more 90s shoegaze") and store it; later /tune calls refine it."""
        text = (text or "").strip()
        if not text:
            raise InvalidInput("Tell me what to change, e.g. “less metal, more 90s shoegaze”.")
        user_id = await self._user_id(discord_id)
        async with self.services.session() as session:
            known = await RecommendationRepository(session).tag_names()
        if text.lower() in ("reset", "clear"):
            parsed = Preferences()
            merged = parsed
        else:
            explainer = self.services.explainer
            if explainer is None:
                from core.explain.template import TemplateExplainer

                result = await TemplateExplainer().preferences(text, known_tags=known)
            else:
                result = await explainer.preferences(text, known_tags=known, user_id=user_id)
            parsed = result.preferences
            if parsed.is_empty:
                raise InvalidInput("I couldn't find anything to change in that. Try e.g. “more shoegaze, "
                                   "less metal” or “deeper cuts”.")
        async with self.services.session() as session:
            users = UserRepository(session)
            current = preferences_from_stored((await users.settings(user_id)).preferences)
            if text.lower() not in ("reset", "clear"):
                merged = merge_preferences(current, parsed)
            await users.update_settings(user_id, preferences=preferences_to_json(merged))
        await self.services.cache.delete_matching(CACHE_NAMESPACE, f"u{user_id}:")
        return merged
