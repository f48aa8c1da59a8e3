"""Catalog enrichment from outside sources: AOTY album facts, Last.fm artist tags, global listener
counts and album covers.

Both feed the recommender rather than any one command, so both are built to be cheap to call often:
- `AotyFactsService.album_facts(album_id)` answers from the cache, then the database, and only
  then crawls albumoftheyear.org (one request a second at most, process-wide). A challenge or a
  rate limit never turns into an empty album: callers get the last facts we read, or None.
- `LastfmTagEnrichment.enrich_artist_tags(limit)` gives Last.fm's top tags to artists that have
  none yet, most-played first, within the shared Last.fm rate limit. These tags are the content
  (TF-IDF) model's vocabulary, which is what lets it recommend artists nobody here plays yet.

Tag weights are on Last.fm's `count` scale (0..100) for every source, so that the content model's
per-source factors compare like with like: an AOTY primary genre counts as a full-strength tag.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from core.db.models import AotyAlbum as AotyAlbumRow
from core.db.repositories import AotyRepository, CatalogRepository
from core.db.repositories.aoty import facts_from_row
from core.db.repositories.public_facts import PublicFactsRepository
from core.db.types import utcnow
from core.domain import AotyFacts
from core.errors import NotFound, SourceUnavailable
from core.services import Services
from core.sources.aoty import AotyClient
from core.sources.aoty_parse import AotyAlbum, AotyParseError
from core.sources.lastfm import LastfmClient
from core.sources.lastfm_models import AlbumInfo, ArtistInfo, Tag

log = logging.getLogger(__name__)

#: Cache namespace of AOTY answers (facts, remembered misses, the crawler's pause).
AOTY_NAMESPACE = "aoty"
#: Cache namespace remembering artists Last.fm had no tags for.
LASTFM_TAG_MISS_NAMESPACE = "lastfm_tags_miss"
DAY_S = 86_400.0
#: How long "AOTY has no such album" is believed: albums appear on AOTY, but rarely within a day.
AOTY_MISS_TTL_S = DAY_S
#: After a challenge or a persistent 429, the whole crawler rests this long (or the Retry-After).
AOTY_PAUSE_S = 15 * 60.0

#: item_tags weights (Last.fm count scale, see the module docstring).
AOTY_PRIMARY_GENRE_WEIGHT = 100.0
AOTY_SECONDARY_GENRE_WEIGHT = 60.0
AOTY_TAG_WEIGHT = 50.0


def _https(url: str | None) -> str | None:
    """A cover URL we may show: absolute https, else nothing (never an empty or relative URL)."""
    return url.strip() if isinstance(url, str) and url.strip().startswith("https://") else None


def _facts_to_json(facts: AotyFacts) -> dict[str, Any]:
    data = asdict(facts)
    data["genres"] = list(facts.genres)
    return data


def _facts_from_json(data: dict[str, Any]) -> AotyFacts:
    return AotyFacts(**{**data, "genres": tuple(data.get("genres") or ())})


def _tag_key(name: str) -> str:
    """How `CatalogRepository.ensure_tags` spells a tag name in `tags.name`."""
    return name.strip().lower()[:200]


async def _write_album_tags(catalog: CatalogRepository, album_id: int, primary: Iterable[str],
                            secondary: Iterable[str], tags: Iterable[str]) -> None:
    """Replace the album's AOTY tags: genres under 'aoty_genre', user tags under 'aoty_tag'."""
    primary, secondary, tags = list(primary), list(secondary), list(tags)
    ids = await catalog.ensure_tags([*primary, *secondary, *tags])
    genres: dict[int, float] = {}
    for names, weight in ((secondary, AOTY_SECONDARY_GENRE_WEIGHT), (primary, AOTY_PRIMARY_GENRE_WEIGHT)):
        for name in names:
            if (tag_id := ids.get(_tag_key(name))) is not None:
                genres[tag_id] = weight  # primary last: a genre listed twice keeps the higher weight
    user_tags = {ids[_tag_key(n)]: AOTY_TAG_WEIGHT for n in tags if _tag_key(n) in ids}
    await catalog.set_item_tags("album", "aoty_genre", {album_id: genres})
    await catalog.set_item_tags("album", "aoty_tag", {album_id: user_tags})


