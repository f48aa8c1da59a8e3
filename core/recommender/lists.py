"""One personal recommendation list: what the member played, liked, was shown and asked to steer
towards, read fresh from the database, turned into one `RecommendRequest`, scored, recorded.

* **Everything personal is read at request time.** Plays, thumbs up/down, what was shown inside the
  repeat window and the /tune preferences come from the database on every request and are handed
  to the engine as a history row plus request fields; the engine applies all steering (filters,
  feedback, discovery, /tune boosts and avoids). A listen synced a second ago or a thumbs-down just
  clicked changes the next list with no retraining.
* **Honesty over filler.** Users with no usable history get popular picks with a note saying so;
  album/track lists need synced listens and say so instead of guessing; users with nothing linked
  get `NotLinked`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from core.asker import Asker, Caller
from core.db.engine import catalogue_writes
from core.db.repositories import AccountRepository
from core.db.repositories.recommendations import ItemInfo, RecommendationRepository
from core.db.types import utcnow
from core.domain import AotyFacts, Kind, Recommendation
from core.errors import InvalidInput, NotFound, NotLinked
from core.explain.types import Preferences
from core.fuzzy import did_you_mean, suggest_tag
from core.recommender.codec import evidence_to_json
from core.recommender.preferences import preferences_from_stored
from core.recommender.requests import RecommendRequest, UserHistory
from core.recommender.results import RecommendationList, ShownRecommendation
from core.recommender.served import ServedModels
from core.recommender.tags import tag_variants

if TYPE_CHECKING:
    from core.services import Services

#: Discovery dial presets of /recommend (0 = close to what you play, 1 = deep cuts).
DISCOVERY_LEVELS = {"familiar": 0.0, "balanced": 0.4, "deep cuts": 0.8}
MAX_COUNT = 25
MAX_PER_ARTIST = 2  # album/track lists: at most this many by one artist
DEFAULT_DISCOVERY = 0.3


def discovery_level(value: float | str | None, stored: float, prefs: Preferences) -> float:
    """The dial for this request: a named preset, a number, else /tune's level or nudge on the stored one."""
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


def list_note(kind: Kind, n_plays: int, known: int, got: int, wanted: int, tag: str | None) -> str | None:
    """Why a list is generic or short, in the member's terms (None when it is neither)."""
    if n_plays == 0:
        return (f"I don't have your {kind} listening history yet, so these are popular picks among "
                "the listeners I learn from. Sync or import your listens to make them personal.")
    if known == 0:
        return ("Your listens aren't in the model yet (it learns nightly), so these lean on tags and "
                "popularity.")
    if known < 5:
        return f"Based on only {known} {kind}s you play, so these lean on tags and popularity."
    if got < wanted:
        return (f"Only {got} fresh pick{'s' if got != 1 else ''}" + (f" tagged {tag}" if tag else "")
                + " right now (I skip what you know and what I showed you recently).")
    return None


#: How long display facts are reused at most (another process's catalogue writes show after this).
DISPLAY_TTL_S = 300.0
DISPLAY_MAX_ITEMS = 50_000


class DisplayCache:
    """Display facts of recommended items (`ItemInfo`: name, artist, links, cover, listeners)
    between requests, so most lists need no catalogue query.

    Why it is safe: these facts change only through catalogue writes (imports, enrichment). The
    cache is emptied when a statement of this process wrote a catalogue table
    (`core.db.engine.catalogue_writes`), when the served model version changes, and at the latest
    `DISPLAY_TTL_S` after it was last emptied (writes by other processes). Nothing personal is in
    it, so /forget has nothing to remove here.
    """

    def __init__(self, ttl_s: float = DISPLAY_TTL_S, max_items: int = DISPLAY_MAX_ITEMS) -> None:
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._infos: dict[tuple[str, int], ItemInfo] = {}
        self._stamp: tuple[str, int] | None = None  # (model version, catalogue writes) when emptied
        self._emptied_at = -float("inf")

    def _fresh(self, version: str) -> None:
        stamp = (version, catalogue_writes())
        now = time.monotonic()
        if stamp != self._stamp or now >= self._emptied_at + self.ttl_s or len(self._infos) > self.max_items:
            self._infos.clear()
            self._stamp, self._emptied_at = stamp, now

    async def item_info(self, repo: RecommendationRepository, kind: Kind, ids: list[int],
                        version: str) -> dict[int, ItemInfo]:
        """`repo.item_info` for `ids`, asking the database only for what is not cached."""
        self._fresh(version)
        found = {i: info for i in ids if (info := self._infos.get((kind, i))) is not None}
        missing = [i for i in ids if i not in found]
        if missing:
            generation = catalogue_writes()
            fetched = await repo.item_info(str(kind), missing)
            found.update(fetched)
            if catalogue_writes() == generation:  # nothing wrote the catalogue meanwhile
                self._infos.update({(kind, i): info for i, info in fetched.items()})
        return found


