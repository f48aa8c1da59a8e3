"""Plumbing shared by every external client: rate limiting, retries with backoff, Retry-After.

Why a module of its own: Last.fm, Spotify and AOTY all need the same three guarantees
(README, "Architecture": every network call has a timeout, a retry policy that honours `Retry-After`, and a rate limit), and
getting the asynchronous details right once is cheaper than three subtly different copies.

Design points:
- Limiters are created ONCE per service (see `SourceLimiters.from_settings`) and shared by every user,
  because the external quota belongs to our API key / our crawler, not to a Discord user.
- A retry wait is an `asyncio.sleep` in the caller's own task. The limiter is not held while waiting,
  so one user's 429 does not stall other users' calls beyond what the shared limiter imposes.
- A `Retry-After` longer than `RetryPolicy.max_retry_after` is not slept on at all: the caller gets
  `SourceUnavailable(retry_after=...)` at once so a scheduler can come back later instead of parking
  a task (and possibly a Discord interaction) for minutes.
- Several bot processes (shards) share one API key, so with Redis configured the Last.fm and Spotify
  limits are one GCRA bucket in Redis (`SharedRateLimiter`); without Redis, or while it is down, each
  process keeps to its share of the total (`process_share`), so the sum never exceeds the limit.

Why hand-written rather than a library: the limiter is ~30 lines of GCRA, must be shared across
processes through the Redis we already run, must degrade to a per-process share when Redis goes
away, and must *reserve* a slot (tell the caller how long to wait) rather than refuse. The
maintained options (aiolimiter: in-process only; limits / redis-rate-limit style libraries:
fixed or moving windows that answer "allowed or not" and leave waiting and fallback to us) would
each cover one half and add a dependency. The retry loop is hand-written for the same reason: it
must honour `Retry-After` (seconds or HTTP dates), fail fast past a bound, and feed a server-imposed
pause back into the shared gate, which tenacity/backoff can express only with as much glue code.
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
    from core.cache import Cache
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
    One process only; `SharedRateLimiter` spans processes. Why not a library: the module docstring.
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


#: GCRA in one round trip: the bucket's "theoretical arrival time" (TAT, microseconds on the Redis
#: server's clock, so hosts' clocks never matter) is read, the caller's slot reserved and the wait
#: returned. ARGV: interval (µs), burst. Returns the microseconds the caller must wait.
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allowed_at = tat - (burst - 1) * interval
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 1000)
local delay = allowed_at - now
if delay < 0 then delay = 0 end
return delay
"""


def process_share(shard_count: int | None, shard_ids: str | None) -> float:
    """The fraction of a shared external limit this process may use on its own.

    Shards are split between processes (each process lists its own `DISCORD_SHARD_IDS`), so a process
    owning k of n shards takes k/n of the total: the shares of all processes add up to the whole limit
    and never exceed it. Unsharded, or all shards in this process (no ids): the whole limit.
    """
    if not shard_count or shard_count < 1 or not shard_ids:
        return 1.0
    mine = {int(s) for s in shard_ids.split(",") if s.strip()}
    return max(1, len(mine)) / shard_count if mine else 1.0


class SharedRateLimiter(RateLimiter):
    """A rate limit shared by every process through Redis (GCRA script), with a per-process fallback.

    `rate_per_s` is the total for the deployment. Each `acquire()` reserves the next slot in the
    Redis bucket and sleeps until it comes up, exactly like `RateLimiter` does in one process. When
    Redis cannot answer (the cache reports it down), the process falls back to its own bucket at
    `rate_per_s * share` (see `process_share`), so an outage can never raise the total. Slots the
    fallback already handed out are waited out after Redis returns, so the two buckets never add up.
    """

    def __init__(self, name: str, rate_per_s: float, cache: Cache, *, share: float = 1.0, burst: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from core.cache import cache_key

        share = min(1.0, max(share, 1e-6))
        super().__init__(rate_per_s * share, burst=burst, clock=clock)  # the fallback bucket
        self.rate_per_s = rate_per_s  # what the deployment may send in total
        self.share = share
        self.shared_interval_us = round(1_000_000 / rate_per_s)
        self._key = cache_key("ratelimit", name)
        run_script = getattr(cache, "script", None)
        self._script = run_script(GCRA_LUA) if run_script is not None else None

    @property
    def fallback_rate_per_s(self) -> float:
        """This process's own rate while Redis is away."""
        return 1.0 / self.interval

    async def acquire(self) -> None:
        waited = None
        if self._script is not None:
            waited = await self._script([self._key], [self.shared_interval_us, self.burst])
        if waited is None:  # no Redis (down, or not this kind of cache): this process's share
            await super().acquire()
            return
        delay = max(int(waited) / 1_000_000, self._tat - self._clock())
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(frozen=True)
class SourceLimiters:
    """The one-per-service limiters; build once in `build_services` and pass to each client."""

    lastfm: RateLimiter
    spotify: RateLimiter
    aoty: SerialGate

    @classmethod
    def from_settings(cls, settings: Settings, *, spotify_rate_per_s: float = 5.0,
                      cache: Cache | None = None) -> SourceLimiters:
        """Limits shared through Redis when `cache` is the Redis cache, else this process's share.

        AOTY keeps one gate per process: it is a crawl politeness interval, not a quota, and its
        scheduled crawl runs only in the scheduler leader.
        """
        share = process_share(settings.discord_shard_count, settings.discord_shard_ids)
        if cache is not None and hasattr(cache, "script"):
            return cls(
                lastfm=SharedRateLimiter("lastfm", settings.lastfm_requests_per_second, cache, share=share),
                spotify=SharedRateLimiter("spotify", spotify_rate_per_s, cache, share=share, burst=2),
                aoty=SerialGate(settings.aoty_min_interval_s),
            )
        return cls(
            lastfm=RateLimiter(settings.lastfm_requests_per_second * share),
            spotify=RateLimiter(spotify_rate_per_s * share, burst=2),
            aoty=SerialGate(settings.aoty_min_interval_s),
        )


class Retryable(Exception):
    """Raised by one attempt to say "transient, try again" (optionally after `retry_after` seconds)."""

    def __init__(self, detail: str, *, retry_after: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        self.rate_limited = rate_limited  # refused for our request rate (HTTP 429, Last.fm error 29)


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
    Spotify leave it unset so one user's 429 only delays that user. (Why not tenacity or backoff:
    the module docstring.)
    Exhaustion raises `SourceUnavailable(source, retry_after=…)`.
    """
    last: Retryable | None = None
    for n in range(1, policy.attempts + 1):
        try:
            return await attempt()
        except Retryable as exc:
            last = exc
            if exc.retry_after is not None and exc.retry_after > policy.max_retry_after_s:
                raise SourceUnavailable(source, detail=exc.detail, retry_after=exc.retry_after,
                                        rate_limited=exc.rate_limited) from None
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
                            retry_after=last.retry_after, rate_limited=last.rate_limited)
