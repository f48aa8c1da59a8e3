"""Per-user, per-day limits on model calls, and the user-id hashing used in logs and budget keys.

Counting uses `Cache.incr` on a key that contains the UTC date, so the budget resets at midnight
UTC without a job and works across processes when the cache is Redis. Raw user ids never appear in
keys or logs: they are HMAC-hashed with the deployment's secret (or a fixed salt when none is set).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from core.explain.types import UserRef

if TYPE_CHECKING:  # the cache is injected; importing it here only serves type checkers
    from core.cache import Cache

log = logging.getLogger(__name__)

NAMESPACE = "explain-budget"
_TTL_S = 2 * 86_400  # a day's counter outlives the day, then expires on its own


def hash_user(user_id: UserRef, salt: bytes = b"sonance-explain") -> str:
    """Short, stable, non-reversible tag for a user id (for logs and budget keys)."""
    if user_id is None:
        return "anon"
    return hmac.new(salt, str(user_id).encode(), hashlib.sha256).hexdigest()[:12]


def utc_today() -> date:
    return datetime.now(UTC).date()


class CallBudget:
    """`try_spend` reserves one model call for a user today, or says no.

    `per_user_per_day` <= 0 disables model calls entirely; `global_per_day` (optional) caps the
    whole deployment. A call is counted when attempted, not when it succeeds: failures cost money
    too. If the cache cannot count, the answer is no (fail closed: no unbounded spending).
    """

    def __init__(self, cache: Cache, per_user_per_day: int, *, global_per_day: int | None = None,
                 salt: bytes = b"sonance-explain", today: Callable[[], date] = utc_today) -> None:
        self._cache = cache
        self.per_user = per_user_per_day
        self.global_limit = global_per_day
        self._salt = salt
        self._today = today
        self._local: dict[str, int] = {}
        self._local_day = ""

    async def _count(self, key: str) -> int:
        shared = await self._cache.incr(NAMESPACE, key, ttl_s=_TTL_S)
        self._local[key] = self._local.get(key, 0) + 1
        return max(shared, self._local[key])

    def _user_prefix(self, user_id: UserRef) -> str:
        return f"user:{hash_user(user_id, self._salt)}:"

    async def spent_today(self, user_id: UserRef) -> int:
        """Model calls counted for the user today in the shared cache (what /forget must remove)."""
        value = await self._cache.get(NAMESPACE, f"{self._user_prefix(user_id)}{self._today().isoformat()}")
        return int(value or 0)

    async def forget(self, user_id: UserRef) -> int:
        """Delete the user's counters (every day still alive): /forget leaves nothing keyed by them.
        Returns how many shared cache keys went."""
        prefix = self._user_prefix(user_id)
        self._local = {k: v for k, v in self._local.items() if not k.startswith(prefix)}
        return await self._cache.delete_matching(NAMESPACE, prefix)

    async def try_spend(self, user_id: UserRef) -> bool:
        """Count one call for `user_id` today; False when over a limit (then no call is made)."""
        if self.per_user <= 0:
            return False
        day = self._today().isoformat()
        if day != self._local_day:
            self._local, self._local_day = {}, day
        try:
            if self.global_limit is not None and await self._count(f"global:{day}") > self.global_limit:
                return False
            if user_id is None:
                return True
            return await self._count(f"{self._user_prefix(user_id)}{day}") <= self.per_user
        except Exception:
            log.warning("explain budget unavailable; not calling the model", exc_info=True)
            return False
