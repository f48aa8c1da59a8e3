"""`PlaylistService`: an asker in, stored playlists and their exports out.

One per process (`PlaylistService.of(services)`), used by the /playlist cog and its persistent
export buttons. Why it is shaped like this:

* **Tracks, not artists.** The recommender works on artists (that is where the listening data is
  dense); a playlist needs tracks. So artists are ranked by the shared recommender engine
  (`RecommendService.ensure_model`, never a second model) and each contributes its most-listened
  catalogue tracks over *all* listeners, at most two, skipping tracks the asker wore out.
* **"Similar" means related.** A seed playlist takes only neighbours that share evidence with the
  seed (`RecommenderEngine.related_to`, as /similar does); when too few do, the list is shorter and its note says so, rather than
  padded with artists nothing ties to the seed.
* **Stored, then exported.** Every built playlist is a `playlists` row with ordered
  `playlist_items`; the export buttons carry only its id, so they work after a restart and read
  exactly what was previewed.
* **Privacy before work.** A blend reveals both people's taste, so the partner must be a visible
  member of the asking guild; the check (`core.access.other_member`, the rule /compat uses too)
  runs before the caller acknowledges (`on_slow`), so a refusal can stay private. Only the owner
  may read or export a stored playlist (`core.access.owned_row`).
* **Spotify is optional.** Export to Spotify needs a linked account, and Spotify's development-mode
  allow-list refuses most people (403): every failure there comes back as a clear message *with*
  the XSPF/M3U files, never as a dead end.
* **One Spotify playlist per stored playlist.** An export claims the row first (so a double click
  creates one playlist) and remembers the playlist Spotify created inside that claim (`ExportClaim`),
  so a retry after the tracks failed to go in finishes that playlist instead of adding another.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from core.access import OWN_NO_HISTORY, PLAYLIST_NOT_YOURS, other_member, owned_row, require_history
from core.asker import Asker
from core.db.repositories import AccountRepository, CatalogRepository, UserRepository
from core.db.repositories.playlists import PlaylistRepository, StoredItem, TrackRow
from core.db.repositories.public_facts import PublicFactsRepository
from core.db.repositories.recommendations import RecommendationRepository
from core.domain import Kind, Recommendation
from core.errors import AccountProblem, GuildOnly, InvalidInput, NotEnoughHistory, NotFound, SourceUnavailable
from core.explain.template import join
from core.explain.types import PlaylistBrief
from core.fuzzy import did_you_mean, suggest_artist
from core.markup import literal
from core.matching import artist_key, track_key
from core.playlists import building, formats
from core.playlists.building import RankedArtist, rule_words, seed_cap
from core.playlists.models import (
    DEFAULT_LENGTH,
    MAX_LENGTH,
    MIN_LENGTH,
    BuiltPlaylist,
    FilesExport,
    Origin,
    PlaylistTrack,
    SpotifyExport,
)
from core.recommender.engine import RecommenderEngine
from core.recommender.requests import RecommendRequest, UserHistory
from core.sources.spotify_models import CreatedPlaylist, TokenSet
from core.sync.spotify_tokens import token_persister
from core.tags import display_tags

if TYPE_CHECKING:
    from core.services import Services
    from core.sources.spotify import SpotifyUserApi

log = logging.getLogger(__name__)

#: Called once validation passed and the slow part begins; the flag means "answer privately".
SlowHook = Callable[[bool], Awaitable[None]]
#: A track the asker played this often is "worn out": a for-you playlist leaves it out.
WORN_OUT_PLAYS = 3
#: Tracks listed with search links in the "Download files" message.
LINKS_SHOWN = 10
#: Concurrent Spotify searches per export (the shared per-app rate limiter still paces them).
SEARCH_CONCURRENCY = 4
#: `playlists.spotify_playlist_id` while an export runs or after it failed half-way: see `ExportClaim`.
PENDING = "pending:"
#: An export claim this old belongs to a process that died mid-export: another export may take it.
EXPORT_CLAIM_S = 10 * 60
#: Width of `playlists.spotify_playlist_id`: a claim that would not fit does not name its playlist.
CLAIM_CHARS = 64
#: A for-you list leans familiar-adjacent: a playlist is for listening through, not a dare.
PLAYLIST_DISCOVERY = 0.2
#: A for-you list keeps this many top recommendations even without evidence (cold-ish listeners).
ALWAYS_KEEP = 5
#: A blend bridge must rank this high for both people.
BRIDGE_RANK = 10
MODES = ("for me", "from seed", "blend")
BLEND_GUILD_ONLY = "A blend mixes the taste of two members of a server, so it only works inside one."
FILES_INSTEAD = "Here are the playlist files instead: import them anywhere, or use the search links."
FILES_MEANWHILE = "Meanwhile, here are the playlist files."
#: What separates the artist from the title in a "Artist - Title" seed.
SEED_SEPARATORS = (" - ", " – ", " — ")
#: Why a playlist is short when nothing more specific is known.
KNOW_NO_MORE = "that's all I know well enough right now"


def shortfall_note(count: int, requested: int, *, why: str = KNOW_NO_MORE, rule: str | None = None) -> str | None:
    """The note under a playlist shorter than asked: how many, why, and the rules it keeps (the
    rules in `building.rule_words`, from the constants the builder obeys)."""
    if count >= requested:
        return None
    return (f"Only {count} of the {requested} tracks you asked for: {why} "
            f"({rule or rule_words()}).")


def rec_reason(rec: Recommendation) -> str:
    """A short, grounded reason for a recommended artist: the listener's artists and tags behind it."""
    items = [w.name for w in rec.evidence.items[:2]]
    tags = display_tags((w.name for w in rec.evidence.tags), 2)
    if items and tags:
        return f"New for you: close to {join(items)} ({', '.join(tags)})"
    if items:
        return f"New for you: close to {join(items)}"
    if tags:
        return f"New for you: {', '.join(tags)}"
    return "New for you: popular with listeners like you"