# ------------------------------------------------------------------------------------------ AOTY


class AotyFactsService:
    """AOTY facts for our albums: cache -> database -> albumoftheyear.org.

    Share one instance: it single-flights concurrent requests for the same album so a page of
    recommendations never fetches a page twice.
    """

    def __init__(self, services: Services, client: AotyClient | None = None) -> None:
        self.services = services
        self._client = client
        self._locks: dict[int, list[Any]] = {}  # album id -> [lock, users]: single flight

    @property
    def client(self) -> AotyClient | None:
        return self._client or self.services.aoty

    @property
    def fresh_ttl_s(self) -> float:
        return self.services.settings.aoty_cache_days * DAY_S

    async def _cache_facts(self, album_id: int, row: AotyAlbumRow | None, facts: AotyFacts,
                           ttl_s: float | None = None) -> None:
        if ttl_s is None:  # until the stored row goes stale, so cache and database agree
            age = (utcnow() - row.fetched_at).total_seconds() if row is not None else 0.0
            ttl_s = self.fresh_ttl_s - age
        if ttl_s > 0:
            await self.services.cache.set(AOTY_NAMESPACE, f"album:{album_id}", {"facts": _facts_to_json(facts)},
                                          ttl_s=ttl_s)

    async def _remember_miss(self, album_id: int) -> None:
        await self.services.cache.set(AOTY_NAMESPACE, f"album:{album_id}", {"miss": True}, ttl_s=AOTY_MISS_TTL_S)

    async def paused(self) -> bool:
        """Whether AOTY recently challenged or rate-limited us (shared through the cache)."""
        until = await self.services.cache.get(AOTY_NAMESPACE, "paused_until")
        return until is not None and float(until) > time.time()

    async def _pause(self, exc: SourceUnavailable) -> None:
        seconds = max(AOTY_PAUSE_S, exc.retry_after or 0.0)
        await self.services.cache.set(AOTY_NAMESPACE, "paused_until", time.time() + seconds, ttl_s=seconds)

    async def album_facts(self, album_id: int) -> AotyFacts | None:
        """AOTY facts for one of our albums, or None (unknown to AOTY, or unreachable and never read).

        Never raises for AOTY's problems: a challenge, a 403 or a persistent 429 answers with the
        last facts stored (however old) or None, and pauses the crawler for everyone.
        """
        cached = await self.services.cache.get(AOTY_NAMESPACE, f"album:{album_id}")
        if cached is not None:
            return None if cached.get("miss") else _facts_from_json(cached["facts"])
        entry = self._locks.setdefault(album_id, [asyncio.Lock(), 0])
        entry[1] += 1  # callers holding or waiting for this album's lock
        try:
            async with entry[0]:
                return await self._album_facts_locked(album_id)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[album_id]

    async def _album_facts_locked(self, album_id: int) -> AotyFacts | None:
        cached = await self.services.cache.get(AOTY_NAMESPACE, f"album:{album_id}")
        if cached is not None:  # a concurrent caller just did the work
            return None if cached.get("miss") else _facts_from_json(cached["facts"])
        async with self.services.session() as session:
            repo = AotyRepository(session)
            identity = await repo.album_identity(album_id)
            if identity is None:
                return None  # not one of our albums: nothing to remember
            row = await repo.by_album_id(album_id)
        artist, title, linked_url = identity
        if row is not None and repo.is_fresh(row, self.services.settings.aoty_cache_days):
            facts = facts_from_row(row)
            await self._cache_facts(album_id, row, facts)
            return facts
        stale = facts_from_row(row) if row is not None else None
        client = self.client
        if client is None or await self.paused():
            return stale
        try:
            url = row.url if row is not None else linked_url
            if url is None:
                ref = await client.resolve(artist, title)
                if ref is None:
                    log.info("aoty: no page for %r by %r", title, artist, extra={"album_id": album_id})
                    await self._remember_miss(album_id)
                    return None
                url = ref.url
                reused = await self._reuse_fresh(album_id, url)
                if reused is not None:
                    return reused
            album = await client.fetch_album(url)
        except (NotFound, AotyParseError) as exc:
            # the page is gone or unreadable: a per-album problem, not a reason to stop crawling
            log.warning("aoty: album page unusable (%s)", exc, extra={"album_id": album_id})
            if stale is not None:
                await self._cache_facts(album_id, row, stale, ttl_s=AOTY_MISS_TTL_S)
                return stale
            await self._remember_miss(album_id)
            return None
        except SourceUnavailable as exc:
            log.warning("aoty unavailable (%s); serving %s", exc.detail or exc,
                        "stored facts" if stale else "nothing", extra={"album_id": album_id})
            await self._pause(exc)
            return stale
        return await self._store(album_id, album)

    async def _reuse_fresh(self, album_id: int, url: str) -> AotyFacts | None:
        """Another of our albums already resolved to this page and read it recently: link, reuse."""
        async with self.services.session() as session:
            repo = AotyRepository(session)
            row = await repo.by_url(url)
            if row is None or not repo.is_fresh(row, self.services.settings.aoty_cache_days):
                return None
            await repo.link(album_id, url)
            await _write_album_tags(CatalogRepository(session), album_id, row.genres or (), (), row.tags or ())
        facts = facts_from_row(row)
        await self._cache_facts(album_id, row, facts)
        return facts

    async def _store(self, album_id: int, album: AotyAlbum) -> AotyFacts:
        """Row, link and album tags in one transaction, then the cache."""
        async with self.services.session() as session:
            repo = AotyRepository(session)
            row = await repo.upsert(album, album_id=album_id)
            await repo.link(album_id, album.url)
            await _write_album_tags(CatalogRepository(session), album_id, album.genres, album.secondary_genres,
                                    album.tags)
            await PublicFactsRepository(session).set_cover_if_missing(album_id, _https(album.image_url))
        facts = album.facts()
        await self._cache_facts(album_id, row, facts)
        return facts

    async def facts_for(self, album_ids: Iterable[int]) -> dict[int, AotyFacts]:
        """Facts for several albums (sequential: the crawler is serial anyway); misses are left out."""
        out: dict[int, AotyFacts] = {}
        for album_id in dict.fromkeys(album_ids):
            facts = await self.album_facts(album_id)
            if facts is not None:
                out[album_id] = facts
        return out


