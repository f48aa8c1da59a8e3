"""Per-user, per-day call budget on the Cache interface."""

from __future__ import annotations

from datetime import date
from typing import Any

from core.cache import InProcessCache
from core.explain.budget import CallBudget, hash_user


class Clock:
    def __init__(self) -> None:
        self.day = date(2025, 3, 1)

    def __call__(self) -> date:
        return self.day


async def test_per_user_per_day() -> None:
    clock = Clock()
    cache = InProcessCache()
    budget = CallBudget(cache, 2, today=clock)
    assert [await budget.try_spend(1) for _ in range(3)] == [True, True, False]
    assert await budget.try_spend(2)
    clock.day = date(2025, 3, 2)
    assert await budget.try_spend(1)  # a new UTC day, a new budget
    keys = list(cache._data)
    assert any("2025-03-01" in k for k in keys) and all(":1:" not in k for k in keys)  # hashed ids


async def test_global_cap_and_disabled() -> None:
    budget = CallBudget(InProcessCache(), 10, global_per_day=2)
    assert [await budget.try_spend(u) for u in (1, 2, 3)] == [True, True, False]
    assert not await CallBudget(InProcessCache(), 0).try_spend(1)


class LyingCache(InProcessCache):
    """Like RedisCache while Redis is down: every incr says 1."""

    async def incr(self, namespace: str, key: str, ttl_s: float | None = None) -> int:
        return 1


class BrokenCache(InProcessCache):
    async def incr(self, namespace: str, key: str, ttl_s: float | None = None) -> Any:
        raise ConnectionError("down")


async def test_bounded_even_when_the_shared_counter_lies_or_fails() -> None:
    lying = CallBudget(LyingCache(), 2)
    assert [await lying.try_spend(1) for _ in range(3)] == [True, True, False]
    assert not await CallBudget(BrokenCache(), 2).try_spend(1)


def test_hash_user_is_stable_and_salted() -> None:
    assert hash_user(42) == hash_user(42) != hash_user(43)
    assert hash_user(42, b"a") != hash_user(42, b"b")
    assert "42" not in hash_user(42) or len(hash_user(42)) == 12
    assert hash_user(None) == "anon"
