"""albumoftheyear.org client: a polite crawler of public pages.

Politeness rules (AOTY has no API and fronts the site with Cloudflare):
- an identifying User-Agent;
- robots.txt is fetched (through the same gate), cached for `robots_ttl_s`, and obeyed with
  `urllib.robotparser`; a `Crawl-delay` lengthens the spacing. A 4xx robots.txt means "no rules";
  a 5xx or unreachable one means "stay away for now" (RFC 9309), i.e. SourceUnavailable;
- ONE request at a time with >= `settings.aoty_min_interval_s` between requests, process-wide
  (the `SerialGate` is created once and shared);
- 429 is retried honouring Retry-After, and the pause applies to the whole crawler (everyone's next
  request waits), since AOTY rate-limits our IP, not a user;
- a Cloudflare challenge (403 "Just a moment...", or `cf-mitigated: challenge` on any status), any
  other 403, or a 429 that persists -> SourceUnavailable("aoty"). Never an empty album.

Caching album pages for days is the cache layer's job: results carry `fetched_at`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import quote_plus, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import aiohttp

from core.errors import NotFound, SourceUnavailable
from core.matching import ALBUM_THRESHOLD, album_match_score, strip_decorations
from core.sources.aoty_parse import (
    AotyAlbum,
    AotyAlbumRef,
    is_challenge_page,
    parse_album,
    parse_album_list,
    parse_search_albums,
)
from core.sources.http import Retryable, RetryPolicy, SerialGate, retry_after_from, user_agent, with_retries

if TYPE_CHECKING:
    from core.config import Settings

log = logging.getLogger(__name__)

SOURCE = "aoty"
ROBOTS_AGENT = "Sonance"


class RobotsDisallowed(SourceUnavailable):
    """robots.txt forbids the URL: we do not fetch it, whatever the caller wants."""

    def __init__(self, url: str) -> None:
        super().__init__(SOURCE, detail=f"robots.txt disallows {url}")
        self.url = url


class AotyChallenged(SourceUnavailable):
    """Cloudflare answered with a challenge (or a plain 403) instead of the page."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(SOURCE, detail=f"challenge/refusal (HTTP {status}) for {url}")
        self.url = url
        self.status = status