# --------------------------------------------------------------------------------------- Last.fm


@dataclass(frozen=True)
class TagEnrichmentReport:
    considered: int = 0  # artists asked about
    tagged: int = 0  # artists that received tags
    tags_stored: int = 0  # item_tags rows written
    empty: int = 0  # Last.fm knows the artist but has no usable tags
    not_found: int = 0
    failed: int = 0  # unexpected errors (logged)
    stopped: bool = False  # Last.fm became unavailable: the rest waits for the next run
    reason: str | None = None


class LastfmTagEnrichment:
    """Fills 'lastfm' artist tags for artists that have none (one instance per process)."""

    def __init__(self, services: Services, client: LastfmClient | None = None, *, max_tags: int = 25,
                 concurrency: int = 4, miss_ttl_days: int = 30) -> None:
        self.services = services
        self._client = client
        self.max_tags = max_tags
        self.concurrency = concurrency  # requests in flight; the shared limiter sets the pace (5/s)
        self.miss_ttl_s = miss_ttl_days * DAY_S

    async def _tags(self, client: LastfmClient, name: str, mbid: str | None) -> list[Tag]:
        if mbid:
            try:
                return await client.artist_top_tags(name, mbid=mbid)
            except NotFound:
                pass  # Last.fm's MusicBrainz mapping is patchy; the name (autocorrected) usually works
        return await client.artist_top_tags(name)

    async def _store(self, results: dict[int, list[Tag]]) -> int:
        async with self.services.session() as session:
            catalog = CatalogRepository(session)
            ids = await catalog.ensure_tags(t.name for tags in results.values() for t in tags)
            weights: dict[int, dict[int, float]] = {}
            for artist_id, tags in results.items():
                bucket = weights.setdefault(artist_id, {})
                for t in tags:
                    tag_id = ids.get(_tag_key(t.name))
                    if tag_id is not None:
                        bucket[tag_id] = max(bucket.get(tag_id, 0.0), float(t.count))
            return await catalog.set_item_tags("artist", "lastfm", weights)

    async def enrich_artist_tags(self, limit: int = 200) -> TagEnrichmentReport:
        """Ask Last.fm for the top tags of up to `limit` untagged artists, most-played first.

        Artists Last.fm does not know, or knows without tags, are remembered (cache, `miss_ttl_days`)
        so each run spends its budget on new artists. Stops at the first SourceUnavailable, keeping
        what was stored so far. Returns counts for the caller's log / CLI.
        """
        client = self._client or self.services.lastfm
        if client is None:
            return TagEnrichmentReport(stopped=True, reason="lastfm_not_configured")
        cache = self.services.cache
        considered = tagged = stored = empty = not_found = failed = 0
        offset = 0  # untagged artists passed over so far (they stay in the "missing" query)
        while considered < limit:
            async with self.services.session() as session:
                page = await CatalogRepository(session).artists_missing_tags(
                    "lastfm", limit=max(limit - considered, self.concurrency) * 2, offset=offset)
            if not page:
                break
            todo = []
            for artist in page:
                if await cache.get(LASTFM_TAG_MISS_NAMESPACE, f"artist:{artist[0]}") is None:
                    todo.append(artist)
                else:
                    offset += 1
            todo = todo[:limit - considered]
            for start in range(0, len(todo), self.concurrency):
                chunk = todo[start:start + self.concurrency]
                outcomes = await asyncio.gather(*(self._tags(client, name, mbid) for _, name, mbid in chunk),
                                                return_exceptions=True)
                considered += len(chunk)
                found: dict[int, list[Tag]] = {}
                unavailable: SourceUnavailable | None = None
                for (artist_id, name, _), outcome in zip(chunk, outcomes, strict=True):
                    if isinstance(outcome, list):
                        usable = sorted((t for t in outcome if t.count > 0), key=lambda t: -t.count)[:self.max_tags]
                        if usable:
                            found[artist_id] = usable
                            continue
                        empty += 1
                    elif isinstance(outcome, NotFound):
                        not_found += 1
                    elif isinstance(outcome, SourceUnavailable):
                        unavailable = unavailable or outcome
                        continue  # not a miss: ask again next run
                    elif isinstance(outcome, Exception):
                        failed += 1  # a bug, not a fact about the artist: skip it now, retry next run
                        log.error("lastfm tags for %r failed", name, exc_info=outcome, extra={"artist_id": artist_id})
                        offset += 1
                        continue
                    else:
                        raise outcome  # cancellation and friends
                    offset += 1
                    await cache.set(LASTFM_TAG_MISS_NAMESPACE, f"artist:{artist_id}", 1, ttl_s=self.miss_ttl_s)
                if found:
                    stored += await self._store(found)
                    tagged += len(found)
                if unavailable is not None:
                    log.warning("lastfm unavailable during tag enrichment (%s); stopping",
                                unavailable.detail or unavailable)
                    return TagEnrichmentReport(considered, tagged, stored, empty, not_found, failed, True,
                                               "lastfm_unavailable")
        log.info("lastfm tags: %d artists asked, %d tagged (%d tags)", considered, tagged, stored)
        return TagEnrichmentReport(considered, tagged, stored, empty, not_found, failed)


