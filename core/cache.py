"""One cache interface with a Redis and an in-process implementation.

Keys are namespaced and versioned (``sonance:v1:<namespace>:<key>``) so that a deploy that changes
a cached shape bumps `KEY_VERSION` instead of reading stale values. Values are JSON.

The cache is an optimisation, never a source of truth: if Redis goes away, `RedisCache` logs one
warning, answers every call as a miss (or a no-op) and retries the connection after a short
back-off, so commands keep answering without cache and the cache comes back with Redis.

Several bot processes (shards) share one Redis, so an invalidation in one process (a /forget, a
sync, a thumbs-down) is seen by all of them: there is no per-process layer in front of Redis that
could keep serving a forgotten member. An invalidation Redis could not take (it was down) is
remembered and replayed before the next call that reaches Redis again, so entries written before
the outage cannot come back to life afterwards (see `RedisCache`).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

KEY_VERSION = 1
KEY_PREFIX = f"sonance:v{KEY_VERSION}"


def cache_key(namespace: str, key: str) -> str:
    return f"{KEY_PREFIX}:{namespace}:{key}"


@runtime_checkable
class Cache(Protocol):
    """What the engine needs from a cache."""

    async def get(self, namespace: str, key: str) -> Any | None: ...

    async def set(self, namespace: str, key: str, value: Any, ttl_s: float | None = None) -> None: ...

    async def delete(self, namespace: str, key: str) -> None: ...

    async def delete_namespace(self, namespace: str) -> None: ...

    async def delete_matching(self, namespace: str, fragment: str) -> int: ...

    async def incr(self, namespace: str, key: str, ttl_s: float | None = None) -> int: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class InProcessCache:
    """An LRU with per-entry TTL for a single process (the embedded default), bounded by entries
    AND by bytes.

    Why hand-written rather than cachetools' TTLCache/LRUCache: those bound entries (or a size
    function) with one TTL for the whole cache, while this interface needs a TTL per entry, Redis's
    INCR-keeps-expiry semantics for budget counters and prefix deletion for invalidation, all on the
    same JSON payloads the Redis cache stores; the LRU itself is an `OrderedDict`.

    Only for a single process: several processes without Redis would each keep their own copy, and
    an invalidation in one would not reach the others (a sharded deployment sets REDIS_URL).

    Why bytes too: entries differ by four orders of magnitude (a budget counter is a few bytes, a
    /compat result carries its PNG card, ~80 KB as JSON), so 10,000 entries could mean ~800 MB.
    A 12-minute `scripts/bench soak` showed the heap growing with cached cards (tracemalloc:
    JSON strings averaging 33 KB). A value larger than a quarter of the budget is not cached at all.
    """

    def __init__(self, max_items: int = 10_000, *, max_bytes: int = 64 * 2**20, clock: Any = time.monotonic) -> None:
        self._data: OrderedDict[str, tuple[float | None, str]] = OrderedDict()
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._bytes = 0  # sum of payload lengths (JSON text: characters ~ bytes)
        self._clock = clock

    def _drop(self, full: str) -> None:
        entry = self._data.pop(full, None)
        if entry is not None:
            self._bytes -= len(entry[1])

    def _live(self, full: str) -> str | None:
        entry = self._data.get(full)
        if entry is None:
            return None
        expires, payload = entry
        if expires is not None and expires <= self._clock():
            self._drop(full)
            return None
        self._data.move_to_end(full)
        return payload

    def _store(self, full: str, payload: str, ttl_s: float | None) -> None:
        self._drop(full)
        if len(payload) > self._max_bytes // 4:
            return
        self._data[full] = (None if ttl_s is None else self._clock() + ttl_s, payload)
        self._bytes += len(payload)
        while len(self._data) > self._max_items or self._bytes > self._max_bytes:
            _, (_, evicted) = self._data.popitem(last=False)
            self._bytes -= len(evicted)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    async def get(self, namespace: str, key: str) -> Any | None:
        payload = self._live(cache_key(namespace, key))
        return None if payload is None else json.loads(payload)

    async def set(self, namespace: str, key: str, value: Any, ttl_s: float | None = None) -> None:
        self._store(cache_key(namespace, key), json.dumps(value), ttl_s)

    async def delete(self, namespace: str, key: str) -> None:
        self._drop(cache_key(namespace, key))

    async def delete_namespace(self, namespace: str) -> None:
        prefix = cache_key(namespace, "")
        for full in [k for k in self._data if k.startswith(prefix)]:
            self._drop(full)

    async def delete_matching(self, namespace: str, fragment: str) -> int:
        prefix = cache_key(namespace, "")
        doomed = [k for k in self._data if k.startswith(prefix) and fragment in k[len(prefix):]]
        for full in doomed:
            self._drop(full)
        return len(doomed)

    async def incr(self, namespace: str, key: str, ttl_s: float | None = None) -> int:
        full = cache_key(namespace, key)
        payload = self._live(full)
        value = (0 if payload is None else int(payload)) + 1
        entry = self._data.get(full)
        if entry is not None and entry[0] is not None:
            self._bytes += len(str(value)) - len(entry[1])
            self._data[full] = (entry[0], str(value))  # keep the original expiry, like Redis INCR
        else:
            self._store(full, str(value), ttl_s)
        return value

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._data)


class RedisCache:
    """Redis-backed cache that degrades to a miss when Redis is unreachable.

    After a failure it stays "down" for `retry_after_s` (no connection attempt per call, so a dead
    Redis costs nothing on the hot path), then tries again; success logs that the cache is back.

    Deletions that could not reach Redis are kept (up to `MAX_PENDING`, beyond which the whole
    key space is scheduled for deletion instead) and replayed before anything else once Redis
    answers again: another process may have cached a member's data before a /forget that happened
    during the outage, and that entry must not be served when Redis comes back.
    """

    MAX_PENDING = 10_000

    def __init__(self, url: str, *, retry_after_s: float = 5.0, socket_timeout_s: float = 0.5) -> None:
        from redis import asyncio as aioredis

        self._client = aioredis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            health_check_interval=30,
            decode_responses=True,
        )
        self._retry_after_s = retry_after_s
        self._down_until = 0.0
        self._url_for_logs = _redact(url)
        self._pending: list[str] = []  # exact keys or SCAN patterns Redis has not deleted yet

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception, op: str) -> None:
        if not self._down_until:  # the first failure of an outage; not again after every back-off retry
            log.warning("cache unavailable (redis %s, %s: %s); continuing without cache",
                        self._url_for_logs, op, exc.__class__.__name__)
        self._down_until = time.monotonic() + self._retry_after_s

    def _recovered(self) -> None:
        if self._down_until:
            log.warning("cache back (redis %s)", self._url_for_logs)
            self._down_until = 0.0

    async def _run(self, op: str, func: Any, default: Any) -> Any:
        from redis.exceptions import RedisError

        if not self.available:
            return default
        try:
            if self._pending:
                await self._replay_invalidations()
            result = await func()
        except (RedisError, OSError) as exc:
            self._failed(exc, op)
            return default
        self._recovered()
        return result

    async def get(self, namespace: str, key: str) -> Any | None:
        payload = await self._run("get", lambda: self._client.get(cache_key(namespace, key)), None)
        return None if payload is None else json.loads(payload)

    async def set(self, namespace: str, key: str, value: Any, ttl_s: float | None = None) -> None:
        payload = json.dumps(value)
        ttl = None if ttl_s is None else max(1, round(ttl_s * 1000))
        await self._run("set", lambda: self._client.set(cache_key(namespace, key), payload, px=ttl), None)

    def script(self, source: str) -> Callable[[list[str], list[Any]], Awaitable[Any | None]]:
        """A Lua script run atomically in Redis (e.g. the shared rate limiter); None while Redis is down."""
        registered = self._client.register_script(source)

        async def run(keys: list[str], args: list[Any]) -> Any | None:
            return await self._run("script", lambda: registered(keys=keys, args=args), None)

        return run

    def _remember(self, target: str) -> None:
        if target in self._pending:
            return
        if len(self._pending) >= self.MAX_PENDING:
            self._pending = [f"{KEY_PREFIX}:*"]  # too many to track: forget every cached entry instead
        elif self._pending != [f"{KEY_PREFIX}:*"]:
            self._pending.append(target)

    async def _replay_invalidations(self) -> None:
        """Delete what outages kept from being deleted; stops (and keeps the rest) at the first error."""
        while self._pending:
            target = self._pending[0]
            if any(c in target for c in "*?["):
                await self._delete_pattern(target)
            else:
                await self._client.delete(target)
            self._pending.pop(0)
        log.warning("cache: replayed the invalidations made while redis was unavailable")

    async def _invalidate(self, op: str, target: str, func: Callable[[], Awaitable[Any]]) -> int:
        done = await self._run(op, func, None)
        if done is None:
            self._remember(target)
            return 0
        return int(done)

    async def delete(self, namespace: str, key: str) -> None:
        full = cache_key(namespace, key)
        await self._invalidate("delete", _escape(full), lambda: self._client.delete(full))

    async def _delete_pattern(self, pattern: str) -> int:
        count = 0
        batch: list[str] = []
        async for full in self._client.scan_iter(match=pattern, count=500):
            batch.append(full)
            if len(batch) >= 500:
                count += await self._client.unlink(*batch)
                batch.clear()
        if batch:
            count += await self._client.unlink(*batch)
        return count

    async def delete_namespace(self, namespace: str) -> None:
        pattern = cache_key(namespace, "*")
        await self._invalidate("delete_namespace", pattern, lambda: self._delete_pattern(pattern))

    async def delete_matching(self, namespace: str, fragment: str) -> int:
        pattern = cache_key(namespace, f"*{_escape(fragment)}*")
        return await self._invalidate("delete_matching", pattern, lambda: self._delete_pattern(pattern))

    async def incr(self, namespace: str, key: str, ttl_s: float | None = None) -> int:
        full = cache_key(namespace, key)

        async def op() -> int:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(full)
                if ttl_s is not None:
                    pipe.pexpire(full, max(1, int(ttl_s * 1000)), nx=True)
                results = await pipe.execute()
            return int(results[0])

        # When Redis is down a budget counter cannot be trusted; report "first use" so callers degrade
        # to their no-cache behaviour rather than refusing everyone.
        return int(await self._run("incr", op, 1))

    async def ping(self) -> bool:
        return bool(await self._run("ping", self._client.ping, False))

    async def close(self) -> None:
        await self._client.aclose()


def _escape(text: str) -> str:
    """`text` as a literal inside a Redis SCAN/KEYS glob pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _redact(url: str) -> str:
    """Hide a password in a Redis URL before it reaches a log line."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    return urlunsplit(parts)


def build_cache(redis_url: str | None, *, max_items: int = 10_000) -> Cache:
    """Redis when configured, else the in-process cache."""
    if redis_url:
        return RedisCache(redis_url)
    return InProcessCache(max_items=max_items)
