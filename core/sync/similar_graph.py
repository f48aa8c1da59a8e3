"""Last.fm's similar-artist (and similar-track) graph: filled for what members play, served to /similar.

Why it is built like this:
- **Budget.** One request per artist (`artist.getSimilar`, by name with autocorrect, limit 100): an
  mbid-first lookup would cost a second request whenever Last.fm's MusicBrainz mapping misses, and
  our names come from Last.fm in the first place. Requests go through the app-wide Last.fm limiter
  (`services.lastfm`), so filling never pushes the process past `LASTFM_REQUESTS_PER_SECOND`; enough
  workers (the limit times `LATENCY_COVERED_S`) keep that limiter saturated while they wait on the network.
- **Order.** Members' most-played artists first (`SimilarGraphRepository.artists_due`), so a run cut
  short by a Last.fm outage has already covered what the recommender needs most.
- **Misses remembered.** Error 6 and an empty list are stored as a fetch row without edges and are
  not asked again before `refresh_days`, like a hit. A name typed into /similar that Last.fm does not
  know is remembered in the cache for a day (there is no catalogue row to hang it on), and one it
  autocorrects to another artist ("Radiohed") is remembered as leading to that artist's row.
- **Storms.** The client already retries 29/5xx with backoff honouring Retry-After; when it gives up
  on a rate limit, or on `STORM_FAILURES` artists in a row, the run stops (nothing more is asked)
  and the whole filler rests for `pause_s` (or the server's Retry-After), so the next scheduled run
  does not hammer a struggling service.
- **One broken artist is not a storm.** Last.fm's backend fails some pages for days (error 8, HTTP
  500) while answering every other. An artist that fails while others around it answer is set aside
  for `FAILING_TTL_S` (in the cache, like a typed name's miss), so the most-played-first order never
  sticks on it; it is asked again after that, not stored as a miss.
- **Nothing half-written.** One artist = one transaction: its new neighbours enter the catalogue, its
  old edges are deleted and the new ones inserted, and its fetch row is updated, or none of it.
- **Matching.** A neighbour is matched by MBID first, then by `core.matching.artist_key`; one we have
  never seen enters the catalogue (name, mbid, Last.fm URL). Its tags arrive later from
  `LastfmTagEnrichment`, which tags every untagged catalogue artist.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from core.cleaning import clean_name, clean_token
from core.db.models import Artist
from core.db.repositories import CatalogRepository
from core.db.repositories.similar import DueArtist, DueTrack, FetchStatus, SimilarGraphRepository
from core.db.types import utcnow
from core.errors import NotFound, SourceUnavailable
from core.matching import artist_key, track_key
from core.services import Services
from core.sources.lastfm import LastfmClient
from core.sources.lastfm_models import SimilarArtist, SimilarTrack
from core.sync.ingest import MAX_MBID, MAX_NAME, MAX_TITLE, MAX_URL

log = logging.getLogger(__name__)

#: Cache namespace: names typed into /similar that Last.fm does not know, and the filler's pause.
CACHE_NAMESPACE = "lastfm_similar"
DAY_S = 86_400.0
#: How long a typed name Last.fm does not know is believed unknown.
NAME_MISS_TTL_S = DAY_S
#: After Last.fm gave up on us (a 29/5xx storm outlasting the client's retries), rest this long.
PAUSE_S = 10 * 60.0
#: Artists failing in a row (each after the client's retries) that make a storm rather than broken pages.
STORM_FAILURES = 3
#: How long an artist that failed on its own (others answered) is set aside.
FAILING_TTL_S = DAY_S
#: Last.fm answers a 100-row getSimilar in well under a second but not always: the filler keeps
#: rate x this many requests in flight, so answers this slow still leave the limiter saturated.
LATENCY_COVERED_S = 2.0
MAX_WORKERS = 16


@dataclass
class GraphFillReport:
    """What one run did (for logs, the CLI and tests)."""

    kind: str = "artist"
    considered: int = 0
    ok: int = 0
    empty: int = 0
    not_found: int = 0
    failed: int = 0  # unexpected errors (logged); asked again next run
    set_aside: int = 0  # failed on their own while others answered: skipped for `FAILING_TTL_S`
    edges: int = 0
    seconds: float = 0.0
    stopped: bool = False
    reason: str | None = None
    requests: int = field(default=0, repr=False)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class SimilarAnswer:
    """/similar's answer from Last.fm's graph: the seed as Last.fm names it and its neighbours."""

    seed_id: int
    seed: str
    neighbours: list[tuple[Artist, float]]


def _artist_rows(similar: list[SimilarArtist]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for s in similar:
        key = artist_key(s.name)[:MAX_NAME]
        if key and key not in rows:
            rows[key] = {"name_key": key, "name": s.name, "mbid": s.mbid, "lastfm_url": s.url}
    return rows


async def _artist_ids(session: Any, similar: list[SimilarArtist]) -> list[int | None]:
    """Each neighbour's artist id, in order: by MBID, then by normalised name (creating new artists);
    None for a name without a key."""
    by_mbid = await SimilarGraphRepository(session).artist_ids_by_mbid(s.mbid for s in similar if s.mbid)
    by_key: dict[str, int] = {}
    rest = [s for s in similar if not (s.mbid and s.mbid in by_mbid)]
    if rest:  # sorted keys: concurrent writers insert in the same order (no lock-order deadlocks)
        rows = _artist_rows(rest)
        by_key = await CatalogRepository(session).ensure_artists(rows[k] for k in sorted(rows))
    ids: list[int | None] = []
    for s in similar:
        artist_id = by_mbid.get(s.mbid) if s.mbid else None
        ids.append(artist_id if artist_id is not None else by_key.get(artist_key(s.name)[:MAX_NAME]))
    return ids


def _cleaned_artists(similar: list[SimilarArtist]) -> list[SimilarArtist]:
    """Usable neighbours (match > 0) with names cleaned as ingest cleans scrobbles (`clean_name`):
    PostgreSQL refuses NUL in text, and one such name would fail the artist's whole list every run."""
    out = []
    for s in similar:
        name = clean_name(s.name, MAX_NAME)
        if name and s.match > 0.0:
            out.append(replace(s, name=name, mbid=clean_token(s.mbid, MAX_MBID), url=clean_token(s.url, MAX_URL)))
    return out


