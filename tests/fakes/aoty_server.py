"""A local albumoftheyear.org: serves given HTML pages, robots.txt, Cloudflare challenges and 429s.

Usage::

    async with AotyFake() as fake:
        fake.pages["/album/1-x.php"] = html              # exact path -> HTML
        fake.searches["kanye"] = search_html             # /search/albums/?q=kanye (case-insensitive)
        fake.robots_txt = "User-agent: *\\nDisallow: /user/\\n"
        fake.challenge = "403"                           # or "header" (cf-mitigated), or None
        fake.fail_next("429", retry_after=0.2)
        settings = Settings(AOTY_BASE_URL=fake.base_url, AOTY_MIN_INTERVAL_S=0.05)

`fake.log` records (start, end, path) per request, so tests can check spacing and concurrency.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from tests.fakes.local_server import LocalServer

CHALLENGE_HTML = """<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="refresh" content="390"></head><body><div class="main-wrapper" role="main">
<div class="main-content"><noscript><div class="h2"><span id="challenge-error-text">Enable JavaScript
and cookies to continue</span></div></noscript></div></div>
<script>(function(){window._cf_chl_opt={cvId: '3',cType: 'managed'};})();</script>
<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1"></script></body></html>"""


#: A findable test album: the project's multi-disc fixture page and a search page that lists it.
TEST_ALBUM_PATH = "/album/1001-test-band-double-feature.php"
TEST_ALBUM_SEARCH_HTML = """<html><body><h1 class="headline">Search Results</h1>
<div class="albumBlock" data-type="lp">
  <div class="image"><a href="/album/1001-test-band-double-feature.php"><img src="a.jpg" alt=""/></a></div>
  <a href="/artist/1-test-band/"><div class="artistTitle">Test Band</div></a>
  <a href="/album/1001-test-band-double-feature.php"><div class="albumTitle">Double Feature</div></a>
  <div class="type">2019 • LP</div>
</div></body></html>"""
_FIXTURES = Path(__file__).parents[1] / "sources" / "fixtures" / "aoty"


@dataclass
class Failure:
    kind: str  # "429" | "http" | "slow" | "challenge"
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    path: str | None = None


class AotyFake(LocalServer):
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.pages: dict[str, str] = {}
        self.searches: dict[str, str] = {}
        self.robots_txt: str | None = "User-agent: *\nDisallow: /user/\nDisallow: /ajax/\n"
        self.robots_status = 200
        self.challenge: str | None = None  # "403" | "header"
        self.failures: deque[Failure] = deque()
        self.log: list[tuple[float, float, str]] = []
        self.user_agents: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._runner: web.AppRunner | None = None

    def add_test_album(self) -> None:
        """Serve Test Band's "Double Feature" (`TEST_ALBUM_PATH`), findable by searching its title."""
        self.pages[TEST_ALBUM_PATH] = (_FIXTURES / "album_multidisc.html").read_text()
        self.searches["double feature"] = TEST_ALBUM_SEARCH_HTML

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        return app


    def fail_next(self, kind: str, *, count: int = 1, status: int = 500, retry_after: float | None = None,
                  delay: float = 0.0, path: str | None = None) -> None:
        for _ in range(count):
            self.failures.append(Failure(kind, status, retry_after, delay, path))

    def paths(self) -> list[str]:
        return [p for _, _, p in self.log]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        start = time.monotonic()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.user_agents.append(request.headers.get("User-Agent", ""))
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1
            self.log.append((start, time.monotonic(), request.path_qs))

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        for f in list(self.failures):
            if f.path is None or f.path == path:
                self.failures.remove(f)
                if f.kind == "slow":
                    await asyncio.sleep(f.delay)
                    break
                if f.kind == "429":
                    headers = {"Retry-After": f"{f.retry_after:g}"} if f.retry_after is not None else {}
                    return web.Response(status=429, text="Too Many Requests", headers=headers)
                if f.kind == "http":
                    return web.Response(status=f.status, text="<html><body>Bad gateway</body></html>",
                                        content_type="text/html")
                if f.kind == "challenge":
                    return self._challenge("403")
        if path == "/robots.txt":
            if self.robots_txt is None:
                return web.Response(status=404, text="Not Found")
            return web.Response(status=self.robots_status, text=self.robots_txt, content_type="text/plain")
        if self.challenge is not None:
            return self._challenge(self.challenge)
        if path == "/search/albums/":
            html = self.searches.get(request.query.get("q", "").lower())
            if html is None:
                return web.Response(text='<html><body><h1 class="headline">Search Results</h1></body></html>',
                                    content_type="text/html")
            return web.Response(text=html, content_type="text/html")
        html = self.pages.get(path)
        if html is None:
            return web.Response(status=404, text="<html><body>Page not found</body></html>", content_type="text/html")
        return web.Response(text=html, content_type="text/html")

    @staticmethod
    def _challenge(mode: str) -> web.Response:
        if mode == "header":  # managed challenge flagged by header (status may even be 200)
            return web.Response(status=200, text=CHALLENGE_HTML, content_type="text/html",
                                headers={"cf-mitigated": "challenge", "Server": "cloudflare"})
        # plain 403 interstitial, no cf-mitigated header: the status alone must be enough
        return web.Response(status=403, text=CHALLENGE_HTML, content_type="text/html",
                            headers={"Server": "cloudflare"})
