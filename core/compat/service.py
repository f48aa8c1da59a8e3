"""The compatibility service: an asker (and the member they name) in, privacy-checked results out.

`CompatService` is the engine side of `/compat`, `/leaderboard` and `/matches`. It owns one in-memory
`TasteSpace` built from *every* artist play in the database (Discord members and dataset listeners:
the wider population is what makes the percentile calibration mean something) and answers from it.

Why the design looks like this:

* Building the space is CPU-heavy (sparse algebra, SVDs, calibration), so it runs in a worker thread
  and the finished, immutable space replaces the old one with one assignment (an atomic swap). A
  request takes a local reference at its start, so it never sees half of two spaces.
* Freshness is content-addressed. The space's `version` hashes the listening data it was built from
  (plus the artist tags), and every cached guild result has that version in its key. When listens
  change, the next request notices (a cheap `plays_fingerprint` aggregate, checked at most every
  `freshness_interval_s`), rebuilds, and gets a new version: every guild leaderboard that could depend
  on the changed member is simply never asked for again. This beats deleting keys because a guild
  leaderboard depends on *all* its members' listens and on the calibration population, which no
  per-user delete pattern can name. Per-user results additionally carry `u{user_id}:` in their keys,
  so `core.sync.engine.invalidate_user_caches` drops them immediately after a sync. A rebuild that
  finds the same data produces the same version, so it costs no cache misses.
* Privacy is checked against the database before the space is even consulted, by the rule every
  command shares (`core.access.other_member`): a hidden member is refused with the same words
  whatever their history, and hidden members never reach a leaderboard (not as a name, a rank, a
  count, or a cache-key ingredient).
* Validation happens before anything slow, and the caller's `on_slow` hook runs only after it: the
  bot acknowledges the interaction there, so a refusal can still be a private (ephemeral) reply and
  a result for someone who keeps their listening private can be shown to them alone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.access import other_member, require_history
from core.asker import Asker
from core.compat.calibration import label_for
from core.compat.leaderboard import (
    GuildLeaderboard,
    best_matches,
    guild_leaderboard,
    leaderboard_cache_key,
    member_confidence,
    pair_confidence,
)
from core.compat.params import CompatParams
from core.compat.profiles import TasteSpace
from core.compat.scoring import compare as compare_in_space
from core.compat.scoring import pair_score
from core.compat.space import TasteSpaces
from core.db.repositories import ListenRepository, UserRepository
from core.domain import Bridge, Compatibility, SharedArtist, Weighted, is_early_read
from core.errors import GuildOnly, InvalidInput, NotEnoughHistory
from core.workers import ProcessWorkers

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger(__name__)

#: What the caller does before the slow part; the flag says "answer the asker privately".
SlowHook = Callable[[bool], Awaitable[None]]
#: Draws the PNG card (`bot.render.compat_card.render_compat_card`); injected so core stays UI-free.
CardRenderer = Callable[[Compatibility, str, str], bytes]

#: Shape and wording version of every cached compat answer. 2: the cached /compat summary no longer
#: repeats the score and reads "a great match" (format 1 summaries would be served for hours).
CACHE_FORMAT = 2
GUILD_ONLY = ("Compatibility compares members of a server, so it only works inside one. Try it in a "
              "server channel!")


@dataclass(frozen=True)
class CompatResult:
    """One /compat answer. `name_a` is the asker. `private`: show it to the asker only."""

    comp: Compatibility
    name_a: str
    name_b: str
    summary: str
    card_png: bytes | None
    private: bool
    note: str | None  # a kind word when the pair shares nothing (yet)
    version: str


@dataclass(frozen=True)
class RankedPair:
    name_a: str
    name_b: str
    score: float
    label: str
    confidence: float  # 0..1, of the thinner history: the board marks an early read as /compat does

    @property
    def early_read(self) -> bool:
        return is_early_read(self.confidence)


@dataclass(frozen=True)
class RankedMember:
    name: str
    score: float
    label: str
    confidence: float  # 0..1: of the pair with the asker (/matches) or of the member's history (centre)

    @property
    def early_read(self) -> bool:
        return is_early_read(self.confidence)


@dataclass(frozen=True)
class LeaderboardResult:
    pairs: tuple[RankedPair, ...]
    centre: RankedMember | None  # the member closest to the guild's overall taste
    ranked_members: int  # visible members with a history
    version: str


@dataclass(frozen=True)
class MatchesResult:
    asker_name: str
    matches: tuple[RankedMember, ...]
    private: bool
    version: str


@dataclass(frozen=True)
class _Guild:
    """The asker's guild as the checks saw it."""

    guild_id: int
    visible_ids: list[int]  # the guild's visible members (asker included only when visible)
    private: bool  # the asker is hidden in this guild: answer them alone