class AotyClient:
    def __init__(self, settings: Settings, session: aiohttp.ClientSession, gate: SerialGate, *,
                 retry: RetryPolicy | None = None, timeout_s: float = 15.0,
                 robots_ttl_s: float = 86_400.0) -> None:
        self._base = settings.aoty_base_url.rstrip("/") + "/"
        self._session = session
        self._gate = gate
        self._min_interval = settings.aoty_min_interval_s
        self._retry = retry or RetryPolicy(attempts=3, base_delay_s=2.0, max_delay_s=30.0, max_retry_after_s=120.0)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = {"User-Agent": user_agent(settings), "Accept": "text/html,application/xhtml+xml"}
        self._robots: RobotFileParser | None = None
        self._robots_at = 0.0
        self._robots_ttl = robots_ttl_s
        self._robots_lock = asyncio.Lock()

    def url(self, path_or_url: str) -> str:
        return urljoin(self._base, path_or_url)

    # --------------------------------------------------------------------------- transport

    async def _request(self, url: str, *, robots: bool = False) -> tuple[int, str]:
        """One polite GET (gate + retries). Returns (status, text) for 2xx/4xx-not-403 answers."""

        async def attempt() -> tuple[int, str]:
            async with self._gate:
                try:
                    async with self._session.get(url, headers=self._headers, timeout=self._timeout,
                                                 allow_redirects=True) as resp:
                        text = await resp.text(errors="replace")
                        status, headers = resp.status, resp.headers
                except TimeoutError:
                    raise Retryable(f"timed out: {url}") from None
                except aiohttp.ClientError as exc:
                    raise Retryable(f"{type(exc).__name__}: {url}") from None
            if headers.get("cf-mitigated", "").lower() == "challenge" or status == 403:
                raise AotyChallenged(url, status)
            if status == 429:
                raise Retryable(f"HTTP 429: {url}", retry_after=retry_after_from(headers), rate_limited=True)
            if status >= 500:
                if is_challenge_page(text):
                    raise AotyChallenged(url, status)
                raise Retryable(f"HTTP {status}: {url}", retry_after=retry_after_from(headers))
            if status < 300 and is_challenge_page(text):
                raise AotyChallenged(url, status)
            return status, text

        status, text = await with_retries(attempt, source=SOURCE, policy=self._retry,
                                          on_retry_after=self._gate.pause)
        if status == 404 and not robots:
            raise NotFound(detail=f"aoty: {url}")
        if status >= 400 and not robots:
            raise SourceUnavailable(SOURCE, detail=f"HTTP {status} for {url}")
        return status, text

    async def _robots_parser(self) -> RobotFileParser:
        async with self._robots_lock:
            if self._robots is not None and time.monotonic() - self._robots_at < self._robots_ttl:
                return self._robots
            status, text = await self._request(self.url("/robots.txt"), robots=True)
            parser = RobotFileParser()
            if 400 <= status < 500:
                parser.allow_all = True  # no robots.txt: no rules
            else:
                parser.parse(text.splitlines())
            delay = parser.crawl_delay(ROBOTS_AGENT)
            if delay is not None:
                self._gate.min_interval_s = max(self._min_interval, float(delay))
            self._robots, self._robots_at = parser, time.monotonic()
            return parser

    async def get_page(self, path_or_url: str) -> str:
        """The HTML of an AOTY page, if robots.txt allows it. Raises NotFound / SourceUnavailable."""
        url = self.url(path_or_url)
        if urlsplit(url).netloc != urlsplit(self._base).netloc:
            raise ValueError(f"not an AOTY URL: {url}")
        robots = await self._robots_parser()
        if not robots.can_fetch(ROBOTS_AGENT, url):
            raise RobotsDisallowed(url)
        _, text = await self._request(url)
        return text

    # ------------------------------------------------------------------------------- pages

    async def fetch_album(self, path_or_url: str) -> AotyAlbum:
        """An album page, parsed. Raises AotyParseError (a SourceUnavailable) on an unreadable page."""
        url = self.url(path_or_url)
        return parse_album(await self.get_page(url), url)

    async def search_albums(self, query: str) -> list[AotyAlbumRef]:
        html = await self.get_page(f"/search/albums/?q={quote_plus(query)}")
        return parse_search_albums(html, self._base)

    async def must_hear(self, year: int) -> list[AotyAlbumRef]:
        return parse_album_list(await self.get_page(f"/must-hear/{year}/"), self._base)

    async def resolve(self, artist: str, album: str) -> AotyAlbumRef | None:
        """The AOTY album page for (artist, album), or None when no result matches well enough.

        Searches the album title (decorations such as "(Deluxe Edition)" removed), then, if nothing
        matches, "artist title". Candidates are scored with `core.matching.album_match_score`;
        at most two requests are spent.
        """
        title = strip_decorations(album, strip_live=False)
        for query in (title, f"{artist} {title}"):
            best = self._best_match(artist, album, await self.search_albums(query))
            if best is not None:
                return best
        return None

    @staticmethod
    def _best_match(artist: str, album: str, candidates: list[AotyAlbumRef]) -> AotyAlbumRef | None:
        scored: list[tuple[float, int, AotyAlbumRef]] = []
        for rank, ref in enumerate(candidates):
            if not ref.title or not ref.artist:
                continue
            score = album_match_score(artist, album, ref.artist, ref.title)
            if score >= ALBUM_THRESHOLD:
                scored.append((score, -rank, ref))  # ties go to the site's own ordering
        return max(scored, key=lambda s: (s[0], s[1]))[2] if scored else None
