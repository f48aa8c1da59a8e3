"""One personal recommendation list: what the member played, liked, was shown and asked to steer
towards, read fresh from the database, turned into one `RecommendRequest`, scored, recorded.

* **Everything personal is read at request time.** Plays, thumbs up/down, what was shown inside the
  repeat window and the /tune preferences come from the database on every request and are handed
  to the engine as a history row plus request fields; the engine applies all steering (filters,
  feedback, discovery, /tune boosts and avoids). A listen synced a second ago or a thumbs-down just
  clicked changes the next list with no retraining.
* **Honesty over filler.** Users with no usable history get popular picks with a note saying so;
  album/track lists need synced listens and say so instead of guessing; users with nothing linked
  get `NotLinked`. A short list says how many fresh picks there were and what was skipped, next to
  the history note; an empty one says what emptied it (`empty_message`), never only the history note.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
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
from core.markup import literal
from core.recommender.codec import evidence_to_json
from core.recommender.preferences import preferences_from_stored
from core.recommender.requests import RecommendRequest, UserHistory
from core.recommender.results import RecommendationList, ShownRecommendation
from core.recommender.served import ServedModels
from core.recommender.tags import tag_variants

if TYPE_CHECKING:
    from core.recommender.engine import RecommenderEngine
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


def history_note(kind: Kind, n_plays: int, known: int) -> str | None:
    """Why a list is generic: no history, none the model knows yet, or only a few items (else None)."""
    if n_plays == 0:
        return (f"I don't have your {kind} listening history yet, so these are popular picks among "
                "the listeners I learn from. Sync or import your listens to make them personal.")
    if known == 0:
        return ("Your listens aren't in the model yet (it learns nightly), so these lean on tags and "
                "popularity.")
    if known < 5:
        return f"Based on only {known} {kind}s you play, so these lean on tags and popularity."
    return None


@dataclass(frozen=True)
class Skipped:
    """What this member's lists leave out, so a short or empty list can name the real reasons:
    only filters that are active for them are mentioned (a sentence about a 👎 nobody gave, or a
    window of 0 days, would send them looking for a cause that isn't there)."""

    window_days: int
    shown: bool  # something was shown inside the repeat window
    disliked: bool  # they gave a 👎
    avoided: bool  # /tune asked for less of some tags

    def clause(self) -> str:
        """ "I skip what you already play and what I showed you in the last 30 days." """
        parts = ["what you already play"]
        if self.shown and self.window_days > 0:
            days = "day" if self.window_days == 1 else f"{self.window_days} days"
            parts.append(f"what I showed you in the last {days}")
        if self.disliked:
            parts.append("what you gave a 👎")
        if self.avoided:
            parts.append("what you asked /tune to avoid")
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return f"I skip {listed}."


def list_note(kind: Kind, n_plays: int, known: int, got: int, wanted: int, tag: str | None,
              skipped: Skipped, per_artist: int | None = None) -> str | None:
    """Why a non-empty list is generic and/or short, in the member's terms (None when neither).

    Both notes are kept when both apply: a member with a thin history who also ran out of fresh
    picks needs to know both why the picks are generic and why there are fewer than asked. An
    album/track list also names its per-artist cap, the other thing that shortens it."""
    short = None
    if got < wanted:
        short = (f"Only {got} fresh pick{'s' if got != 1 else ''}" + (f" tagged {tag}" if tag else "")
                 + (f" (at most {per_artist} per artist)" if per_artist else "") + f": {skipped.clause()}")
    notes = [n for n in (history_note(kind, n_plays, known), short) if n]
    return " ".join(notes) or None


def empty_message(kind: Kind, tag: str | None, skipped: Skipped, *, anything_unplayed: bool) -> str:
    """What to say when no pick is left, naming what emptied it (Markdown-escaped: it echoes the tag).

    Either the member already plays everything that fits (nothing the filters could free up), or the
    filters of `skipped` took the rest. The discovery dial never empties a list (it only re-ranks),
    so it is not named."""
    shown_tag = literal(tag) if tag else None
    if not anything_unplayed:
        return f"You already play every {kind}" + (f" tagged {shown_tag}" if shown_tag else "") + " I know."
    what = f"picks tagged {shown_tag}" if shown_tag else f"{kind} picks"
    return f"No fresh {what} right now: {skipped.clause()}"


def unplayed_fits(engine: RecommenderEngine, known_rows: np.ndarray, tags: tuple[str, ...]) -> bool:
    """Whether the model knows any item that fits the tag filter (all items without one) and that
    the member does not play: if not, no filter emptied the list, their history did."""
    fits = engine.tags.items_with_any(tags) if tags else np.ones(len(engine.items), dtype=bool)
    fits[known_rows[known_rows >= 0]] = False
    return bool(fits.any())


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
            raise NotFound(did_you_mean(f"I don't know a tag called “{literal(tag.strip()[:60])}”.",  # type: ignore[union-attr]
                                        await suggest_tag(self.services, tags[0])))
        level = discovery_level(discovery, stored_discovery, prefs)
        request = RecommendRequest(count=count, discovery=level, tags=tags,
                                   max_per_artist=None if kind == Kind.ARTIST else MAX_PER_ARTIST,
                                   recently_shown=tuple(recent), liked=tuple({i for i, v in votes.items() if v > 0}),
                                   disliked=tuple({i for i, v in votes.items() if v < 0}),
                                   boost_tags=prefs.boost_tags, avoid_tags=prefs.avoid_tags)
        recs = await self.models.score(loaded, history, request)
        known_rows = engine.items.indices(history.items)
        shown_tag = tag.strip().lower() if tags and tag else None
        skipped = Skipped(self.services.settings.repeat_window_days, bool(recent), bool(request.disliked),
                          bool(prefs.avoid_tags))
        if not recs:
            raise NotFound(empty_message(kind, shown_tag, skipped,
                                         anything_unplayed=unplayed_fits(engine, known_rows, tags)))
        note = list_note(kind, len(plays), int(np.count_nonzero(known_rows >= 0)), len(recs), count, shown_tag,
                         skipped, request.max_per_artist)
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
        return RecommendationList(kind, items, level, loaded.version, note, shown_tag)