def similar_reason(rec: Recommendation, seed: str) -> str:
    tags = display_tags((w.name for w in rec.evidence.tags), 2)
    return f"Similar to {seed}" + (f" ({', '.join(tags)})" if tags else "")


def top_tags(engine: RecommenderEngine, artist_ids: Sequence[int], count: int = 3) -> tuple[str, ...]:
    """The playlist's dominant tags: summed tag weights of its artists in the engine's catalogue."""
    rows = engine.items.indices(list(artist_ids))
    rows = rows[rows >= 0]
    if len(rows) == 0 or engine.tags.matrix.shape[1] == 0:
        return ()
    totals = np.asarray(engine.tags.matrix[rows].sum(axis=0)).ravel()
    order = [i for i in np.argsort(-totals)[:count * 10] if totals[i] > 0]
    return tuple(display_tags((str(engine.tags.names[i]) for i in order), count))


def tag_similarity(engine: RecommenderEngine, artist_ids: Sequence[int]) -> Callable[[PlaylistTrack, PlaylistTrack], float]:
    """Cosine of two tracks' artists' tag vectors (TF-IDF over the catalogue), for `flow_order`.

    Artists without tags are similar to nothing (0), so they fall back to the priority order.
    """
    matrix = engine.tags.matrix
    ids = sorted(set(artist_ids))
    rows = engine.items.indices(ids)
    if matrix.shape[1] == 0 or not (rows >= 0).any():
        return lambda a, b: 0.0
    df = np.bincount(matrix.indices, minlength=matrix.shape[1])
    idf = np.log((matrix.shape[0] + 1.0) / (df + 1.0)) + 1.0
    known = [(i, r) for i, r in zip(ids, rows.tolist(), strict=True) if r >= 0]
    vectors = matrix[[r for _, r in known]].toarray() * idf
    vectors = np.log1p(vectors)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    sims = vectors @ vectors.T
    index = {artist: k for k, (artist, _) in enumerate(known)}

    def similarity(a: PlaylistTrack, b: PlaylistTrack) -> float:
        i, j = index.get(a.artist_id or -1), index.get(b.artist_id or -1)
        return float(sims[i, j]) if i is not None and j is not None else 0.0

    return similarity


async def arrange(engine: RecommenderEngine, picked: Sequence[PlaylistTrack], *, pinned_first: bool = False,
                  uncapped: Sequence[int] = ()) -> list[PlaylistTrack]:
    """`building.flow_order` with tag similarity, off the event loop (a 100-track list is ~10 ms)."""
    def run() -> list[PlaylistTrack]:
        similarity = tag_similarity(engine, [t.artist_id for t in picked if t.artist_id is not None])
        return building.flow_order(picked, key=lambda t: t.artist_id, pinned_first=pinned_first,
                                   similarity=similarity, uncapped=frozenset(uncapped))

    return await asyncio.to_thread(run)


async def _cover(session: AsyncSession, tracks: Sequence[PlaylistTrack]) -> str | None:
    """The playlist's thumbnail: the cover of the first track whose album cover we know."""
    covers = await PublicFactsRepository(session).track_covers(t.track_id for t in tracks)
    return next((covers[t.track_id] for t in tracks if t.track_id in covers), None)


def _tracks_from(items: Sequence[StoredItem]) -> tuple[PlaylistTrack, ...]:
    return tuple(building.to_track(i.track, i.reason or "") for i in items)


