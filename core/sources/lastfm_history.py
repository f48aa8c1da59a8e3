"""Paging through a Last.fm history with a resumable, persistable cursor.

The contract the sync engine relies on
--------------------------------------
A `HistoryCursor` describes the part of a user's history that is still to be read: a time window
`[from_ts, to_ts]` (UTC Unix seconds, both inclusive) and an order. `iterate_history` yields
`HistoryPage`s; each carries `cursor`, the window that remains once that page is committed. The
caller stores the page's rows and that cursor in the same transaction; after a crash it simply
starts again from the last stored cursor.

Why OLDEST-FIRST by default: the rows committed so far are then always a contiguous stretch from
the window's start, so the newest committed play *is* a correct resume point and, once the window is
done, the high-water mark for incremental syncs (`HistoryCursor.incremental(since=...)`). A crash
never leaves a hole that a later "everything after my newest play" sync would skip over.
`newest_first` exists for imports where the most recent taste matters first (recommendations become
useful after the first pages of a years-long history); its remaining window shrinks from the top.

Why `to_ts` is frozen when an import starts: Last.fm pages newest-first, so every new scrobble would
shift all page boundaries by one row during a long import. Fixing the upper bound keeps page numbers
stable; plays made meanwhile are picked up by the next incremental sync.

Boundaries are re-anchored by TIME on every resume (the cursor stores no page numbers), so page
drift from deleted or back-dated scrobbles cannot accumulate across restarts. The boundary second
is read again (inclusive bound), so the caller must de-duplicate on (user, played_uts, artist, track)
— a unique constraint does it. Within one run, page numbers are used and up to `prefetch` pages are
fetched concurrently (order of delivery is preserved) to hide latency.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from core.sources.lastfm_models import RecentTracksPage, Scrobble

Order = Literal["oldest_first", "newest_first"]
PAGE_SIZE = 200


class _RecentTracksSource(Protocol):
    async def recent_tracks(self, user: str, *, from_ts: int | None = None, to_ts: int | None = None,
                            page: int = 1, limit: int = PAGE_SIZE, extended: bool = False
                            ) -> RecentTracksPage: ...


@dataclass(frozen=True)
class HistoryCursor:
    """The remaining window of one user's history. JSON-serialisable via `to_dict`/`from_dict`."""

    user: str
    to_ts: int
    from_ts: int | None = None
    order: Order = "oldest_first"
    done: bool = False
    #: newest `played_uts` delivered through this cursor so far (the high-water mark when done)
    newest_uts: int | None = None

    @classmethod
    def full(cls, user: str, *, now: float | None = None, order: Order = "oldest_first") -> HistoryCursor:
        """The whole history up to now (the upper bound is frozen here, on purpose)."""
        return cls(user=user, to_ts=int(now if now is not None else time.time()), order=order)

    @classmethod
    def incremental(cls, user: str, since_uts: int, *, now: float | None = None) -> HistoryCursor:
        """Plays from `since_uts` (the stored high-water mark, re-read inclusively) up to now."""
        return cls(user=user, from_ts=since_uts, to_ts=int(now if now is not None else time.time()),
                   newest_uts=since_uts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryCursor:
        return cls(**data)


@dataclass(frozen=True)
class HistoryPage:
    """Rows in iteration order (ascending time for oldest-first) and the cursor to persist with them."""

    rows: list[Scrobble]
    cursor: HistoryCursor
    page_index: int  # 1-based position in this run
    total_pages: int  # pages in this run's window (progress display)
    total_rows: int  # plays in this run's window


def _advance(cursor: HistoryCursor, rows: list[Scrobble]) -> HistoryCursor:
    if not rows:
        return cursor
    hi = max(rows[0].played_uts, rows[-1].played_uts)
    lo = min(rows[0].played_uts, rows[-1].played_uts)
    newest = hi if cursor.newest_uts is None else max(cursor.newest_uts, hi)
    if cursor.order == "oldest_first":
        return replace(cursor, from_ts=hi, newest_uts=newest)
    return replace(cursor, to_ts=lo, newest_uts=newest)


async def iterate_history(source: _RecentTracksSource, cursor: HistoryCursor, *, prefetch: int = 2,
                          page_size: int = PAGE_SIZE) -> AsyncIterator[HistoryPage]:
    """Yield the pages of `cursor`'s window in its order; the last page's cursor has `done=True`.

    Cost: one extra `limit=1` request for oldest-first (to learn the page count); none for
    newest-first (page 1 tells it).
    """
    if cursor.done:
        return
    user, lo, hi = cursor.user, cursor.from_ts, cursor.to_ts

    async def fetch(page: int) -> RecentTracksPage:
        return await source.recent_tracks(user, from_ts=lo, to_ts=hi, page=page, limit=page_size)

    first: RecentTracksPage | None = None
    if cursor.order == "oldest_first":
        probe = await source.recent_tracks(user, from_ts=lo, to_ts=hi, page=1, limit=1)
        total_rows = probe.total
        total_pages = math.ceil(total_rows / page_size)
        pages = list(range(total_pages, 0, -1))
    else:
        first = await fetch(1)
        total_rows, total_pages = first.total, first.total_pages
        pages = list(range(1, total_pages + 1))

    if not pages:
        yield HistoryPage([], replace(cursor, done=True), 0, 0, 0)
        return

    pending: dict[int, asyncio.Task[RecentTracksPage]] = {}
    window = max(1, prefetch)
    try:
        for index, page in enumerate(pages, start=1):
            for ahead in pages[index - 1:index - 1 + window]:
                if ahead not in pending and not (ahead == 1 and first is not None):
                    pending[ahead] = asyncio.ensure_future(fetch(ahead))
            result = first if (page == 1 and first is not None) else await pending.pop(page)
            rows = result.rows
            if cursor.order == "oldest_first":
                rows = rows[::-1]
            cursor = _advance(cursor, rows)
            if index == len(pages):
                cursor = replace(cursor, done=True)
            yield HistoryPage(rows, cursor, index, total_pages, total_rows)
    finally:
        for task in pending.values():
            task.cancel()
        if pending:
            await asyncio.gather(*pending.values(), return_exceptions=True)
