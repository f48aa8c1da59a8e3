"""Plumbing shared by every external client: rate limiting, retries with backoff, Retry-After.

Why a module of its own: Last.fm, Spotify and AOTY all need the same three guarantees
(ARCHITECTURE rule 5: a timeout, a retry policy that honours `Retry-After`, and a rate limit), and
getting the asynchronous details right once is cheaper than three subtly different copies.

Design points:
- Limiters are created ONCE per service (see `SourceLimiters.from_settings`) and shared by every user,
  because the external quota belongs to our API key / our crawler, not to a Discord user.
- A retry wait is an `asyncio.sleep` in the caller's own task. The limiter is not held while waiting,
  so one user's 429 does not stall other users' calls beyond what the shared limiter imposes.
- A `Retry-After` longer than `RetryPolicy.max_retry_after` is not slept on at all: the caller gets
  `SourceUnavailable(retry_after=...)` at once so a scheduler can come back later instead of parking
  a task (and possibly a Discord interaction) for minutes.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from core.errors import SourceUnavailable

if TYPE_CHECKING:
    from core.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

PRODUCT = "Sonance/0.1"


def user_agent(settings: Settings | None = None) -> str:
    """An identifying User-Agent, as Last.fm's terms and polite crawling ask for."""
    contact = settings.public_base_url if settings is not None else "https://github.com/sonance"
    return f"{PRODUCT} (music recommendation Discord bot; +{contact})"


class RateLimiter:
    """Async rate limiter (GCRA, i.e. a token bucket of `burst` tokens refilled at `rate` per second).

    Shared by all users of one service. `acquire()` waits in the caller's task until the caller's slot
    comes up; slots are handed out in call order, so concurrent users interleave fairly. There is no
    lock: the bookkeeping has no `await` between read and write, which is atomic on one event loop.
    """

    def __init__(self, rate_per_s: float, *, burst: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self.rate_per_s = rate_per_s
        self.interval = 1.0 / rate_per_s
        self.burst = max(1, burst)
        self._clock = clock
        self._tat = 0.0  # theoretical arrival time of the next request

    def _reserve(self) -> float:
        now = self._clock()
        tat = max(self._tat, now)
        allowed_at = tat - (self.burst - 1) * self.interval
        self._tat = tat + self.interval
        return max(0.0, allowed_at - now)

    async def acquire(self) -> None:
        """Wait for this caller's slot."""
        delay = self._reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        """Push every future slot back (used when the service told the whole app to slow down)."""
        self._tat = max(self._tat, self._clock() + seconds)


class SerialGate:
    """One request at a time, with at least `min_interval_s` between the end of one and the next start.

    This is the polite-crawler discipline for a site without an API (AOTY): no parallel requests at
    all, and a pause that a `Retry-After` or robots.txt `Crawl-delay` can lengthen for everyone.
    Use as `async with gate: ...` around exactly one HTTP request.
    """

    def __init__(self, min_interval_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_interval_s = max(0.0, min_interval_s)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._ready_at = 0.0

    def pause(self, seconds: float) -> None:
        self._ready_at = max(self._ready_at, self._clock() + seconds)

    async def __aenter__(self) -> SerialGate:
        await self._lock.acquire()
        try:
            delay = self._ready_at - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
        except BaseException:
            self._lock.release()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._ready_at = max(self._ready_at, self._clock() + self.min_interval_s)
        self._lock.release()


@dataclass(frozen=True)
class SourceLimiters:
    """The one-per-service limiters; build once in `build_services` and pass to each client."""

    lastfm: RateLimiter
    spotify: RateLimiter
    aoty: SerialGate

    @classmethod
    def from_settings(cls, settings: Settings, *, spotify_rate_per_s: float = 5.0) -> SourceLimiters:
        return cls(
            lastfm=RateLimiter(settings.lastfm_requests_per_second),
            spotify=RateLimiter(spotify_rate_per_s, burst=2),
            aoty=SerialGate(settings.aoty_min_interval_s),
        )


class Retryable(Exception):
    """Raised by one attempt to say "transient, try again" (optionally after `retry_after` seconds)."""

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; honours the server's Retry-After when given."""

    attempts: int = 4  # total attempts, not retries
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 30.0  # a longer Retry-After fails fast with SourceUnavailable

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before attempt `attempt + 1` (attempt counts from 1)."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        r = (rng or random).random()
        return cap / 2 + r * cap / 2  # "equal jitter": never zero, never above the cap


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent/garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_from(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    return parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    source: str,
    policy: RetryPolicy,
    on_retry_after: Callable[[float], None] | None = None,
) -> T:
    """Run `attempt` until it succeeds, raises something other than `Retryable`, or attempts run out.

    `on_retry_after` lets a service-wide gate learn about a server-imposed pause (AOTY); Last.fm and
    Spotify leave it unset so one user's 429 only delays that user.
    Exhaustion raises `SourceUnavailable(source, retry_after=…)`.
    """
    last: Retryable | None = None
    for n in range(1, policy.attempts + 1):
        try:
            return await attempt()
        except Retryable as exc:
            last = exc
            if exc.retry_after is not None and exc.retry_after > policy.max_retry_after_s:
                raise SourceUnavailable(source, detail=exc.detail, retry_after=exc.retry_after) from None
            if n == policy.attempts:
                break
            delay = exc.retry_after if exc.retry_after is not None else policy.backoff(n)
            if exc.retry_after is not None and on_retry_after is not None:
                on_retry_after(exc.retry_after)
            log.info("%s: transient failure (%s); attempt %d/%d, retrying in %.2fs",
                     source, exc.detail, n, policy.attempts, delay)
            await asyncio.sleep(delay)
    assert last is not None
    raise SourceUnavailable(source, detail=f"gave up after {policy.attempts} attempts: {last.detail}",
                            retry_after=last.retry_after)