@dataclass(frozen=True)
class ExportClaim:
    """An export's hold on `playlists.spotify_playlist_id`, stored in that column as
    "pending:<unix seconds>:<nonce>" and, once Spotify created the playlist, ":<its Spotify id>" after.

    Why the Spotify id rides in the claim: creating a playlist and adding its tracks are separate
    calls, and adding can fail (5xx, a 429 storm, a 403, a timeout, a process that dies) after
    Spotify already put the playlist in the member's library. Remembered the moment Spotify returns
    it, the next export fills *that* playlist rather than leaving it behind and creating another.
    It shares the existing column (no schema change) because the compare-and-set on that one column
    is what keeps "who exports" and "what was created" in step; the longest claim (54 characters)
    fits its 64. A finished export replaces the claim with the bare Spotify id.

    `taken_at` 0 marks a claim given back after a failed fill: takeable at once, still naming the
    playlist. A claim older than `EXPORT_CLAIM_S` belongs to a process that died mid-export and is
    taken over the same way, its playlist included.
    """

    taken_at: int
    nonce: str
    spotify_id: str | None = None

    @classmethod
    def new(cls, spotify_id: str | None = None) -> ExportClaim:
        return cls(int(time.time()), uuid.uuid4().hex[:12], spotify_id)

    @classmethod
    def parse(cls, value: str) -> ExportClaim:
        """A stored claim; a malformed one reads as taken at 0 (lapsed), naming no playlist."""
        taken, _, rest = value.removeprefix(PENDING).partition(":")
        nonce, _, spotify_id = rest.partition(":")
        try:
            return cls(int(taken), nonce, spotify_id or None)
        except ValueError:
            return cls(0, nonce)

    @property
    def value(self) -> str:
        """The column's text for this claim."""
        return f"{PENDING}{self.taken_at}:{self.nonce}" + (f":{self.spotify_id}" if self.spotify_id else "")

    def lapsed(self) -> bool:
        return time.time() - self.taken_at >= EXPORT_CLAIM_S


@dataclass
class _Export:
    """One running export: its claim as last written (the key of every compare-and-set), and the
    Spotify playlist it fills once there is one (taken over with the claim, or created now)."""

    playlist_id: int
    claim: ExportClaim
    spotify_id: str | None

    def given_back(self) -> str | None:
        """The column after a failed export: free, but naming the playlist Spotify already holds."""
        if self.spotify_id is None:
            return None
        return ExportClaim(0, self.claim.nonce, self.spotify_id).value


def unfinished_message(name: str, cause: str, when: str) -> str:
    """A failure after Spotify created the playlist: it exists, and pressing again completes it."""
    return (f"“{literal(name[:100])}” is in your Spotify library, but not all of its tracks got in: {cause} "
            f"Press Send to Spotify again {when} and I'll finish that same playlist rather than make a "
            f"second one. {FILES_MEANWHILE}")


def retry_when(exc: Exception) -> str:
    """When pressing again is worth it: after an account problem is fixed, or Spotify's Retry-After."""
    if isinstance(exc, AccountProblem):
        return "once that's sorted"
    wait = exc.retry_after if isinstance(exc, SourceUnavailable) else None
    return f"in {math.ceil(wait / 60)} minutes" if wait and wait > 60 else "in a minute"


