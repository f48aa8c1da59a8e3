"""Paging a whole history: order, resumable cursors, incremental windows, throughput."""

from __future__ import annotations

import json
from itertools import pairwise

import aiohttp
import pytest

from core.errors import SourceUnavailable
from core.sources.http import RateLimiter
from core.sources.lastfm import LastfmClient
from core.sources.lastfm_history import HistoryCursor
from core.sources.lastfm_models import parse_recent_tracks
from tests.fakes.lastfm_server import LastfmFake, SyntheticHistory
from tests.sources.conftest import FAST_RETRY, make_settings

START, STEP = 1_500_000_000, 60
NOW = START + 10**8


def key(row: object) -> tuple[int, str, str]:
    return (row.played_uts, row.artist, row.track)  # type: ignore[attr-defined]


async def test_full_history_oldest_first(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("big", synthetic=1_050, start_uts=START, step_s=STEP, now_playing=("A", "B", "C"))
    pages = [p async for p in lastfm.history(HistoryCursor.full("big", now=NOW))]
    rows = [r for p in pages for r in p.rows]
    assert len(pages) == 6 and pages[0].total_pages == 6 and pages[0].total_rows == 1_050
    assert len(rows) == 1_050 and len({key(r) for r in rows}) == 1_050
    assert [r.played_uts for r in rows] == sorted(r.played_uts for r in rows)  # ascending
    assert rows[0].played_uts == START
    assert pages[-1].cursor.done and pages[-1].cursor.newest_uts == START + 1_049 * STEP
    assert not any(p.cursor.done for p in pages[:-1])
    # each page's cursor resumes right after that page
    assert pages[0].cursor.from_ts == pages[0].rows[-1].played_uts


async def test_full_history_newest_first(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("big", synthetic=450, start_uts=START, step_s=STEP)
    cursor = HistoryCursor.full("big", now=NOW, order="newest_first")
    rows = [r async for p in lastfm.history(cursor) for r in p.rows]
    assert len(rows) == 450
    assert [r.played_uts for r in rows] == sorted((r.played_uts for r in rows), reverse=True)


@pytest.mark.parametrize("order", ["oldest_first", "newest_first"])
async def test_resume_from_a_persisted_cursor_leaves_no_gap(
        lastfm: LastfmClient, lastfm_fake: LastfmFake, order: str) -> None:
    lastfm_fake.add_user("big", synthetic=1_000, start_uts=START, step_s=STEP)
    committed: set[tuple[int, str, str]] = set()
    stored: str | None = None
    async for page in lastfm.history(HistoryCursor.full("big", now=NOW, order=order)):  # type: ignore[arg-type]
        committed |= {key(r) for r in page.rows}
        stored = json.dumps(page.cursor.to_dict())  # persisted in the same transaction
        if page.page_index == 2:
            break  # "crash"
    assert stored is not None
    # meanwhile the user keeps scrobbling: new plays after the frozen upper bound are not included
    cursor = HistoryCursor.from_dict(json.loads(stored))
    async for page in lastfm.history(cursor):
        committed |= {key(r) for r in page.rows}  # the boundary second is re-read: dedupe
    history = SyntheticHistory(1_000, START, STEP)
    expected = {(uts, artist, track) for uts, artist, _, track in map(history.play, range(1_000))}
    assert committed == expected


async def test_incremental_window(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("rj", synthetic=500, start_uts=START, step_s=STEP)
    high_water = START + 399 * STEP
    cursor = HistoryCursor.incremental("rj", high_water, now=NOW)
    pages = [p async for p in lastfm.history(cursor)]
    rows = [r for p in pages for r in p.rows]
    assert rows[0].played_uts == high_water  # inclusive boundary (a duplicate to ignore)
    assert len(rows) == 101
    assert pages[-1].cursor.done and pages[-1].cursor.newest_uts == START + 499 * STEP
    # nothing new: one probe, one empty "done" page
    empty = [p async for p in lastfm.history(HistoryCursor.incremental("rj", NOW, now=NOW + 10))]
    assert len(empty) == 1 and empty[0].rows == [] and empty[0].cursor.done


async def test_done_cursor_yields_nothing(lastfm: LastfmClient) -> None:
    cursor = HistoryCursor(user="x", to_ts=1, done=True)
    assert [p async for p in lastfm.history(cursor)] == []


async def test_failure_mid_history_propagates(lastfm: LastfmClient, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("big", synthetic=1_000, start_uts=START, step_s=STEP)
    seen = 0
    with pytest.raises(SourceUnavailable):
        async for _ in lastfm.history(HistoryCursor.full("big", now=NOW), prefetch=3):
            seen += 1
            if seen == 2:
                lastfm_fake.fail_next("http", status=503, count=50)
    assert seen >= 2


def test_a_full_page_parses_every_row_in_order() -> None:
    """A 200-row page (the size a 1,000,000-scrobble import reads 5,000 times) parses to 200 plays in
    page order. Its speed is a figure of `scripts/bench sync` (key `parse`), not a timed test."""
    rows = [{"artist": {"mbid": "", "#text": f"Artist {i}"}, "streamable": "0", "image": [], "mbid": "",
             "album": {"mbid": "", "#text": "Album"}, "name": f"Track {i}", "url": "https://www.last.fm/x",
             "date": {"uts": str(1_600_000_000 + i), "#text": "x"}} for i in range(200)]
    body = json.dumps({"recenttracks": {"track": rows, "@attr": {
        "user": "u", "page": "1", "perPage": "200", "totalPages": "1", "total": "200"}}})
    parsed = parse_recent_tracks(json.loads(body)).rows
    assert [(p.artist, p.track) for p in parsed] == [(f"Artist {i}", f"Track {i}") for i in range(200)]


async def test_forty_thousand_listens_stream_newest_first_without_gaps(lastfm_fake: LastfmFake,
                                                                         http: aiohttp.ClientSession) -> None:
    """200 pages of a 1,000,000-scrobble history arrive complete, newest first, each listen once
    (the speed of a real sync is a figure of `scripts/bench sync`, not a timed test)."""
    lastfm_fake.add_user("big", synthetic=1_000_000, start_uts=START, step_s=STEP)
    client = LastfmClient(make_settings(**lastfm_fake.settings_overrides()), http,
                          RateLimiter(10_000, burst=100), retry=FAST_RETRY)
    stamps: list[int] = []
    async for page in client.history(HistoryCursor.full("big", now=NOW, order="newest_first")):
        stamps.extend(row.played_uts for row in page.rows)
        if len(stamps) >= 40_000:
            break
    assert len(stamps) == 40_000 == len(set(stamps))
    assert all(a > b for a, b in pairwise(stamps))
