"""The shared plumbing: limiter, crawl gate, Retry-After parsing and the retry loop."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from core.errors import SourceUnavailable
from core.sources.http import (
    RateLimiter,
    Retryable,
    RetryPolicy,
    SerialGate,
    parse_retry_after,
    user_agent,
    with_retries,
)


async def test_rate_limiter_spaces_concurrent_callers() -> None:
    limiter = RateLimiter(50.0)  # 20 ms apart
    stamps: list[float] = []

    async def caller() -> None:
        for _ in range(5):
            await limiter.acquire()
            stamps.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(caller() for _ in range(4)))
    assert len(stamps) == 20
    assert time.monotonic() - start >= 19 / 50 - 0.01
    stamps.sort()
    # No bursts: the i-th grant never comes before i/rate. (A busy event loop can only delay wake-ups,
    # which bunches the stamps together, so gaps between stamps are not a sound measure.)
    early = [i for i, t in enumerate(stamps) if t - start < i / 50 - 0.005]
    assert not early, f"grants ahead of the rate: {early}"


async def test_rate_limiter_burst_then_steady() -> None:
    limiter = RateLimiter(20.0, burst=5)
    start = time.monotonic()
    for _ in range(5):
        await limiter.acquire()
    assert time.monotonic() - start < 0.03  # the bucket starts full
    for _ in range(4):
        await limiter.acquire()
    assert time.monotonic() - start >= 4 / 20 - 0.01


async def test_serial_gate_is_exclusive_and_spaced() -> None:
    gate = SerialGate(0.05)
    spans: list[tuple[float, float]] = []
    inside = 0

    async def work() -> None:
        nonlocal inside
        async with gate:
            inside += 1
            assert inside == 1
            s = time.monotonic()
            await asyncio.sleep(0.01)
            spans.append((s, time.monotonic()))
            inside -= 1

    await asyncio.gather(*(work() for _ in range(4)))
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start - end >= 0.05 - 0.005


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= (parse_retry_after(http_date) or 0) <= 31


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=4.0)
    for attempt, cap in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)):
        d = policy.backoff(attempt)
        assert cap / 2 <= d <= cap


async def test_with_retries_honours_retry_after_then_succeeds() -> None:
    calls: list[float] = []

    async def attempt() -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise Retryable("429", retry_after=0.15)
        return "ok"

    assert await with_retries(attempt, source="x", policy=RetryPolicy(attempts=3)) == "ok"
    assert calls[1] - calls[0] >= 0.15


async def test_with_retries_gives_up_with_source_unavailable() -> None:
    async def attempt() -> None:
        raise Retryable("HTTP 503")

    with pytest.raises(SourceUnavailable) as err:
        await with_retries(attempt, source="lastfm",
                           policy=RetryPolicy(attempts=3, base_delay_s=0.001, max_delay_s=0.002))
    assert err.value.source == "lastfm"
    assert "3 attempts" in (err.value.detail or "")


async def test_long_retry_after_fails_fast_and_reports_it() -> None:
    async def attempt() -> None:
        raise Retryable("429", retry_after=3600)

    start = time.monotonic()
    with pytest.raises(SourceUnavailable) as err:
        await with_retries(attempt, source="spotify", policy=RetryPolicy(max_retry_after_s=30))
    assert time.monotonic() - start < 0.1
    assert err.value.retry_after == 3600


def test_user_agent_identifies_the_bot() -> None:
    assert user_agent().startswith("Sonance/")