class CompatService:
    """Process-wide compatibility engine over the database (get it with `CompatService.of(services)`)."""

    def __init__(self, services: Services, *, params: CompatParams | None = None,
                 freshness_interval_s: float = 30.0, compat_ttl_s: float = 6 * 3600,
                 board_ttl_s: float = 3600, top: int = 10) -> None:
        self.services = services
        self.params = params or CompatParams()
        self.freshness_interval_s = freshness_interval_s
        self.compat_ttl_s = compat_ttl_s
        self.board_ttl_s = board_ttl_s
        self.top = top
        self.spaces = TasteSpaces(services, self.params, freshness_interval_s=freshness_interval_s)
        # Cards are matplotlib renders (~50-75 ms of CPU each) that, in a thread, hold the
        # interpreter lock the event loop needs; a worker process draws them on another core.
        self.cards = ProcessWorkers(services.settings.worker_processes, "compat card")

    async def aclose(self) -> None:
        await self.cards.aclose()

    @classmethod
    def of(cls, services: Services) -> CompatService:
        """The shared instance, so the cog, the scheduler and the web server use one space."""
        return services.compat

    # --- the taste space (core.compat.space) -------------------------------------------------------
    @property
    def space(self) -> TasteSpace | None:
        return self.spaces.current

    @property
    def builds(self) -> int:
        """How many spaces were built (observability and tests)."""
        return self.spaces.builds

    @property
    def calibration_path(self) -> Path:
        return self.spaces.source.calibration_path

    async def ensure_space(self, needed: tuple[int, ...] = ()) -> TasteSpace:
        return await self.spaces.ensure(needed)

    async def rebuild(self) -> str:
        return await self.spaces.rebuild()

    # --- who is asking, who may be seen -----------------------------------------------------------
    async def _guild(self, session: Any, asker: Asker) -> _Guild:
        """The asker's guild and who is visible in it; refuses outside a guild or without history."""
        if asker.guild_id is None:
            raise GuildOnly(GUILD_ONLY)
        await require_history(session, asker)
        visible = await UserRepository(session).visible_member_ids(asker.guild_id)
        return _Guild(asker.guild_id, visible, asker.user_id not in visible)

    # --- /compat ----------------------------------------------------------------------------------
    async def compare(self, asker: Asker, other_discord_id: int, *,
                      on_slow: SlowHook | None = None, render_card: CardRenderer | None = None) -> CompatResult:
        """Compatibility of the asker with another member of their guild, with summary and card.

        Refusals (`SonanceError`, all safe to show) come before `on_slow` is called: comparing with
        yourself, someone unknown or without history, someone hidden in this guild, or someone who never
        used Sonance here.
        """
        if asker.discord_id == other_discord_id:
            raise InvalidInput("That's you! You're always 100% compatible with yourself. Pick another member "
                               "to compare with.")
        async with self.services.session() as session:
            guild = await self._guild(session, asker)
            other_id = await other_member(session, guild.guild_id, other_discord_id, guild.visible_ids)
            names = await UserRepository(session).display_names([asker.user_id, other_id])
        name_a, name_b = names.get(asker.user_id, "a listener"), names.get(other_id, "a listener")
        if on_slow is not None:
            await on_slow(guild.private)

        space = await self.ensure_space((asker.user_id, other_id))
        names_tag = hashlib.sha256(f"{name_a}\x00{name_b}".encode()).hexdigest()[:8]
        key = f"pair:u{asker.user_id}:u{other_id}:{space.version}:{names_tag}:{render_card is not None}"
        cached = await self.services.cache.get("compat", key)
        if isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT:
            comp = _comp_from_json(cached["comp"])
            card = base64.b64decode(cached["card"]) if cached.get("card") else None
            return CompatResult(comp, name_a, name_b, cached["summary"], card, guild.private, _note(comp),
                                space.version)

        # The asker may be hidden (they can still compare themselves); the other one was checked above.
        comp = compare_in_space(space, asker.user_id, other_id, visible={asker.user_id, other_id})
        summary = await self._summary(comp, name_b, asker.user_id)
        card = await self._card(render_card, comp, name_a, name_b, (asker.user_id, other_id)) if render_card else None
        if card is not None or render_card is None:  # a failed card is not cached: the next ask tries again
            await self.services.cache.set("compat", key, {
                "format": CACHE_FORMAT, "comp": _comp_to_json(comp), "summary": summary,
                "card": base64.b64encode(card).decode() if card else None}, ttl_s=self.compat_ttl_s)
        return CompatResult(comp, name_a, name_b, summary, card, guild.private, _note(comp), space.version)

    async def _card(self, render_card: CardRenderer, comp: Compatibility, name_a: str, name_b: str,
                    user_ids: tuple[int, int]) -> bytes | None:
        """The PNG card, or None when drawing it fails (the answer then goes out without an image).

        The card only illustrates the embed, which carries the same facts: a name or artist the
        renderer chokes on (`$_$ alice` was parsed as mathtext) must cost the picture, not the answer.
        `ProcessWorkers.run` already retried in a thread, so a failure here is the renderer's own.
        """
        try:
            return await self.cards.run(render_card, comp, name_a, name_b)
        except Exception as exc:
            log.warning("compat card failed (%s) for users %d and %d; answering without it", type(exc).__name__,
                        *user_ids, exc_info=True, extra={"user_id": user_ids[0]})
            return None

    async def _summary(self, comp: Compatibility, name_b: str, asker_user_id: int) -> str:
        """One paragraph from the explainer (it falls back to its template within its own timeout)."""
        from core.explain import Pair, TemplateExplainer

        pair = Pair(a=None, b=name_b)
        try:
            return (await self.services.explainer.compatibility(comp, pair, user_id=asker_user_id)).text
        except Exception:  # an explanation is a nicety: never fail the command for it
            log.warning("compat explanation failed; using the template", exc_info=True)
        return (await TemplateExplainer().compatibility(comp, pair)).text

    # --- /leaderboard -----------------------------------------------------------------------------
    async def leaderboard(self, asker: Asker, *, on_slow: SlowHook | None = None) -> LeaderboardResult:
        """The asker's guild's most compatible pairs and the member closest to its taste (visible
        members only; the asker needs no history of their own to look).

        Pairs are ranked by their score, the number shown, and each carries its confidence so a
        score from a thin history is marked as the early read /compat calls it (below
        `core.domain.EARLY_READ_CONFIDENCE`). Ranking by a confidence-shrunk score
        instead was considered and left out: the board would then list an 83 under a 60 under the
        title "most compatible", and its pairs are picked by matrix products over raw scores
        (candidate search in large guilds), which a per-pair confidence factor does not fit.
        """
        guild_id = asker.guild_id
        if guild_id is None:
            raise GuildOnly(GUILD_ONLY)
        async with self.services.session() as session:
            visible = await UserRepository(session).visible_member_ids(guild_id)
            with_history = await ListenRepository(session).users_with_plays(visible)
        if len(with_history) < 2:
            raise NotEnoughHistory("There's no leaderboard here yet: it needs at least two members who have "
                                   "linked a music account and share their listening in this server.")
        if on_slow is not None:
            await on_slow(False)
        space = await self.ensure_space()
        members = sorted(with_history)
        shown = set(members)
        key = leaderboard_cache_key("guild", guild_id, members, shown, space.version, top=self.top)
        cached = await self.services.cache.get("leaderboard", key)
        if isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT:
            board = _board_from_json(cached, space.version)
        else:
            board = await asyncio.to_thread(guild_leaderboard, space, members, shown, top=self.top)
            await self.services.cache.set("leaderboard", key, _board_to_json(board), ttl_s=self.board_ttl_s)
        if board.ranked_members < 2:
            raise NotEnoughHistory("There's no leaderboard here yet: the listening of this server's members is "
                                   "still being prepared. Try again in a minute.")
        ids = {p.a for p in board.top_pairs} | {p.b for p in board.top_pairs}
        if board.centre is not None:
            ids.add(board.centre.member)
        async with self.services.session() as session:
            names = await UserRepository(session).display_names(sorted(ids))  # type: ignore[arg-type]

        def name(uid: Any) -> str:
            return names.get(uid, "a listener")

        # The board finds its pairs with float32 matrix products; the number shown comes from the exact
        # pair path, so a pair reads the same here as in /compat and /matches (near ties in the
        # calibration grid can otherwise turn float noise into visible differences).
        exact = sorted(((round(float(pair_score(space, p.a, p.b)[0]), 1), p) for p in board.top_pairs),
                       key=lambda t: -t[0])
        # Confidence comes from the space, not the cache: the cached board keeps its format, and the
        # mark always matches the /compat answer built from the same space.
        pairs = tuple(RankedPair(name(p.a), name(p.b), score, label_for(score), pair_confidence(space, p.a, p.b))
                      for score, p in exact)
        centre = (RankedMember(name(board.centre.member), board.centre.score, board.centre.label,
                               round(member_confidence(space, board.centre.member), 3))
                  if board.centre is not None else None)
        return LeaderboardResult(pairs, centre, board.ranked_members, space.version)

    # --- /matches ---------------------------------------------------------------------------------
    async def matches(self, asker: Asker, *, on_slow: SlowHook | None = None) -> MatchesResult:
        """The asker's best matches among their guild's visible members, best first."""
        async with self.services.session() as session:
            guild = await self._guild(session, asker)
            others = await ListenRepository(session).users_with_plays(
                [u for u in guild.visible_ids if u != asker.user_id])
            asker_name = (await UserRepository(session).display_names([asker.user_id])).get(asker.user_id,
                                                                                           "a listener")
        if not others:
            raise NotEnoughHistory("No one else in this server shares their listening with Sonance yet, so "
                                   "there's no one to match you with. Invite a friend to /link!")
        if on_slow is not None:
            await on_slow(guild.private)
        space = await self.ensure_space((asker.user_id,))
        members = sorted(others)
        shown = set(members)
        key = f"u{asker.user_id}:" + leaderboard_cache_key("matches", guild.guild_id, members, shown, space.version,
                                                           member=asker.user_id, top=self.top)
        cached = await self.services.cache.get("leaderboard", key)
        if isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT:
            found = [(int(m), float(s), str(lbl)) for m, s, lbl in cached["matches"]]
        else:
            result = await asyncio.to_thread(best_matches, space, asker.user_id, members, shown, top=self.top,
                                             requester=asker.user_id)
            found = [(int(m.member), m.score, m.label) for m in result]  # type: ignore[call-overload]
            await self.services.cache.set("leaderboard", key, {"format": CACHE_FORMAT, "matches": found},
                                          ttl_s=self.board_ttl_s)
        async with self.services.session() as session:
            names = await UserRepository(session).display_names([m for m, _, _ in found])
        ranked = tuple(RankedMember(names.get(m, "a listener"), s, lbl, pair_confidence(space, asker.user_id, m))
                       for m, s, lbl in found)
        return MatchesResult(asker_name, ranked, guild.private, space.version)


