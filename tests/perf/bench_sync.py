"""`scripts/bench sync`: listens ingested per second from a local fake Last.fm into a database.

The raw figure lifts the rate limit to see what the sync and the database can take. A real sync is
bounded by Last.fm instead: at the default 5 requests/s and 200 scrobbles a page, 1,000 listens/s at
best. `run_limited` measures what a sync reaches through production's own limiter
(`SourceLimiters.from_settings`), on a smaller history since it takes 1 s per 1,000 listens at best.

The fake runs in its own process (`python -m tests.fakes.lastfm_server`) so
that generating pages does not steal the event loop being measured.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.config import Settings
from core.datasets import PROJECT_ROOT
from core.db.engine import create_engine
from core.db.repositories import AccountRepository, UserRepository
from core.errors import ConfigError
from core.runtime import run_main
from core.services import build_services
from core.sources.http import RateLimiter, RetryPolicy, SourceLimiters
from core.sources.lastfm import LastfmClient
from core.sources.lastfm_history import PAGE_SIZE
from core.sources.lastfm_models import parse_recent_tracks
from core.sync.engine import LastfmSync


@dataclass(frozen=True)
class SyncBenchResult:
    database: str
    listens: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.listens / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class LimitedSyncResult:
    """A sync through the default Last.fm limiter, against its upper bound (requests/s x page size)."""

    run: SyncBenchResult
    requests_per_s: float
    page_size: int

    @property
    def bound_per_s(self) -> float:
        return self.requests_per_s * self.page_size

    def to_json_dict(self) -> dict[str, object]:
        return {"database": self.run.database, "listens": self.run.listens, "seconds": round(self.run.seconds, 2),
                "listens_per_s": round(self.run.per_second), "requests_per_s": self.requests_per_s,
                "page_size": self.page_size, "bound_listens_per_s": round(self.bound_per_s),
                "share_of_bound": round(self.run.per_second / self.bound_per_s, 3)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeLastfmProcess:
    """The test fake as a child process serving one synthetic history."""

    def __init__(self, scrobbles: int) -> None:
        self.port = _free_port()
        self.scrobbles = scrobbles
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> FakeLastfmProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.lastfm_server", "--port", str(self.port),
             "--synthetic", f"bench={self.scrobbles}"], cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise ConfigError("the fake Last.fm server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    @property
    def api_root(self) -> str:
        return f"http://127.0.0.1:{self.port}/2.0/"


async def _pg_database(server_url: str) -> tuple[str, str]:
    name = f"sonance_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(server_url).set(drivername="postgresql+asyncpg", database="postgres")
                          .render_as_string(False))
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(server_url).set(drivername="postgresql+asyncpg", database=name).render_as_string(False), name


async def _drop_pg(server_url: str, name: str) -> None:
    admin = create_engine(make_url(server_url).set(drivername="postgresql+asyncpg", database="postgres")
                          .render_as_string(False))
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


def _settings(database_url: str, api_root: str) -> Settings:
    return Settings(_env_file=None, DATABASE_URL=database_url, LASTFM_API_KEY="test-lastfm-key",  # type: ignore[call-arg]
                    LASTFM_API_ROOT=api_root)


async def measure(database_url: str, api_root: str, label: str, *, prefetch: int = 4,
                  limiter: RateLimiter | None = None) -> SyncBenchResult:
    """One full sync of the fake's history; `limiter` defaults to a practically unlimited one."""
    settings = _settings(database_url, api_root)
    services = await build_services(settings)
    try:
        async with services.session() as session:
            user = (await UserRepository(session).ensure_dataset_users("bench", ["bench:1"]))["bench:1"]
            account = await AccountRepository.without_cipher(session).link(user, "lastfm", "bench")
        async with aiohttp.ClientSession() as http:
            client = LastfmClient(settings, http, limiter or RateLimiter(10_000, burst=100),
                                  retry=RetryPolicy(attempts=3), timeout_s=30)
            engine = LastfmSync(services, client, prefetch=prefetch, commit_rows=5000)
            started = time.perf_counter()
            report = await engine.sync_account(account.id)
            elapsed = time.perf_counter() - started
        if report.status != "ok":
            raise ConfigError(f"benchmark sync failed: {report.reason} {report.message}")
        return SyncBenchResult(label, report.inserted, elapsed)
    finally:
        await services.close()


async def run_sync_bench(scrobbles: int, postgres_url: str | None) -> list[SyncBenchResult]:
    results = []
    with FakeLastfmProcess(scrobbles) as fake, tempfile.TemporaryDirectory() as tmp:
        results.append(await measure(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", fake.api_root, "sqlite"))
        if postgres_url:
            url, name = await _pg_database(postgres_url)
            try:
                results.append(await measure(url, fake.api_root, "postgresql"))
            finally:
                await _drop_pg(postgres_url, name)
    return results


async def run_limited_bench(scrobbles: int) -> LimitedSyncResult:
    """A sync of `scrobbles` listens into SQLite through the limiter production builds from the
    default settings (the database is not the bottleneck at this rate)."""
    with FakeLastfmProcess(scrobbles) as fake, tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'limited.db'}"
        limiter = SourceLimiters.from_settings(_settings(url, fake.api_root)).lastfm
        run = await measure(url, fake.api_root, "sqlite", limiter=limiter)
    return LimitedSyncResult(run, limiter.rate_per_s, PAGE_SIZE)


def run_limited(scrobbles: int) -> LimitedSyncResult:
    return run_main(run_limited_bench(scrobbles))


def parse_rate(pages: int = 100) -> float:
    """Scrobbles decoded and parsed per second from `user.getRecentTracks` pages of 200 (no network,
    no database): parsing must not be what bounds a 1,000,000-scrobble import (target >= 20,000/s)."""
    rows = [{"artist": {"mbid": "", "#text": f"Artist {i}"}, "streamable": "0", "image": [], "mbid": "",
             "album": {"mbid": "", "#text": "Album"}, "name": f"Track {i}", "url": "https://www.last.fm/x",
             "date": {"uts": str(1_600_000_000 + i), "#text": "x"}} for i in range(PAGE_SIZE)]
    body = json.dumps({"recenttracks": {"track": rows, "@attr": {
        "user": "u", "page": "1", "perPage": str(PAGE_SIZE), "totalPages": "1", "total": str(PAGE_SIZE)}}})
    start = time.perf_counter()
    n = sum(len(parse_recent_tracks(json.loads(body)).rows) for _ in range(pages))
    return n / (time.perf_counter() - start)


def default_postgres_url() -> str | None:
    return os.environ.get("SONANCE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def run(scrobbles: int, postgres_url: str | None) -> list[SyncBenchResult]:
    return run_main(run_sync_bench(scrobbles, postgres_url))