async def decorate(repo: RecommendationRepository, kind: Kind, recs: list[Recommendation], *,
                   display: DisplayCache | None = None, version: str = "") -> list[Recommendation]:
    """Attach links, cover art and (albums) AOTY facts from the catalogue (through `display` when
    given: `version` is the served model's)."""
    ids = [r.item_id for r in recs]
    infos: dict[int, ItemInfo] = (await repo.item_info(str(kind), ids) if display is None
                                  else await display.item_info(repo, kind, ids, version))
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


class PersonalLists:
    """Builds, records and explains one member's list (see the module docstring)."""

    def __init__(self, services: Services, models: ServedModels) -> None:
        self.services = services
        self.models = models
        self.display = DisplayCache()

    async def recommend(self, asker: Asker | Caller, *, kind: Kind | str = Kind.ARTIST, count: int = 10,
                        discovery: float | str | None = None, tag: str | None = None,
                        context: str = "command", record: bool = True) -> RecommendationList:
        """The whole request: current history + feedback + window + preferences -> engine -> record.

        A `Caller` is resolved to its `Asker` in the first session (one session fewer per request)."""
        kind = Kind(kind)
        if not 1 <= count <= MAX_COUNT:
            raise InvalidInput(f"Pick between 1 and {MAX_COUNT} recommendations.")
        since = utcnow() - timedelta(days=self.services.settings.repeat_window_days)
        # Reads only (a first-use asker row is committed by resolve_in): no commit round trip; the
        # session is rolled back when it closes.
        async with self.services.sessions() as session:
            if isinstance(asker, Caller):
                asker = await self.services.askers.resolve_in(session, asker)
            user_id = asker.user_id
            repo = RecommendationRepository(session)
            plays = await repo.item_plays(str(kind), user_id)
            if not plays and not await AccountRepository.without_cipher(session).has_any(user_id) \
                    and not await repo.item_plays("artist", user_id):
                raise NotLinked()
            steering = await repo.steering(user_id, str(kind), since)
            votes, recent = steering.votes, steering.shown
            stored_discovery = float(steering.discovery if steering.discovery is not None else DEFAULT_DISCOVERY)
            prefs = preferences_from_stored(steering.preferences)
        loaded = await self.models.ensure(kind)
        engine = loaded.engine
        history = UserHistory.from_rows([p.item_id for p in plays], [p.plays for p in plays],
                                        [p.last_played_at for p in plays])
        tags = tuple(tag_variants([tag.strip().lower()])) if tag and tag.strip() else ()
        if tags and not engine.tags.items_with_any(tags).any():  # a tag nothing carries: say so, and guess
            raise NotFound(did_you_mean(f"I don't know a tag called “{tag.strip()[:60]}”.",  # type: ignore[union-attr]
                                        await suggest_tag(self.services, tags[0])))
        level = discovery_level(discovery, stored_discovery, prefs)
        request = RecommendRequest(count=count, discovery=level, tags=tags,
                                   max_per_artist=None if kind == Kind.ARTIST else MAX_PER_ARTIST,
                                   recently_shown=tuple(recent), liked=tuple({i for i, v in votes.items() if v > 0}),
                                   disliked=tuple({i for i, v in votes.items() if v < 0}),
                                   boost_tags=prefs.boost_tags, avoid_tags=prefs.avoid_tags)
        recs = await self.models.score(loaded, history, request)
        known_in_model = int(np.count_nonzero(engine.items.indices(history.items) >= 0))
        note = list_note(kind, len(plays), known_in_model, len(recs), count, tag)
        if not recs:
            raise NotFound(note or "I ran out of new things to recommend right now. Try again later or widen the tag.")
        shown_ids: list[int] = [0] * len(recs)
        async with self.services.session() as session:  # one unit of work: decorate, then record
            repo = RecommendationRepository(session)
            recs = await decorate(repo, kind, recs, display=self.display, version=loaded.version)
            if record:
                shown_ids = await repo.record_shown(
                    user_id, str(kind), [{"item_id": r.item_id, "score": float(r.score),
                                          "evidence": evidence_to_json(r)} for r in recs],
                    context=context, guild_id=asker.guild_id, model_version=loaded.version)
        reasons = [e.text for e in await self.services.explainer.recommendations(recs, user_id=user_id)]
        items = tuple(ShownRecommendation(s, r, why) for s, r, why in zip(shown_ids, recs, reasons, strict=True))
        return RecommendationList(kind, items, level, loaded.version, note, tag.strip().lower() if tags and tag else None)