class PlaylistService:
    """Builds, stores and exports playlists (see the module docstring)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @classmethod
    def of(cls, services: Services) -> PlaylistService:
        return services.playlists

    # --- the /playlist entry point ----------------------------------------------------------------
    async def build(self, asker: Asker, mode: str, *, seed: str | None = None,
                    member_discord_id: int | None = None, length: int = DEFAULT_LENGTH,
                    name: str | None = None, on_slow: SlowHook | None = None) -> BuiltPlaylist:
        """Validate (fast, before `on_slow`), then build and store a playlist for the asker.

        Refusals are `SonanceError`s raised before `on_slow` runs: unknown mode, bad length, no
        seed, blending with yourself, a hidden/unknown/history-less partner.
        """
        if mode not in MODES:
            raise InvalidInput(f"Mode must be one of: {', '.join(MODES)}.")
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            raise InvalidInput(f"Pick a length between {MIN_LENGTH} and {MAX_LENGTH} tracks.")
        # Another mode's option means the member expected something else: say so rather than ignore it.
        if member_discord_id is not None and mode != "blend":
            raise InvalidInput("`member` is only for the blend mode: pick mode “blend” to mix your taste with "
                               "theirs, or leave `member` out.")
        if (seed or "").strip() and mode != "from seed":
            raise InvalidInput("`seed` is only for the from seed mode: pick mode “from seed” to start from it, "
                               "or leave `seed` out.")
        name = (name or "").strip()[:100] or None
        async with self.services.session() as session:
            users = UserRepository(session)
            private = False
            visible: list[int] = []
            if asker.guild_id is not None:
                visible = await users.visible_member_ids(asker.guild_id)
                private = asker.user_id not in visible
            partner_id: int | None = None
            if mode == "blend":
                partner_id = await self._partner(session, asker, member_discord_id, visible)
                await require_history(session, asker)
                names = await users.display_names([asker.user_id, partner_id])
            elif mode == "from seed" and not (seed or "").strip():
                raise InvalidInput("Tell me a seed: an artist (start typing to pick one), or “Artist - Title”.")
        if on_slow is not None:
            await on_slow(private)
        if mode == "blend":
            assert partner_id is not None
            built = await self.blend(asker, partner_id, length=length, name=name,
                                     names=(names.get(asker.user_id, "a listener"),
                                            names.get(partner_id, "a listener")))
        elif mode == "from seed":
            built = await self.from_seed(asker, seed or "", length=length, name=name)
        else:
            built = await self.from_recommendations(asker, length=length, name=name)
        return replace(built, private=private)

    async def _partner(self, session: AsyncSession, asker: Asker, member_discord_id: int | None,
                       visible: list[int]) -> int:
        """The blend partner's user id, or the refusal every command gives for that member."""
        if asker.guild_id is None:
            raise GuildOnly(BLEND_GUILD_ONLY)
        if member_discord_id is None:
            raise InvalidInput("Pick the member to blend with.")
        if member_discord_id == asker.discord_id:
            raise InvalidInput("A blend of you and yourself is just your own playlist: pick “for me”, or "
                               "another member to blend with.")
        return await other_member(session, asker.guild_id, member_discord_id, visible)

    # --- building -----------------------------------------------------------------------------------
    async def _engine(self) -> RecommenderEngine:
        from core.recommender.service import RecommendService

        return (await RecommendService.of(self.services).ensure_model(Kind.ARTIST)).engine

    async def _taste(self, user_id: int) -> tuple[dict[int, int], UserHistory, set[int], set[int]]:
        """(artist plays, history row, liked artists, disliked artists) of a user, read now."""
        async with self.services.session() as session:
            repo = RecommendationRepository(session)
            plays = await repo.item_plays("artist", user_id)
            votes = await repo.feedback(user_id, "artist")
        history = UserHistory.from_rows([p.item_id for p in plays], [p.plays for p in plays],
                                        [p.last_played_at for p in plays])
        return ({p.item_id: p.plays for p in plays}, history, {i for i, v in votes.items() if v > 0},
                {i for i, v in votes.items() if v < 0})

    async def from_recommendations(self, asker: Asker, *, length: int = DEFAULT_LENGTH,
                                   name: str | None = None) -> BuiltPlaylist:
        """Tracks of the asker's recommended artists (most-played over everyone, max 2 per artist,
        none they wore out), then of their own artists when new ones run short; ordered for flow."""
        user_id = asker.user_id
        plays, history, liked, disliked = await self._taste(user_id)
        if not plays:
            raise NotEnoughHistory(OWN_NO_HISTORY)
        from core.recommender.service import RecommendService

        recommender = RecommendService.of(self.services)
        request = RecommendRequest(count=max(30, length), discovery=PLAYLIST_DISCOVERY, liked=tuple(liked),
                                   disliked=tuple(disliked))
        loaded = await recommender.ensure_model(Kind.ARTIST)
        engine = loaded.engine
        # Scored like /recommend: in a worker process when there is one (see `scoring_worker`).
        recs = await recommender.score(loaded, history, request)
        # Beyond the first few, keep only artists with evidence tying them to this listener: a
        # track they barely played by an artist they love beats filler nothing connects to them.
        recs = [r for i, r in enumerate(recs) if i < ALWAYS_KEEP or r.evidence.items or r.evidence.tags]
        ranked = [RankedArtist(r.item_id, rec_reason(r)) for r in recs]
        own = sorted((a for a in plays if a not in disliked), key=lambda a: -plays[a])
        ranked += [RankedArtist(a, "One of your artists: a track you've barely played") for a in own]
        async with self.services.session() as session:
            repo = PlaylistRepository(session)
            tracks = await repo.top_tracks([r.artist_id for r in ranked], per_artist=8)
            worn = await repo.user_track_plays(user_id)
        picked = building.pick_tracks(ranked, tracks, length,
                                      skip=lambda row: worn.get(row.track_id, 0) >= WORN_OUT_PLAYS)
        if not picked:
            raise NotFound("I don't know any tracks by the artists I'd recommend you yet. Try again after the "
                           "next sync, or build one from a seed.")
        ordered = await arrange(engine, picked)
        return await self._store(user_id, Origin.RECOMMENDATIONS, ordered, engine, length, name=name)

    async def _resolve_seed(self, seed: str) -> tuple[int, str, TrackRow | None, str | None]:
        """(artist id, artist name, seed track or None, a title typed but not known) from "Artist" or
        "Artist - Title". A known artist with a title we do not know yet ("Radiohead - Creep" before
        anyone played it) seeds from the artist, and the title comes back so the note can say so:
        refusing it as an unknown *artist* called "Radiohead - Creep" was wrong on both counts."""
        text = " ".join(seed.split())[:300]
        by_artist: tuple[int, str, str] | None = None
        async with self.services.session() as session:
            catalog = CatalogRepository(session)
            for sep in SEED_SEPARATORS:
                if sep in text:
                    artist_text, title = (p.strip() for p in text.split(sep, 1))
                    artist = await catalog.artist_by_key(artist_key(artist_text))
                    if artist is not None and title:
                        track = await PlaylistRepository(session).track_by_keys(artist.id, track_key(artist.name, title))
                        if track is not None:
                            return artist.id, artist.name, track, None
                        by_artist = by_artist or (artist.id, artist.name, title)
            key = artist_key(text)
            if not key:
                raise InvalidInput("Tell me a seed: an artist, or “Artist - Title”.")
            artist = await catalog.artist_by_key(key)  # an artist whose own name has " - " in it wins
            if artist is None and by_artist is not None:
                return by_artist[0], by_artist[1], None, by_artist[2]
            if artist is None:
                found = await catalog.search_artists(key, limit=1)
                artist = found[0] if found else None
        if artist is None:
            # The closest name we know, to what was typed for the artist ("Radiohed - Creep" -> Radiohead).
            typed = next((text.split(sep, 1)[0].strip() for sep in SEED_SEPARATORS if sep in text), text)
            suggestion = await suggest_artist(self.services, typed)
            raise NotFound(did_you_mean(f"I don't know an artist called “{literal(text[:100])}”.",
                                        literal(suggestion) if suggestion else None))
        return artist.id, artist.name, None, None

    async def from_seed(self, asker: Asker, seed: str, *, length: int = DEFAULT_LENGTH,
                        name: str | None = None) -> BuiltPlaylist:
        """Song-based discovery: the seed's artist plus the artists most similar to it (engine), each
        with its most-played tracks; a track seed starts the list."""
        artist_id, artist_name, seed_track, unknown_title = await self._resolve_seed(seed)
        engine = await self._engine()

        def neighbours() -> list[Recommendation]:
            if artist_id not in engine.items:
                return []
            # Only artists that share evidence with the seed (`RecommenderEngine.related_to`, the same
            # floor as /similar's): a Radiohead playlist got Metallica, each "Similar to Radiohead".
            return engine.similar(artist_id, max(30, length), related_only=True)

        similar = await asyncio.to_thread(neighbours)
        ranked = [RankedArtist(artist_id, f"The seed artist, {artist_name}")]
        ranked += [RankedArtist(r.item_id, similar_reason(r, artist_name)) for r in similar]
        first = [building.to_track(seed_track, "Your seed track")] if seed_track is not None else []
        # The listener asked for this artist: it may return more often than others (still spaced).
        own = seed_cap(length)
        async with self.services.session() as session:
            tracks = await PlaylistRepository(session).top_tracks([r.artist_id for r in ranked],
                                                                  per_artist=max(4, own))
        picked = building.pick_tracks(ranked, tracks, length, first=first, caps={artist_id: own})
        if not picked:
            raise NotFound(f"I don't know any tracks by {literal(artist_name)} or similar artists yet.")
        ordered = await arrange(engine, picked, pinned_first=seed_track is not None, uncapped=(artist_id,))
        label = f"{seed_track.artist} - {seed_track.title}" if seed_track is not None else artist_name
        # Short because only so many artists are close to the seed: say so, never pad with strangers.
        close = len({t.artist_id for t in ordered} - {artist_id})
        known = (f"I know tracks by only {close} artist{'s' if close != 1 else ''} close to {artist_name} "
                 "(the same people play them, or Last.fm calls them similar)" if close
                 else f"I don't know tracks by any artist close to {artist_name} yet")
        why = f"{known}, and I'd rather stop there than pad it with unrelated music"
        notice = (f"I don't know “{unknown_title[:100]}” by {artist_name} yet, so this starts from "
                  f"{artist_name}." if unknown_title else None)
        return await self._store(asker.user_id, Origin.SEED, ordered, engine, length, name=name, seed=label,
                                 why_short=why, rule=rule_words(artist_name, own), notice=notice)

    async def blend(self, asker: Asker, partner_id: int, *, length: int = DEFAULT_LENGTH, name: str | None = None,
                    names: tuple[str, str] = ("you", "them")) -> BuiltPlaylist:
        """A playlist fair to both: picks alternate between A's and B's view of the blend (shared
        artists, then bridges both would like, then each one's own), with the measured fairness.

        Callers check privacy first (`build` does); this method trusts the partner's user id.
        """
        user_a, user_b = asker.user_id, partner_id
        plays_a, history_a, _, disliked_a = await self._taste(user_a)
        plays_b, history_b, _, disliked_b = await self._taste(user_b)
        if not plays_a or not plays_b:
            raise NotEnoughHistory("A blend needs listening history from both of you.")
        engine = await self._engine()
        disliked = disliked_a | disliked_b
        name_a, name_b = names
        total_a, total_b = sum(plays_a.values()) or 1, sum(plays_b.values()) or 1
        shared = [a for a in plays_a if a in plays_b and a not in disliked]
        shared.sort(key=lambda a: -min(plays_a[a] / total_a, plays_b[a] / total_b))
        request = RecommendRequest(count=60, with_evidence=False, disliked=tuple(disliked))
        recs_a, recs_b = await asyncio.gather(asyncio.to_thread(engine.recommend, history_a, request),
                                              asyncio.to_thread(engine.recommend, history_b, request))
        rank_a = {r.item_id: i for i, r in enumerate(recs_a)}
        rank_b = {r.item_id: i for i, r in enumerate(recs_b)}
        # A bridge is near the top of *both* lists; a few of them, so the blend stays about the two people.
        bridges = sorted((a for a in rank_a if a in rank_b and a not in plays_a and a not in plays_b
                          and max(rank_a[a], rank_b[a]) < BRIDGE_RANK),
                         key=lambda a: (max(rank_a[a], rank_b[a]), rank_a[a] + rank_b[a]))[:max(1, length // 5)]
        own_a = sorted((a for a in plays_a if a not in plays_b and a not in disliked), key=lambda a: -plays_a[a])
        own_b = sorted((a for a in plays_b if a not in plays_a and a not in disliked), key=lambda a: -plays_b[a])

        both_reason = f"{name_a} and {name_b} both play this artist"
        bridge_reason = f"A bridge: likely to click with both {name_a} and {name_b}"
        shared_by_a = sorted(shared, key=lambda a: -plays_a[a])
        shared_by_b = sorted(shared, key=lambda a: -plays_b[a])
        queue_a = ([RankedArtist(a, both_reason, "both") for a in shared_by_a]
                   + [RankedArtist(a, bridge_reason, "both") for a in bridges]
                   + [RankedArtist(a, f"From {name_a}'s favourites", "a") for a in own_a])
        queue_b = ([RankedArtist(a, both_reason, "both") for a in shared_by_b]
                   + [RankedArtist(a, bridge_reason, "both") for a in bridges]
                   + [RankedArtist(a, f"From {name_b}'s favourites", "b") for a in own_b])
        async with self.services.session() as session:
            tracks = await PlaylistRepository(session).top_tracks(
                [*shared, *bridges, *own_a, *own_b], per_artist=building.MAX_PER_ARTIST)
        picked = building.blend_picks(queue_a, queue_b, tracks, length)
        if not picked:
            raise NotFound("I don't know tracks for either of your artists yet. Try again after the next sync.")
        ordered = await arrange(engine, picked)
        return await self._store(user_a, Origin.BLEND, ordered, engine, length, name=name,
                                 seed=f"blend of {name_a} and {name_b}", partner_user_id=user_b,
                                 partner_name=name_b)

    async def _store(self, user_id: int, origin: Origin, tracks: Sequence[PlaylistTrack],
                     engine: RecommenderEngine, requested: int, *, name: str | None, seed: str | None = None,
                     partner_user_id: int | None = None, partner_name: str | None = None,
                     why_short: str = KNOW_NO_MORE, rule: str | None = None,
                     notice: str | None = None) -> BuiltPlaylist:
        """Name it (the explainer, or the instant template), store rows, return the domain object.

        `why_short` and `rule` word the note of a list shorter than `requested` (`shortfall_note`);
        `notice` comes first in the note (how the seed was read)."""
        artists = list(dict.fromkeys(t.artist for t in tracks))
        artist_ids = list(dict.fromkeys(t.artist_id for t in tracks if t.artist_id is not None))
        brief = PlaylistBrief(seed=seed if origin != Origin.RECOMMENDATIONS else None,
                              top_artists=tuple(artists[:5]), top_tags=top_tags(engine, artist_ids),
                              count=len(tracks))
        explanation = await self.services.explainer.playlist(brief, user_id=user_id)
        title = name or (explanation.name or "").strip() or "Sonance mix"
        description = explanation.text.strip()
        async with self.services.session() as session:
            row = await PlaylistRepository(session).create(
                user_id=user_id, name=title, origin=str(origin), description=description, seed=seed,
                partner_user_id=partner_user_id, items=[(t.track_id, t.reason) for t in tracks])
            linked = await self._spotify_linked(session, user_id)
            cover = await _cover(session, tracks)
            playlist_id = int(row.id)
        note = " ".join(filter(None, (notice, shortfall_note(len(tracks), requested, why=why_short, rule=rule))))
        log.info("playlist built", extra={"user_id": user_id, "origin": str(origin), "tracks": len(tracks)})
        return BuiltPlaylist(playlist_id, title[:200], description[:500], origin, tuple(tracks), seed=seed,
                             partner_name=partner_name,
                             fairness=building.fairness(tracks) if origin == Origin.BLEND else None,
                             requested=requested, note=note, spotify_linked=linked, top_artists=tuple(artists[:5]),
                             cover_url=cover)

    async def _spotify_linked(self, session: AsyncSession, user_id: int) -> bool:
        if self.services.spotify is None:
            return False
        account = await AccountRepository.without_cipher(session).get(user_id, "spotify")
        return account is not None and (account.access_token_enc is not None or account.refresh_token_enc is not None)

    # --- reading back ------------------------------------------------------------------------------
    async def get(self, asker: Asker, playlist_id: int) -> BuiltPlaylist:
        """A stored playlist, for its owner only (the export buttons are the owner's)."""
        async with self.services.session() as session:
            repo = PlaylistRepository(session)
            row = owned_row(await repo.get(playlist_id), asker, "I can't find that playlist any more.",
                            PLAYLIST_NOT_YOURS)
            items = await repo.items(playlist_id)
            linked = await self._spotify_linked(session, asker.user_id)
            tracks = _tracks_from(items)
            cover = await _cover(session, tracks)
        return BuiltPlaylist(int(row.id), row.name, row.description or "", Origin(row.origin), tracks,
                             seed=row.seed, requested=len(items), spotify_linked=linked, cover_url=cover)

    async def export_files(self, asker: Asker, playlist_id: int) -> FilesExport:
        """XSPF + M3U of a stored playlist, and Last.fm/Spotify search links for its first tracks."""
        return self._files(await self.get(asker, playlist_id))

    @staticmethod
    def _files(playlist: BuiltPlaylist) -> FilesExport:
        return FilesExport(playlist.name, formats.export_files(playlist.name, playlist.description, playlist.tracks),
                           formats.search_links(playlist.tracks[:LINKS_SHOWN]), len(playlist.tracks))

    # --- Spotify -------------------------------------------------------------------------------------
    async def export_spotify(self, asker: Asker, playlist_id: int) -> SpotifyExport:
        """Create the playlist in the owner's Spotify account; on refusal, say why and hand back files.

        Tracks resolve through their stored Spotify id, else a Spotify search (found ids are kept for
        next time); tracks Spotify doesn't have are counted, not silently dropped.
        """
        playlist = await self.get(asker, playlist_id)
        client = self.services.spotify
        if client is None:
            return SpotifyExport(False, "Spotify isn't enabled on this bot. " + FILES_INSTEAD,
                                 fallback=self._files(playlist))
        async with self.services.session() as session:
            accounts = AccountRepository(session, self.services.cipher)
            account = await accounts.get(asker.user_id, "spotify")
            if account is None:
                return SpotifyExport(False, "You haven't linked Spotify: use /link spotify first. " + FILES_INSTEAD,
                                     fallback=self._files(playlist))
            access, refresh = accounts.tokens(account)
            expires = account.token_expires_at
            tokens = TokenSet(access or "", refresh or "", expires.timestamp() if access and expires else 0.0,
                              account.scope or "")
            account_id, identity = int(account.id), account.external_id
            existing = (await PlaylistRepository(session).get(playlist_id))
            already = existing.spotify_playlist_id if existing is not None else None
        if already and not already.startswith(PENDING):
            url = f"https://open.spotify.com/playlist/{already}"
            return SpotifyExport(True, f"This playlist is already on Spotify: {url}", url=url)
        if not access and not refresh:
            return SpotifyExport(False, "Sonance can no longer use your Spotify account; run /link spotify again. "
                                 + FILES_INSTEAD, fallback=self._files(playlist))
        export = await self._claim_export(playlist_id, already)
        if export is None:
            return SpotifyExport(False, "This playlist is being sent to Spotify right now; its link follows in a "
                                 "moment.")
        try:
            result, done_id, found = await self._create_on_spotify(asker, playlist, tokens, account_id, identity,
                                                                   export)
        except BaseException:  # cancelled or crashed mid-export: free the row, keeping what Spotify holds
            await self._store_export(export, None)
            raise
        try:
            await self._store_export(export, done_id, found)
        except Exception:  # the playlist exists on Spotify: the member gets its link whatever happens here
            log.exception("spotify export of playlist %s finished (%s) but was not stored", playlist_id, done_id,
                          extra={"user_id": asker.user_id, "job": "playlist"})
        return result

    async def _claim_export(self, playlist_id: int, seen: str | None) -> _Export | None:
        """Mark the playlist as being exported (compare-and-set), so a double click or a second process
        cannot create a second Spotify playlist. A claim given back after a failed fill, or older than
        `EXPORT_CLAIM_S` (its process died mid-export), is taken over together with the Spotify playlist
        it names. None: another export holds it."""
        previous = ExportClaim.parse(seen) if seen else None
        if previous is not None and not previous.lapsed():
            return None
        claim = ExportClaim.new(previous.spotify_id if previous is not None else None)
        async with self.services.session() as session:
            if not await PlaylistRepository(session).set_spotify_playlist_id(playlist_id, claim.value, expected=seen):
                return None
        if claim.spotify_id:
            log.info("export of playlist %s resumes spotify playlist %s", playlist_id, claim.spotify_id,
                     extra={"job": "playlist"})
        return _Export(playlist_id, claim, claim.spotify_id)

    async def _remember(self, export: _Export, spotify_id: str) -> None:
        """Write the just-created Spotify playlist into our claim before any track is added, so a fill
        that fails, times out or dies with the process leaves a claim the next export finishes.

        Failing to write it does not stop this export (the member still gets their playlist); only a
        failure later in this same export would then leave the playlist behind, and that is logged."""
        export.spotify_id = spotify_id
        claim = replace(export.claim, spotify_id=spotify_id)
        if len(claim.value) > CLAIM_CHARS:
            log.warning("spotify playlist id %r too long to remember in the export claim", spotify_id,
                        extra={"job": "playlist"})
            return
        try:
            async with self.services.session() as session:
                stored = await PlaylistRepository(session).set_spotify_playlist_id(
                    export.playlist_id, claim.value, expected=export.claim.value)
        except Exception:
            log.exception("spotify playlist %s created but not remembered in its export claim", spotify_id,
                          extra={"job": "playlist"})
            return
        if stored:
            export.claim = claim
        else:
            log.warning("spotify playlist %s created after its export claim lapsed and was taken over",
                        spotify_id, extra={"job": "playlist"})

    async def _store_export(self, export: _Export, done_id: str | None, found: dict[int, str] | None = None) -> None:
        """Replace our claim with the finished playlist's id, or give it back so the member can try
        again after a failure (still naming a playlist Spotify created, so the retry fills that one)."""
        async with self.services.session() as session:
            repo = PlaylistRepository(session)
            value = done_id or export.given_back()
            if not await repo.set_spotify_playlist_id(export.playlist_id, value, expected=export.claim.value) \
                    and done_id:
                # our claim ran past EXPORT_CLAIM_S and another export took it over
                log.warning("spotify playlist %s finished after its export claim lapsed; the playlist row keeps "
                            "the other export's", done_id, extra={"job": "playlist"})
            if found:
                await repo.set_track_spotify_ids(found)

    async def _send(self, api: SpotifyUserApi, playlist: BuiltPlaylist, uris: list[str],
                    export: _Export) -> CreatedPlaylist:
        """Fill the playlist this export already has on Spotify, or create one (remembered at once) and
        fill it. A remembered playlist the member deleted meanwhile (404) is replaced by a new one."""
        if export.spotify_id is not None:
            try:
                added = await api.fill_playlist(export.spotify_id, uris, replace_existing=True)
                return CreatedPlaylist(export.spotify_id, None, None, added)
            except NotFound:
                log.info("unfinished spotify playlist %s is gone; creating a new one", export.spotify_id,
                         extra={"job": "playlist"})
                export.spotify_id = None
        created = await api.new_playlist(playlist.name[:100], description=playlist.description[:300])
        await self._remember(export, created.id)
        return replace(created, added=await api.fill_playlist(created.id, uris))

    def _failed(self, playlist: BuiltPlaylist, export: _Export, cause: str, exc: Exception) -> SpotifyExport:
        """A failed export, worded by whether Spotify already holds the (unfinished) playlist."""
        if export.spotify_id is None:
            message = f"{cause} {FILES_INSTEAD}"
        else:
            message = unfinished_message(playlist.name, cause, retry_when(exc))
        return SpotifyExport(False, message, fallback=self._files(playlist))

    async def _create_on_spotify(self, asker: Asker, playlist: BuiltPlaylist, tokens: TokenSet, account_id: int,
                                 identity: str, export: _Export) -> tuple[SpotifyExport, str | None, dict[int, str]]:
        """(what to tell the member, the finished playlist's id or None, newly found track ids).

        Refreshed tokens are stored only while the row still links `identity`: re-linked to another
        Spotify user mid-export, the old account's tokens must not land on the new one's row."""
        client = self.services.spotify
        assert client is not None
        api = client.for_user(tokens, on_refresh=token_persister(self.services, account_id, job="playlist",
                                                                 identity=identity))
        found: dict[int, str] = {}
        try:
            uris, found = await self._resolve(api, playlist.tracks)
            if not uris:
                return (SpotifyExport(False, "Spotify doesn't seem to have any of these tracks. " + FILES_INSTEAD,
                                      unresolved=len(playlist.tracks), fallback=self._files(playlist)), None, found)
            created = await self._send(api, playlist, uris, export)
        except AccountProblem as exc:
            log.info("spotify export refused: %s", exc.reason, extra={"user_id": asker.user_id, "job": "playlist"})
            return self._failed(playlist, export, exc.user_message, exc), None, found
        except (SourceUnavailable, NotFound) as exc:
            log.warning("spotify export failed: %s", exc, extra={"user_id": asker.user_id, "job": "playlist"})
            cause = ("Spotify isn't answering right now." if export.spotify_id is None
                     else "Spotify stopped answering while I was adding them.")
            return self._failed(playlist, export, cause, exc), None, found
        url = created.url or f"https://open.spotify.com/playlist/{created.id}"
        unresolved = len(playlist.tracks) - len(uris)
        message = f"Your playlist is on Spotify with {created.added} tracks: {url}"
        if unresolved:
            message += f"\n{unresolved} track{'s' if unresolved != 1 else ''} couldn't be found on Spotify."
        return SpotifyExport(True, message, url=url, added=created.added, unresolved=unresolved), created.id, found

    async def _resolve(self, api: SpotifyUserApi, tracks: Sequence[PlaylistTrack]) -> tuple[list[str], dict[int, str]]:
        """(track URIs in playlist order without duplicates, newly found ids by track id)."""
        gate = asyncio.Semaphore(SEARCH_CONCURRENCY)

        async def one(track: PlaylistTrack) -> str | None:
            if track.spotify_id:
                return track.spotify_id
            async with gate:
                try:
                    hit = await api.find_track(track.artist, track.title)
                except NotFound:
                    return None
            return hit.id if hit is not None else None

        ids = await asyncio.gather(*(one(t) for t in tracks))
        found = {t.track_id: i for t, i in zip(tracks, ids, strict=True) if i and not t.spotify_id}
        uris = list(dict.fromkeys(f"spotify:track:{i}" for i in ids if i))
        return uris, found

    # --- autocomplete --------------------------------------------------------------------------------
    async def seed_autocomplete(self, prefix: str, limit: int = 25) -> list[str]:
        """Artist names starting with `prefix`; after “Artist - ”, that artist's best-known tracks."""
        text = " ".join((prefix or "").split())
        async with self.services.session() as session:
            catalog = CatalogRepository(session)
            if " - " in text:
                artist_text, title = (p.strip() for p in text.split(" - ", 1))
                artist = await catalog.artist_by_key(artist_key(artist_text))
                if artist is not None:
                    tracks = (await PlaylistRepository(session).top_tracks([artist.id], per_artist=100)).get(artist.id, [])
                    wanted = title.lower()
                    return [f"{artist.name} - {t.title}" for t in tracks if t.title.lower().startswith(wanted)][:limit]
            found = await catalog.search_artists(artist_key(text), limit=limit)
        return [a.name for a in found]
