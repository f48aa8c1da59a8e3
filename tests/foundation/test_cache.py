"""Both cache implementations honour one contract; Redis outages degrade to misses and recover."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time

import pytest

from core.cache import Cache, InProcessCache, RedisCache, build_cache


async def test_contract(cache: Cache) -> None:
    assert await cache.get("ns", "missing") is None
    await cache.set("ns", "k", {"a": [1, 2]})
    assert await cache.get("ns", "k") == {"a": [1, 2]}
    await cache.set("ns", "short", 1, ttl_s=0.05)
    await asyncio.sleep(0.15)
    assert await cache.get("ns", "short") is None
    await cache.set("ns", "user:42:recs", 1)
    await cache.set("ns", "user:7:recs", 2)
    assert await cache.delete_matching("ns", "user:42:") == 1
    assert await cache.get("ns", "user:7:recs") == 2
    await cache.delete_namespace("ns")
    assert await cache.get("ns", "user:7:recs") is None
    assert await cache.get("ns", "k") is None
    assert [await cache.incr("budget", "u1", ttl_s=60) for _ in range(3)] == [1, 2, 3]
    assert await cache.ping()


async def test_in_process_cache_is_size_bounded() -> None:
    cache = InProcessCache(max_items=3)
    for i in range(10):
        await cache.set("ns", str(i), i)
    assert len(cache) == 3
    assert await cache.get("ns", "9") == 9 and await cache.get("ns", "0") is None


async def test_in_process_cache_is_bounded_in_bytes_too() -> None:
    cache = InProcessCache(max_items=1_000, max_bytes=10_000)
    card = "x" * 2_000  # like a /compat result carrying its PNG
    for i in range(20):
        await cache.set("compat", str(i), card)
    assert cache.size_bytes <= 10_000 and len(cache) == 4  # the newest four fit
    assert await cache.get("compat", "19") == card and await cache.get("compat", "0") is None
    await cache.set("compat", "huge", "y" * 3_000)  # over a quarter of the budget: not cached
    assert await cache.get("compat", "huge") is None and await cache.get("compat", "19") == card
    await cache.delete_namespace("compat")
    assert cache.size_bytes == 0 and len(cache) == 0
    assert [await cache.incr("budget", "u", ttl_s=60) for _ in range(12)][-1] == 12
    assert cache.size_bytes == len("12")


async def test_default_in_process_cache_holds_at_most_16_mib_of_superseded_cards() -> None:
    """The embedded default (no Redis): /compat cards keyed by a space version that every sync bumps
    must not pile up for the better part of an hour (the soak's RSS grew with them)."""
    cache = build_cache(None)
    card = "c" * 80_000  # a /compat entry with its PNG card, as JSON
    for version in range(400):  # 400 superseded versions of one pair: 32 MB offered
        await cache.set("compat", f"pair:u1:u2:{version}", card)
    assert cache.size_bytes <= 16 * 2**20  # type: ignore[attr-defined]
    assert await cache.get("compat", "pair:u1:u2:399") == card
    assert await cache.get("compat", "pair:u1:u2:0") is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server binary not installed")
async def test_redis_going_away_degrades_to_misses_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    port = _free_port()
    proc = _start_redis(port)
    cache = RedisCache(f"redis://127.0.0.1:{port}/0", retry_after_s=0.2)
    try:
        await cache.set("ns", "k", "v")
        assert await cache.get("ns", "k") == "v"
        proc.terminate()
        proc.wait(5)
        started = time.monotonic()
        assert await cache.get("ns", "k") is None  # a miss, not an exception
        await cache.set("ns", "k2", "v2")  # a no-op
        assert time.monotonic() - started < 2
        assert any("cache unavailable" in r.message for r in caplog.records)
        proc = _start_redis(port)
        await asyncio.sleep(0.3)
        await cache.set("ns", "k3", "v3")
        assert await cache.get("ns", "k3") == "v3"
        assert any("cache back" in r.message for r in caplog.records)
    finally:
        await cache.close()
        proc.kill()
        proc.wait(5)
