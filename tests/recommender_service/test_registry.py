"""`ModelRegistry`: one build shared by concurrent callers, newer versions picked up, swaps atomic.

The source here is an in-memory store of versions (the registry's only collaborator, a protocol of
ours), so the lifecycle rules are checked without a database; the recommender and the compatibility
space run them over the database in test_service.py and tests/compat.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.recommender.registry import ModelRegistry, Served


class StillBuilding(Exception):
    pass


class NothingToBuild(Exception):
    pass


class Store:
    """Stored versions by key; a build learns "built-N" and stores it, as training saves an artifact."""

    def __init__(self, *, build_delay_s: float = 0.0, data: bool = True) -> None:
        self.stored: dict[str, str] = {}
        self.unreadable: set[str] = set()
        self.builds = 0
        self.loads = 0
        self.build_delay_s = build_delay_s
        self.data = data
        self.options: list[dict[str, Any]] = []

    async def newest(self, key: str) -> str | None:
        return self.stored.get(key)

    async def load(self, key: str, version: str) -> Served[str] | None:
        self.loads += 1
        return None if version in self.unreadable else Served(f"{key}@{version}", version)

    async def build(self, key: str, **options: Any) -> Served[str]:
        self.builds += 1
        self.options.append(options)
        await asyncio.sleep(self.build_delay_s)
        version = f"built-{self.builds}"
        self.stored[key] = version
        return Served(f"{key}@{version}", version, {"n": self.builds})

    async def can_build(self, key: str) -> bool:
        return self.data

    def nothing_to_build(self, key: str) -> Exception:
        return NothingToBuild(key)

    def still_building(self, key: str) -> Exception:
        return StillBuilding(key)


async def test_concurrent_first_requests_share_one_build() -> None:
    store = Store(build_delay_s=0.05)
    registry = ModelRegistry(store, name="test")
    served = await asyncio.gather(*(registry.ensure("a") for _ in range(5)))
    assert store.builds == 1 and {s.version for s in served} == {"built-1"}
    assert registry.current("a") is served[0] and registry.swaps == 1


async def test_a_newer_stored_version_is_picked_up_after_the_interval() -> None:
    store = Store()
    store.stored["a"] = "v1"
    registry = ModelRegistry(store, name="test", refresh_interval_s=3600.0)
    first = await registry.ensure("a")
    assert first.value == "a@v1" and store.builds == 0
    store.stored["a"] = "v2"  # another process activated a newer version
    assert (await registry.ensure("a")) is first  # within the interval: not asked
    registry.refresh_interval_s = 0.0
    second = await registry.ensure("a")
    assert second.value == "a@v2" and first.value == "a@v1"  # the old value is untouched
    assert registry.swaps == 2
    assert (await registry.ensure("a")) is second and store.loads == 2  # same version: no reload


async def test_a_stale_value_is_rechecked_before_the_interval() -> None:
    store = Store()
    store.stored["a"] = "v1"
    registry = ModelRegistry(store, name="test", refresh_interval_s=3600.0)
    await registry.ensure("a")
    store.stored["a"] = "v2"
    assert (await registry.ensure("a", stale=lambda value: value == "a@v1")).version == "v2"


async def test_an_unreadable_version_is_rebuilt_and_no_data_says_so() -> None:
    store = Store()
    store.stored["a"] = "broken"
    store.unreadable.add("broken")
    registry = ModelRegistry(store, name="test")
    assert (await registry.ensure("a")).version == "built-1"
    with pytest.raises(NothingToBuild):
        await ModelRegistry(Store(data=False), name="test").ensure("b")


async def test_a_slow_first_build_says_still_building_then_serves() -> None:
    store = Store(build_delay_s=0.3)
    registry = ModelRegistry(store, name="test", first_build_wait_s=0.01)
    with pytest.raises(StillBuilding):
        await registry.ensure("a")
    assert registry.building("a")
    await asyncio.sleep(0.4)
    assert not registry.building("a") and (await registry.ensure("a")).version == "built-1"
    assert store.builds == 1


async def test_rebuild_keeps_serving_the_old_value_and_shares_a_run() -> None:
    store = Store(build_delay_s=0.05)
    registry = ModelRegistry(store, name="test", refresh_interval_s=0.0)
    old = await registry.ensure("a")
    first, second = registry.rebuild("a", tune=False), registry.rebuild("a", tune=False)
    rebuilding = asyncio.gather(first, second)
    await asyncio.sleep(0)
    assert (await registry.ensure("a")) is old  # served while the new one builds
    new, same = await rebuilding
    assert new is same and new.version == "built-2" and new.info == {"n": 2}
    assert store.options[-1] == {"tune": False} and store.builds == 2
    assert registry.current("a") is new
