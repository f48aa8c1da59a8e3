"""The Last.fm limit shared by processes through Redis, its per-process fallback, and invalidations
that survive a Redis outage (issue 15: sharded processes on shared PostgreSQL and Redis).

Two `RedisCache` instances stand for two bot processes: each has its own connection pool, exactly
as two `sonance run` processes would. Redis outages come from `RedisProxy`, never from stopping the
shared server.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from core.cache import RedisCache
from core.config import Settings
from core.sources.http import RateLimiter, SharedRateLimiter, SourceLimiters, process_share
from tests.conftest import REDIS_URL
from tests.scale.redis_proxy import RedisProxy

needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set SONANCE_TEST_REDIS_URL (CI's PostgreSQL "
                                                     "+ Redis pass); the limiter is shared through it")


def test_process_share_is_this_process_fraction_of_the_shards() -> None:
    assert process_share(None, None) == 1.0
    assert process_share(4, None) == 1.0  # every shard in this process
    assert process_share(4, "0,3") == 0.5
    assert process_share(4, "1") == 0.25
    # the shares of a deployment add up to the whole limit, never more
    assert sum(process_share(4, ids) for ids in ("0,3", "1", "2")) == 1.0


def test_without_redis_a_sharded_process_keeps_to_its_share() -> None:
    settings = Settings(_env_file=None, DISCORD_SHARD_COUNT=4, DISCORD_SHARD_IDS="2",  # type: ignore[call-arg]
                        LASTFM_REQUESTS_PER_SECOND=5)
    limiters = SourceLimiters.from_settings(settings)
    assert type(limiters.lastfm) is RateLimiter and limiters.lastfm.rate_per_s == pytest.approx(1.25)


@pytest.fixture
async def proxy() -> AsyncIterator[RedisProxy]:
    assert REDIS_URL
    p = await RedisProxy(REDIS_URL).start()
    try:
        yield p
    finally:
        await p.close()


def _grants_ahead_of_rate(stamps: list[float], start: float, rate: float, burst: int = 1) -> list[int]:
    """Indices of grants that came earlier than a single bucket of `rate` would allow."""
    return [i for i, t in enumerate(sorted(stamps)) if t - start < (i - (burst - 1)) / rate - 0.01]


@needs_redis
async def test_two_processes_share_one_bucket() -> None:
    assert REDIS_URL
    name = f"test-{uuid.uuid4().hex[:8]}"
    caches = [RedisCache(REDIS_URL), RedisCache(REDIS_URL)]
    try:
        limiters = [SharedRateLimiter(name, 20.0, cache, share=0.5) for cache in caches]
        stamps: list[float] = []

        async def caller(limiter: SharedRateLimiter) -> None:
            for _ in range(10):
                await limiter.acquire()
                stamps.append(time.monotonic())

        start = time.monotonic()
        await asyncio.gather(*(caller(limiter) for limiter in limiters for _ in range(2)))
        elapsed = time.monotonic() - start
        assert len(stamps) == 40
        # 40 grants at 20/s in total: ~1.95 s. Each process alone (its share, 10/s) would take as long
        # for its 20; two unshared full-rate buckets would finish in ~1 s.
        assert elapsed >= 39 / 20 - 0.05
        assert not _grants_ahead_of_rate(stamps, start, 20.0)
    finally:
        for cache in caches:
            await cache.close()


@needs_redis
async def test_redis_down_falls_back_to_the_share_and_back(proxy: RedisProxy) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    cache = RedisCache(proxy.url, retry_after_s=0.2)
    try:
        limiter = SharedRateLimiter(name, 20.0, cache, share=0.25)  # fallback: 5/s
        assert limiter.fallback_rate_per_s == pytest.approx(5.0)
        proxy.cut()
        start = time.monotonic()
        stamps = []
        for _ in range(6):
            await limiter.acquire()
            stamps.append(time.monotonic())
        # Never above the share: the 6th grant no earlier than 5/5 s (plus the first failed Redis call).
        assert stamps[-1] - start >= 5 / 5.0 - 0.02
        assert not _grants_ahead_of_rate(stamps, start, 5.0)

        proxy.restore()
        await asyncio.sleep(0.3)  # the cache's back-off ends; the next acquire uses Redis again
        await limiter.acquire()
        other = RedisCache(REDIS_URL or proxy.url)
        try:
            shared = SharedRateLimiter(name, 20.0, other)
            t0 = time.monotonic()
            for _ in range(4):
                await shared.acquire()  # the bucket the first process just used: one slot every 50 ms
            assert time.monotonic() - t0 >= 3 / 20 - 0.01
        finally:
            await other.close()
    finally:
        await cache.close()


@needs_redis
async def test_invalidation_during_an_outage_is_replayed(proxy: RedisProxy) -> None:
    """/forget in process A while Redis is unreachable from A: when A reaches Redis again, the
    entries any process cached about the member are deleted before A does anything else."""
    assert REDIS_URL
    namespace = f"test{uuid.uuid4().hex[:6]}"
    a = RedisCache(proxy.url, retry_after_s=0.1)
    b = RedisCache(REDIS_URL)  # another process, still connected
    try:
        await b.set(namespace, "u42:recs", {"picks": ["Radiohead"]})
        await b.set(namespace, "u7:recs", {"picks": ["Slowdive"]})
        proxy.cut()
        assert await a.delete_matching(namespace, "u42:") == 0  # Redis did not take it
        await a.delete(namespace, "u7:recs")
        assert await b.get(namespace, "u42:recs") is not None  # still there: nobody deleted it yet
        proxy.restore()
        await asyncio.sleep(0.15)
        await a.get(namespace, "anything")  # A's first call after the outage replays first
        assert await b.get(namespace, "u42:recs") is None
        assert await b.get(namespace, "u7:recs") is None
    finally:
        await b.delete_namespace(namespace)
        await a.close()
        await b.close()


@needs_redis
async def test_too_many_lost_invalidations_drop_the_whole_cache(proxy: RedisProxy) -> None:
    assert REDIS_URL
    namespace = f"test{uuid.uuid4().hex[:6]}"
    a = RedisCache(proxy.url, retry_after_s=0.05)
    a.MAX_PENDING = 3  # type: ignore[misc]
    b = RedisCache(REDIS_URL)
    try:
        await b.set(namespace, "kept-by-nobody", 1)
        proxy.cut()
        for i in range(5):
            await a.delete(namespace, f"u{i}:x")
            await asyncio.sleep(0.06)
        proxy.restore()
        await asyncio.sleep(0.1)
        await a.ping()
        assert await b.get(namespace, "kept-by-nobody") is None  # everything went: nothing stale survives
    finally:
        await a.close()
        await b.close()