# --- helpers --------------------------------------------------------------------------------------
def _note(comp: Compatibility) -> str | None:
    """A kind word under the score when the pair shares no artist (None otherwise).

    It points at the Bridges field only when the answer has one: a pair whose tastes are wholly
    apart has no bridges, and the note used to promise them anyway.
    """
    if comp.shared_artists:
        return None
    note = "You don't share a single artist yet, so this score comes from how your genres and wider tastes line up."
    if comp.bridges:
        note += " The bridges below are a good place to start meeting in the middle."
    return note


def _comp_to_json(comp: Compatibility) -> dict[str, Any]:
    return asdict(comp)


def _comp_from_json(data: dict[str, Any]) -> Compatibility:
    def weighted(items: list[dict[str, Any]]) -> tuple[Weighted, ...]:
        return tuple(Weighted(**w) for w in items)

    return Compatibility(
        score=data["score"], label=data["label"], raw=data["raw"], confidence=data["confidence"],
        shared_artists=tuple(SharedArtist(**s) for s in data["shared_artists"]),
        shared_tags=weighted(data["shared_tags"]), bridges=tuple(Bridge(**b) for b in data["bridges"]),
        differences_a=weighted(data["differences_a"]), differences_b=weighted(data["differences_b"]),
        components=dict(data["components"]), different_tags_a=weighted(data["different_tags_a"]),
        different_tags_b=weighted(data["different_tags_b"]))


def _board_to_json(board: GuildLeaderboard) -> dict[str, Any]:
    centre = board.centre
    return {"format": CACHE_FORMAT, "ranked": board.ranked_members,
            "pairs": [[p.a, p.b, p.score, p.raw, p.label] for p in board.top_pairs],
            "centre": None if centre is None else [centre.member, centre.score, centre.raw, centre.label]}


def _board_from_json(data: dict[str, Any], version: str) -> GuildLeaderboard:
    from core.compat.leaderboard import MemberMatch, PairEntry

    pairs = tuple(PairEntry(int(a), int(b), float(s), float(r), str(lbl)) for a, b, s, r, lbl in data["pairs"])
    c = data.get("centre")
    centre = None if c is None else MemberMatch(int(c[0]), float(c[1]), float(c[2]), str(c[3]))
    return GuildLeaderboard(pairs, centre, int(data["ranked"]), version)
