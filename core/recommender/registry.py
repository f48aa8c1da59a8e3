"""`ModelRegistry`: the lifecycle of an immutable, swappable model, apart from the requests it serves.

One registry holds, per key (a recommender granularity, the compatibility space…), the value being
served and its version. Requests only ask `ensure(key)` for the current value; everything else
lives here:

* **Swap, never mutate.** The served mapping is *replaced* by one assignment, so a request holding a
  value keeps a consistent one while a newer one arrives.
* **Pick up newer versions.** At most every `refresh_interval_s` (or at once when a caller says the
  value is stale) the source is asked for its newest version; another process (the CLI, another
  shard) may have produced it. A version not served yet is loaded; an unreadable one is rebuilt.
* **Build once.** With nothing to load but data to learn from, a build starts in the background and
  concurrent callers share it; the first caller waits at most `first_build_wait_s` (then the source's
  "still learning" error; None: as long as it takes), later callers keep the old value while a new
  one builds.

The source (`ModelSource`) says what "newest version", "load" and "build" mean for one kind of model;
see `core.recommender.served` (artifacts in the database) and `core.compat.space` (a data fingerprint).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class Served(Generic[V]):
    """A value and the version it came from; replaced whole, never mutated. `info` is what its source
    reports alongside (the saved artifact's path, training metrics)."""

    value: V
    version: str
    info: dict[str, Any] = field(default_factory=dict)


class ModelSource(Protocol[K, V]):
    """Where a registry's values come from."""

    async def newest(self, key: K) -> str | None:
        """The newest version available to load now (None: nothing stored)."""

    async def load(self, key: K, version: str) -> Served[V] | None:
        """That version, ready to serve; None when it cannot be read (then it is rebuilt)."""

    async def build(self, key: K, **options: Any) -> Served[V]:
        """Learn a new value from the data (runs in the background; off the event loop inside).
        `options` are those given to `ModelRegistry.rebuild` (none when `ensure` builds)."""

    async def can_build(self, key: K) -> bool:
        """Whether there is anything to learn from; `ensure` raises `nothing_to_build` otherwise."""

    def nothing_to_build(self, key: K) -> Exception: ...

    def still_building(self, key: K) -> Exception: ...


@dataclass
class _Slot(Generic[V]):
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    building: asyncio.Task[Served[V]] | None = None
    checked_at: float = float("-inf")


class ModelRegistry(Generic[K, V]):
    """Load, refresh, build and swap values per key (see the module docstring)."""

    def __init__(self, source: ModelSource[K, V], *, name: str, refresh_interval_s: float = 60.0,
                 first_build_wait_s: float | None = 25.0) -> None:
        self.source = source
        self.name = name
        self.refresh_interval_s = refresh_interval_s
        self.first_build_wait_s = first_build_wait_s
        self.swaps = 0  # how many values were swapped in (observability and tests)
        self._served: dict[K, Served[V]] = {}
        self._slots: dict[K, _Slot[V]] = {}

    def current(self, key: K) -> Served[V] | None:
        """What is served for `key` now (None before first use)."""
        return self._served.get(key)

    def building(self, key: K) -> bool:
        """Whether a build of `key` is running (a `rebuild` now joins it rather than starting anew)."""
        slot = self._slots.get(key)
        return slot is not None and slot.building is not None and not slot.building.done()

    def _slot(self, key: K) -> _Slot[V]:
        return self._slots.setdefault(key, _Slot())

    def _fresh(self, key: K, stale: Callable[[V], bool] | None) -> Served[V] | None:
        current = self._served.get(key)
        if current is None or time.monotonic() - self._slot(key).checked_at >= self.refresh_interval_s:
            return None
        return None if stale is not None and stale(current.value) else current

    def _swap(self, key: K, served: Served[V]) -> None:
        """Atomic: one assignment replaces the mapping; readers holding the old value keep it."""
        self._served = {**self._served, key: served}
        self._slot(key).checked_at = time.monotonic()
        self.swaps += 1
        log.info("%s %s model %s is now serving", self.name, key, served.version)

    async def ensure(self, key: K, *, stale: Callable[[V], bool] | None = None) -> Served[V]:
        """The value to serve: current, a newer stored version, or built now.

        `stale(value)` lets a caller force a re-check before the interval (e.g. a member whose first
        listens just landed is missing from the compatibility space).
        """
        fresh = self._fresh(key, stale)
        if fresh is not None:
            return fresh
        slot = self._slot(key)
        async with slot.lock:
            fresh = self._fresh(key, stale)
            if fresh is not None:
                return fresh
            current = self._served.get(key)
            if slot.building is not None and not slot.building.done():
                return await self._wait_for_build(key, slot, current)
            newest = await self.source.newest(key)
            if newest is not None and (current is None or current.version != newest):
                loaded = await self.source.load(key, newest)
                if loaded is not None:
                    self._swap(key, loaded)
                    return loaded
                log.warning("%s %s version %s unreadable; rebuilding", self.name, key, newest)
            elif newest is not None and current is not None:
                slot.checked_at = time.monotonic()
                return current
            if not await self.source.can_build(key):
                raise self.source.nothing_to_build(key)
            self._start_build(key, slot)
            return await self._wait_for_build(key, slot, current)

    async def rebuild(self, key: K, **options: Any) -> Served[V]:
        """Build from the data now and swap the result in; concurrent calls for one key share a run."""
        slot = self._slot(key)
        if slot.building is None or slot.building.done():
            self._start_build(key, slot, **options)
        assert slot.building is not None
        return await asyncio.shield(slot.building)

    def _start_build(self, key: K, slot: _Slot[V], **options: Any) -> None:
        slot.building = asyncio.create_task(self._build_and_swap(key, options), name=f"{self.name}-build-{key}")

    async def _build_and_swap(self, key: K, options: dict[str, Any]) -> Served[V]:
        served = await self.source.build(key, **options)
        self._swap(key, served)
        return served

    async def _wait_for_build(self, key: K, slot: _Slot[V], current: Served[V] | None) -> Served[V]:
        assert slot.building is not None
        if current is not None:
            return current  # keep serving the old value while the new one builds
        try:
            return await asyncio.wait_for(asyncio.shield(slot.building), self.first_build_wait_s)
        except TimeoutError:
            raise self.source.still_building(key) from None

    async def aclose(self) -> None:
        """Let running builds finish their writes (a half-written artifact helps nobody)."""
        tasks = [s.building for s in self._slots.values() if s.building is not None and not s.building.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
