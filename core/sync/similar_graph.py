"""Last.fm's similar-artist (and similar-track) graph: filled for what members play, served to /similar.

Why it is built like this:
- **Budget.** One request per artist (`artist.getSimilar`, by name with autocorrect, limit 100): an
  mbid-first lookup would cost a second request whenever Last.fm's MusicBrainz mapping misses, and
  our names come from Last.fm in the first place. Requests go through the app-wide Last.fm limiter
  (`services.lastfm`), so filling never pushes the process past `LASTFM_REQUESTS_PER_SECOND`; a few
  workers keep that limiter saturated while one of them waits on the network.
- **Order.** Members' most-played artists first (`SimilarGraphRepository.artists_due`), so a run cut
  short by a Last.fm outage has already covered what the recommender needs most.
- **Misses remembered.** Error 6 and an empty list are stored as a fetch row without edges and are
  not asked again before `refresh_days`, like a hit. A name typed into /similar that Last.fm does not
  know is remembered in the cache for a day (there is no catalogue row to hang it on).
- **Storms.** The client already retries 29/5xx with backoff honouring Retry-After; when it gives up
  the run stops (nothing more is asked) and the whole filler rests for `pause_s` (or the server's
  Retry-After), so the next scheduled run does not hammer a struggling service.
- **Nothing half-written.** One artist = one transaction: its new neighbours enter the catalogue, its
  old edges are deleted and the new ones inserted, and its fetch row is updated, or none of it.
- **Matching.** A neighbour is matched by MBID first, then by `core.matching.artist_key`; one we have
  never seen enters the catalogue (name, mbid, Last.fm URL). Its tags arrive later from
  `LastfmTagEnrichment`, which tags every untagged catalogue artist.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from core.db.models import Artist
from core.db.repositories import CatalogRepository
from core.db.repositories.similar import DueArtist, DueTrack, FetchStatus, SimilarGraphRepository
from core.db.types import utcnow
from core.errors import NotFound, SourceUnavailable
from core.matching import artist_key, track_key
from core.services import Services
from core.sources.lastfm import LastfmClient
from core.sources.lastfm_models import SimilarArtist, SimilarTrack
from core.sync.ingest import MAX_NAME, MAX_TITLE

log = logging.getLogger(__name__)

#: Cache namespace: names typed into /similar that Last.fm does not know, and the filler's pause.
CACHE_NAMESPACE = "lastfm_similar"
DAY_S = 86_400.0
#: How long a typed name Last.fm does not know is believed unknown.
NAME_MISS_TTL_S = DAY_S
#: After Last.fm gave up on us (a 29/5xx storm outlasting the client's retries), rest this long.
PAUSE_S = 10 * 60.0


@dataclass
class GraphFillReport:
    """What one run did (for logs, the CLI and tests)."""

    kind: str = "artist"
    considered: int = 0
    ok: int = 0
    empty: int = 0
    not_found: int = 0
    failed: int = 0  # unexpected errors (logged); asked again next run
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
            rows[key] = {"name_key": key, "name": s.name[:MAX_NAME], "mbid": (s.mbid or None) and s.mbid[:36],
                         "lastfm_url": (s.url or None) and s.url[:500]}
    return rows


async def resolve_artists(session: Any, similar: list[SimilarArtist]) -> dict[int, float]:
    """Neighbours -> {artist id: best match}: by MBID, then by normalised name (creating new artists)."""
    usable = [s for s in similar if s.match > 0.0]
    by_mbid = await SimilarGraphRepository(session).artist_ids_by_mbid(s.mbid for s in usable if s.mbid)
    by_key: dict[str, int] = {}
    rest = [s for s in usable if not (s.mbid and s.mbid in by_mbid)]
    if rest:  # sorted keys: concurrent writers insert in the same order (no lock-order deadlocks)
        rows = _artist_rows(rest)
        by_key = await CatalogRepository(session).ensure_artists(rows[k] for k in sorted(rows))
    edges: dict[int, float] = {}
    for s in usable:
        artist_id = by_mbid.get(s.mbid) if s.mbid else None
        if artist_id is None:
            artist_id = by_key.get(artist_key(s.name)[:MAX_NAME])
        if artist_id is not None:
            edges[artist_id] = max(edges.get(artist_id, 0.0), min(1.0, s.match))
    return edges


class SimilarGraph:
    """Fills the stored graph and answers /similar from it (one per process: `SimilarGraph.of`)."""

    def __init__(self, services: Services, client: LastfmClient | None = None, *, refresh_days: int = 30,
                 concurrency: int = 4, pause_s: float = PAUSE_S) -> None:
        self.services = services
        self._client = client
        self.refresh_days = refresh_days
        self.concurrency = concurrency  # requests in flight; the shared limiter sets the pace
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
            usable = [s for s in similar or () if s.match > 0.0]
            if usable:
                catalog = CatalogRepository(session)
                artists = _artist_rows([SimilarArtist(s.artist, s.artist_mbid, s.match, None) for s in usable])
                artist_ids = await catalog.ensure_artists(artists[k] for k in sorted(artists))
                keyed = [(artist_ids.get(artist_key(s.artist)[:MAX_NAME]), track_key(s.artist, s.title)[:MAX_TITLE], s)
                         for s in usable]
                rows = {(aid, key): {"artist_id": aid, "title_key": key, "title": s.title[:MAX_TITLE],
                                     "mbid": s.mbid and s.mbid[:36], "lastfm_url": s.url and s.url[:500]}
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
        log.info("lastfm similar %ss: %d asked (%d ok, %d empty, %d unknown, %d failed), %d edges in %.1fs "
                 "(%.2f requests/s)%s", kind, report.considered, report.ok, report.empty, report.not_found,
                 report.failed, report.edges, report.seconds, report.requests_per_s,
                 f"; stopped: {report.reason}" if report.stopped else "")
        return report

    async def _fill_locked(self, client: LastfmClient, kind: str, limit: int, report: GraphFillReport) -> None:
        tried: set[int] = set()
        queue: asyncio.Queue[DueArtist | DueTrack] = asyncio.Queue()
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
                await self._one(client, item, report)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def _one(self, client: LastfmClient, item: DueArtist | DueTrack, report: GraphFillReport) -> None:
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
            if not report.stopped:
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
        async with self.services.session() as session:
            artist = await CatalogRepository(session).artist_by_key(key)
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
            if artist is not None:
                await self._store_artist(artist.id, None, "not_found")
            else:
                await self.services.cache.set(CACHE_NAMESPACE, f"miss:{key}", 1, ttl_s=NAME_MISS_TTL_S)
            log.info("lastfm does not know the artist %r", name[:100])
            raise NotFound(self._unknown(name)) from None
        except SourceUnavailable:
            if stored and artist is not None:  # stale beats nothing while Last.fm is down
                return SimilarAnswer(artist.id, artist.name, stored)
            raise
        seed_name = (answer.artist or name).strip()[:MAX_NAME]
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
        return self._answer(seed_id, seed.name, neighbours, "ok" if edges else "empty")

    @staticmethod
    def _unknown(name: str) -> str:
        return f"I don't know an artist called “{name.strip()[:100]}”, and neither does Last.fm."

    @staticmethod
    def _answer(seed_id: int, seed: str, neighbours: list[tuple[Artist, float]], status: str) -> SimilarAnswer:
        if status == "not_found":
            raise NotFound(f"Last.fm doesn't know {seed}, so I can't find similar artists yet.")
        if not neighbours:
            raise NotFound(f"Last.fm knows {seed} but lists no similar artists for them.")
        return SimilarAnswer(seed_id, seed, neighbours)