# ------------------------------------------------------------- Last.fm listeners and cover art


@dataclass(frozen=True)
class FactsReport:
    considered: int = 0
    found: int = 0  # artists with a listener count / albums with a cover
    missing: int = 0  # Last.fm answered but had no number / no cover, or does not know the item
    failed: int = 0  # unexpected errors (logged); asked again next run
    stopped: bool = False  # Last.fm became unavailable: the rest waits for the next run
    reason: str | None = None


class LastfmPublicFacts:
    """Global listener counts (artist.getInfo) and album covers (album.getInfo), refreshed on a
    schedule like the tags, within the shared Last.fm rate limit (one instance per process).

    Every popularity claim shown to a listener rests on these counts ("a deeper cut: 48,000
    listeners on Last.fm"), never on how many of our own few members play an artist. Counts are
    re-read after `listeners_ttl_days`; a cover found is kept, a miss is retried after
    `cover_retry_days`.
    """

    def __init__(self, services: Services, client: LastfmClient | None = None, *, concurrency: int = 4,
                 listeners_ttl_days: int = 30, cover_retry_days: int = 30) -> None:
        self.services = services
        self._client = client
        self.concurrency = concurrency
        self.listeners_ttl_s = listeners_ttl_days * DAY_S
        self.cover_retry_s = cover_retry_days * DAY_S

    async def _ask(self, rows: list[Any], fetch: Callable[[Any], Awaitable[Any]], what: str
                   ) -> tuple[dict[int, Any], int, int, SourceUnavailable | None]:
        """Call `fetch(row)` for each row, `concurrency` at a time; (found by id, missing, failed, outage)."""
        found: dict[int, Any] = {}
        missing = failed = 0
        for start in range(0, len(rows), self.concurrency):
            chunk = rows[start:start + self.concurrency]
            outcomes = await asyncio.gather(*(fetch(row) for row in chunk), return_exceptions=True)
            for row, outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, NotFound):
                    found[row[0]] = None
                    missing += 1
                elif isinstance(outcome, SourceUnavailable):
                    return found, missing, failed, outcome
                elif isinstance(outcome, Exception):
                    failed += 1
                    log.error("lastfm %s for %r failed", what, row[1], exc_info=outcome, extra={"item_id": row[0]})
                elif isinstance(outcome, BaseException):
                    raise outcome  # cancellation and friends
                else:
                    found[row[0]] = outcome
        return found, missing, failed, None

    async def _refresh(self, what: str, load: Callable[[PublicFactsRepository], Awaitable[list[Any]]],
                       fetch: Callable[[LastfmClient, Any], Awaitable[Any]], value: Callable[[Any], Any],
                       save: Callable[[PublicFactsRepository, dict[int, Any]], Awaitable[None]]) -> FactsReport:
        """One refresh run: load due rows, ask Last.fm, store what it said (None = checked, nothing)."""
        client = self._client or self.services.lastfm
        if client is None:
            return FactsReport(stopped=True, reason="lastfm_not_configured")
        async with self.services.session() as session:
            rows = await load(PublicFactsRepository(session))
        found, _, failed, outage = await self._ask(rows, lambda row: fetch(client, row), what)
        values = {item_id: (value(info) if info is not None else None) for item_id, info in found.items()}
        async with self.services.session() as session:
            await save(PublicFactsRepository(session), values)
        got = sum(1 for v in values.values() if v is not None)
        if outage is not None:
            log.warning("lastfm unavailable during %s (%s); stopping", what, outage.detail or outage)
        log.info("lastfm %s: %d asked, %d found", what, len(rows), got)
        return FactsReport(len(rows), got, len(values) - got, failed, outage is not None,
                           "lastfm_unavailable" if outage is not None else None)

    async def refresh_listeners(self, limit: int = 500) -> FactsReport:
        """Read global listeners for up to `limit` artists whose count is unknown or stale."""
        stale = datetime.fromtimestamp(time.time() - self.listeners_ttl_s, UTC)

        async def fetch(client: LastfmClient, row: tuple[int, str, str | None]) -> ArtistInfo:
            _, name, mbid = row
            return await _mbid_then_name(lambda m: client.artist_info(name, mbid=m), mbid)

        return await self._refresh("artist.getInfo",
                                   lambda repo: repo.artists_to_count(stale_before=stale, limit=limit), fetch,
                                   lambda info: info.listeners, lambda repo, v: repo.save_listeners(v))

    async def enrich_album_covers(self, limit: int = 300) -> FactsReport:
        """Find covers for up to `limit` albums that have none, most-listened first."""
        retry = datetime.fromtimestamp(time.time() - self.cover_retry_s, UTC)

        async def fetch(client: LastfmClient, row: tuple[int, str, str, str | None]) -> AlbumInfo:
            _, artist, title, mbid = row
            return await _mbid_then_name(lambda m: client.album_info(artist, title, mbid=m), mbid)

        return await self._refresh("album.getInfo",
                                   lambda repo: repo.albums_without_cover(stale_before=retry, limit=limit), fetch,
                                   lambda info: _https(info.image_url), lambda repo, v: repo.save_covers(v))


async def _mbid_then_name(call: Callable[[str | None], Awaitable[Any]], mbid: str | None) -> Any:
    """Ask by MusicBrainz id first, then by name: Last.fm's MusicBrainz mapping is patchy."""
    if mbid:
        try:
            return await call(mbid)
        except NotFound:
            pass
    return await call(None)