def _cleaned_tracks(similar: list[SimilarTrack] | None) -> list[SimilarTrack]:
    out = []
    for s in similar or ():
        artist, title = clean_name(s.artist, MAX_NAME), clean_name(s.title, MAX_TITLE)
        if artist and title and s.match > 0.0:
            out.append(replace(s, artist=artist, title=title, artist_mbid=clean_token(s.artist_mbid, MAX_MBID),
                               mbid=clean_token(s.mbid, MAX_MBID), url=clean_token(s.url, MAX_URL)))
    return out


async def resolve_artists(session: Any, similar: list[SimilarArtist]) -> dict[int, float]:
    """Neighbours -> {artist id: best match}: by MBID, then by normalised name (creating new artists)."""
    usable = _cleaned_artists(similar)
    edges: dict[int, float] = {}
    for s, artist_id in zip(usable, await _artist_ids(session, usable), strict=True):
        if artist_id is not None:
            edges[artist_id] = max(edges.get(artist_id, 0.0), min(1.0, s.match))
    return edges


class SimilarGraph:
    """Fills the stored graph and answers /similar from it (one per process: `SimilarGraph.of`)."""

    def __init__(self, services: Services, client: LastfmClient | None = None, *, refresh_days: int = 30,
                 concurrency: int | None = None, pause_s: float = PAUSE_S) -> None:
        self.services = services
        self._client = client
        self.refresh_days = refresh_days
        # requests in flight: enough that the shared limiter, not Last.fm's latency, sets the pace
        rate = services.settings.lastfm_requests_per_second
        self.concurrency = concurrency or max(4, min(MAX_WORKERS, math.ceil(rate * LATENCY_COVERED_S)))
        self.pause_s = pause_s
        self._fill_lock = asyncio.Lock()  # one fill per kind at a time in this process
        self._store_lock = asyncio.Lock()  # catalogue writes one at a time (SQLite has one writer anyway)

    @classmethod
    def of(cls, services: Services) -> SimilarGraph:
        return services.similar_graph

    @property
    def client(self) -> LastfmClient | None:
        return self._client or self.services.lastfm

    @property
    def stale_before(self) -> Any:
        return utcnow() - timedelta(days=self.refresh_days)

    # --- pause after a storm ------------------------------------------------------------------------

    async def paused(self) -> bool:
        until = await self.services.cache.get(CACHE_NAMESPACE, "paused_until")
        return until is not None and float(until) > time.time()

    async def _pause(self, exc: SourceUnavailable) -> None:
        seconds = max(self.pause_s, exc.retry_after or 0.0)
        await self.services.cache.set(CACHE_NAMESPACE, "paused_until", time.time() + seconds, ttl_s=seconds)

    # --- filling --------------------------------------------------------------------------------------

    async def _store_artist(self, artist_id: int, similar: list[SimilarArtist] | None, status: FetchStatus) -> int:
        async with self._store_lock, self.services.session() as session:
            edges = await resolve_artists(session, similar) if similar else {}
            return await SimilarGraphRepository(session).replace_artist_edges(
                artist_id, edges, status if edges or status != "ok" else "empty")

    async def _store_track(self, track_id: int, similar: list[SimilarTrack] | None, status: FetchStatus) -> int:
        """Like `_store_artist`; tracks are keyed as ingest keys them (`track_key`), so a neighbour a
        member has played is the same catalogue row."""
        async with self._store_lock, self.services.session() as session:
            edges: dict[int, float] = {}
            usable = _cleaned_tracks(similar)
            if usable:
                catalog = CatalogRepository(session)
                artist_ids = await _artist_ids(session, [SimilarArtist(s.artist, s.artist_mbid, s.match, None)
                                                         for s in usable])
                # the title key starts with the artist's key: use our spelling of an artist matched by MBID
                named = await catalog.artists_by_ids(i for i in artist_ids if i is not None)
                keyed = [(aid, track_key(named[aid].name if aid in named else s.artist, s.title)[:MAX_TITLE], s)
                         for aid, s in zip(artist_ids, usable, strict=True)]
                rows = {(aid, key): {"artist_id": aid, "title_key": key, "title": s.title[:MAX_TITLE],
                                     "mbid": s.mbid, "lastfm_url": s.url}
                        for aid, key, s in reversed(keyed) if aid is not None}
                ids = await catalog.ensure_tracks(rows[k] for k in sorted(rows))
                for aid, key, s in keyed:
                    if (tid := ids.get((aid, key))) is not None:  # type: ignore[arg-type]
                        edges[tid] = max(edges.get(tid, 0.0), min(1.0, s.match))
            return await SimilarGraphRepository(session).replace_track_edges(
                track_id, edges, status if edges or status != "ok" else "empty")

    async def fill_artists(self, limit: int = 10_000) -> GraphFillReport:
        """Fetch the similar lists of up to `limit` due artists (never fetched, or older than
        `refresh_days`), members' most-played first. Stops at the first SourceUnavailable."""
        return await self._fill("artist", limit)

    async def fill_tracks(self, limit: int = 1_000) -> GraphFillReport:
        """Like `fill_artists` for `track.getSimilar` (the track recommender's graph)."""
        return await self._fill("track", limit)

    async def _fill(self, kind: str, limit: int) -> GraphFillReport:
        report = GraphFillReport(kind=kind)
        client = self.client
        if client is None:
            report.stopped, report.reason = True, "lastfm_not_configured"
            return report
        if await self.paused():
            report.stopped, report.reason = True, "paused"
            return report
        if self._fill_lock.locked():
            report.stopped, report.reason = True, "already_running"
            return report
        async with self._fill_lock:
            started = time.monotonic()
            await self._fill_locked(client, kind, limit, report)
            report.seconds = time.monotonic() - started
        log.info("lastfm similar %ss: %d asked (%d ok, %d empty, %d unknown, %d failed, %d set aside), %d edges "
                 "in %.1fs (%.2f requests/s)%s", kind, report.considered, report.ok, report.empty, report.not_found,
                 report.failed, report.set_aside, report.edges, report.seconds, report.requests_per_s,
                 f"; stopped: {report.reason}" if report.stopped else "")
        return report

    async def _fill_locked(self, client: LastfmClient, kind: str, limit: int, report: GraphFillReport) -> None:
        tried: set[int] = set(await self._set_aside_ids(kind))  # skipped like items this run tried
        queue: asyncio.Queue[DueArtist | DueTrack] = asyncio.Queue()
        failing: list[DueArtist | DueTrack] = []  # failed since the last answer (a storm once long enough)
        page = max(50, self.concurrency * 10)

        async def refill() -> bool:
            want = min(page, limit - report.considered - queue.qsize())
            if want <= 0 or report.stopped:
                return False
            async with self.services.session() as session:
                repo = SimilarGraphRepository(session)
                if kind == "artist":
                    due: list[Any] = await repo.artists_due(self.stale_before, limit=want, skip=tried)
                else:
                    due = await repo.tracks_due(self.stale_before, limit=want, skip=tried)
            for item in due:
                tried.add(item.id)
                queue.put_nowait(item)
            return bool(due)

        refill_lock = asyncio.Lock()

        async def worker() -> None:
            while not report.stopped:
                if queue.empty():
                    async with refill_lock:
                        if queue.empty() and not await refill():
                            return
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    continue
                report.considered += 1
                await self._one(client, item, report, failing)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        if failing and not report.stopped:  # failed last, with no answer after: asked again next run
            report.failed += len(failing)

    async def _set_aside_ids(self, kind: str) -> dict[int, float]:
        """Items set aside (id -> until, POSIX seconds) and not yet due again: one cache read per run."""
        stored = await self.services.cache.get(CACHE_NAMESPACE, f"set_aside:{kind}") or {}
        now = time.time()
        return {int(i): float(until) for i, until in stored.items() if float(until) > now}

    async def _set_aside(self, kind: str, failing: list[DueArtist | DueTrack], report: GraphFillReport) -> None:
        """Another item answered after these failed: their pages are broken, not Last.fm. (Two
        processes setting items aside at once may lose one: it is then asked again, nothing worse.)"""
        aside = await self._set_aside_ids(kind)
        until = time.time() + FAILING_TTL_S
        for item in failing:
            aside[item.id] = until
            report.set_aside += 1
            log.warning("lastfm similar %s for %r keeps failing while others answer; asking again in %.0f h",
                        kind, item, FAILING_TTL_S / 3600)
        failing.clear()
        await self.services.cache.set(CACHE_NAMESPACE, f"set_aside:{kind}", {str(i): t for i, t in aside.items()},
                                      ttl_s=FAILING_TTL_S)

    async def _one(self, client: LastfmClient, item: DueArtist | DueTrack, report: GraphFillReport,
                   failing: list[DueArtist | DueTrack]) -> None:
        report.requests += 1
        try:
            if isinstance(item, DueArtist):
                answer: Any = (await client.artist_similar(item.name)).artists
            else:
                answer = await client.track_similar(item.artist, item.title)
            status: FetchStatus = "ok" if any(s.match > 0 for s in answer) else "empty"
        except NotFound:
            answer, status = None, "not_found"
        except SourceUnavailable as exc:
            failing.append(item)
            storm = exc.rate_limited or exc.retry_after is not None or len(failing) >= STORM_FAILURES
            if storm and not report.stopped:
                report.stopped, report.reason = True, "lastfm_unavailable"
                log.warning("lastfm unavailable while fetching similar %ss (%s); stopping and resting %.0fs",
                            report.kind, exc.detail or exc, max(self.pause_s, exc.retry_after or 0.0))
                await self._pause(exc)
            return
        except Exception:
            report.failed += 1  # a bug, not a fact about the item: asked again next run
            log.exception("lastfm similar %s for %r failed", report.kind, item)
            return
        try:
            if isinstance(item, DueArtist):
                stored = await self._store_artist(item.id, answer, status)
            else:
                stored = await self._store_track(item.id, answer, status)
        except Exception:
            report.failed += 1
            log.exception("storing similar %ss of %r failed; nothing of it was kept", report.kind, item)
            return
        report.edges += stored
        if failing and not report.stopped:
            await self._set_aside(report.kind, failing, report)
        if status == "not_found":
            report.not_found += 1
        elif stored:
            report.ok += 1
        else:
            report.empty += 1

    # --- /similar for any artist Last.fm knows ------------------------------------------------------

    async def similar_to(self, name: str, limit: int = 100) -> SimilarAnswer:
        """The stored neighbours of `name`, fetching them from Last.fm when missing or stale.

        Raises NotFound with a message for the user when Last.fm does not know the artist (or knows
        no similar artists), and SourceUnavailable when Last.fm cannot be asked and nothing is stored.
        """
        key = artist_key(name or "")[:MAX_NAME]
        alias = await self.services.cache.get(CACHE_NAMESPACE, f"alias:{key}")  # a spelling Last.fm corrected
        async with self.services.session() as session:
            catalog = CatalogRepository(session)
            artist = await catalog.artist_by_key(key)
            if artist is None and alias is not None:
                artist = (await catalog.artists_by_ids([int(alias)])).get(int(alias))
            repo = SimilarGraphRepository(session)
            state = await repo.fetch_state("artist", artist.id) if artist is not None else None
            stored = await repo.artist_neighbours(artist.id, limit) if artist is not None else []
        fresh = state is not None and state.fetched_at >= self.stale_before
        if artist is not None and fresh:
            return self._answer(artist.id, artist.name, stored, state.status if state else "ok")
        if artist is None and await self.services.cache.get(CACHE_NAMESPACE, f"miss:{key}") is not None:
            raise NotFound(self._unknown(name))
        client = self.client
        if client is None:
            if stored and artist is not None:
                return SimilarAnswer(artist.id, artist.name, stored)
            raise NotFound(self._unknown(name))
        try:
            answer = await client.artist_similar(artist.name if artist is not None else name.strip())
        except NotFound:
            log.info("lastfm does not know the artist %r", name[:100])
            if artist is not None:  # one of ours: say what the stored miss will say next time
                await self._store_artist(artist.id, None, "not_found")
                raise NotFound(self._not_on_lastfm(artist.name)) from None
            await self.services.cache.set(CACHE_NAMESPACE, f"miss:{key}", 1, ttl_s=NAME_MISS_TTL_S)
            raise NotFound(self._unknown(name)) from None
        except SourceUnavailable:
            if stored and artist is not None:  # stale beats nothing while Last.fm is down
                return SimilarAnswer(artist.id, artist.name, stored)
            raise
        seed_name = clean_name(answer.artist, MAX_NAME) or clean_name(name, MAX_NAME) or key
        async with self._store_lock, self.services.session() as session:
            catalog = CatalogRepository(session)
            if artist is None:
                seed_key = artist_key(seed_name)[:MAX_NAME] or key
                ids = await catalog.ensure_artists([{"name_key": seed_key, "name": seed_name}])
                seed_id = ids[seed_key]
            else:
                seed_id = artist.id
            edges = await resolve_artists(session, answer.artists)
            repo = SimilarGraphRepository(session)
            await repo.replace_artist_edges(seed_id, edges, "ok" if edges else "empty")
            seed = (await catalog.artists_by_ids([seed_id]))[seed_id]
            neighbours = await repo.artist_neighbours(seed_id, limit)
        if artist is None and seed.name_key != key:  # Last.fm corrected the spelling: remember where it led
            await self.services.cache.set(CACHE_NAMESPACE, f"alias:{key}", seed_id, ttl_s=self.refresh_days * DAY_S)
        return self._answer(seed_id, seed.name, neighbours, "ok" if edges else "empty")

    @staticmethod
    def _unknown(name: str) -> str:
        return f"I don't know an artist called “{name.strip()[:100]}”, and neither does Last.fm."

    @staticmethod
    def _not_on_lastfm(seed: str) -> str:
        return f"Last.fm doesn't know {seed}, so I can't find similar artists yet."

    @classmethod
    def _answer(cls, seed_id: int, seed: str, neighbours: list[tuple[Artist, float]], status: str) -> SimilarAnswer:
        if status == "not_found":
            raise NotFound(cls._not_on_lastfm(seed))
        if not neighbours:
            raise NotFound(f"Last.fm knows {seed} but lists no similar artists for them.")
        return SimilarAnswer(seed_id, seed, neighbours)
