"""The sync engine against the local Last.fm fake and a real database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import func, select

from core.cleaning import printable
from core.config import Settings
from core.db.models import Album, Artist, Listen, Track
from core.db.repositories import AccountRepository, ListenRepository, UserRepository
from core.services import Services
from core.sources.http import RateLimiter, RetryPolicy
from core.sources.lastfm import LastfmClient
from core.sync.engine import LastfmSync
from tests.fakes.lastfm_server import LastfmFake

FAST_RETRY = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.02)
START = 1_700_000_000


def plays(n: int, offset: int = 0) -> list[tuple[int, str, str, str]]:
    return [(START + (offset + i) * 60, f"Artist {(offset + i) % 37}", f"Album {(offset + i) % 11}",
             f"Track {(offset + i) % 97}") for i in range(n)]


@pytest.fixture
async def fake() -> AsyncIterator[LastfmFake]:
    async with LastfmFake() as server:
        yield server


@pytest.fixture
async def sync(services: Services, fake: LastfmFake) -> AsyncIterator[LastfmSync]:
    settings = Settings(_env_file=None, **fake.settings_overrides())  # type: ignore[arg-type]
    async with aiohttp.ClientSession() as http:
        client = LastfmClient(settings, http, RateLimiter(1000, burst=50), retry=FAST_RETRY, timeout_s=2)
        yield LastfmSync(services, client, owner="test-worker")


async def _link(services: Services, username: str, discord_id: int = 9001) -> tuple[int, int]:
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(discord_id, username)
        account = await AccountRepository.without_cipher(s).link(user.id, "lastfm", username)
        return user.id, account.id


async def _listens(services: Services, user_id: int) -> int:
    async with services.session() as s:
        return await ListenRepository(s).count_listens(user_id)


async def test_full_import_then_incremental_without_duplicates(services: Services, sync: LastfmSync,
                                                               fake: LastfmFake) -> None:
    history = plays(650)
    fake.add_user("rj", scrobbles=history, now_playing=("Now Artist", "Now Album", "Now Track"))
    user_id, account_id = await _link(services, "rj")
    report = await sync.sync_account(account_id)
    assert report.status == "ok" and report.inserted == 650 and report.pages == 4
    assert await _listens(services, user_id) == 650, "the now-playing row is never stored"

    again = await sync.sync_account(account_id)  # nothing new: boundary re-read, nothing inserted
    assert again.status == "ok" and again.inserted == 0

    fake.users["rj"].plays.extend(plays(5, offset=650))
    newer = await sync.sync_account(account_id)
    assert newer.inserted == 5
    assert await _listens(services, user_id) == 655
    async with services.session() as s:
        account = await AccountRepository.without_cipher(s).by_id(account_id)
        assert account is not None and account.history_complete and account.last_sync_status == "ok"
        dupes = (await s.execute(select(func.count()).select_from(
            select(Listen.played_at, Listen.track_id).group_by(Listen.played_at, Listen.track_id)
            .having(func.count() > 1).subquery()))).scalar_one()
        assert dupes == 0


async def test_outage_mid_import_resumes_from_cursor_and_loses_nothing(services: Services, sync: LastfmSync,
                                                                      fake: LastfmFake) -> None:
    fake.add_user("kim", scrobbles=plays(1000))
    user_id, account_id = await _link(services, "kim")
    sync.prefetch = 1
    sync.commit_rows = 200  # one page per transaction
    # probe + 2 pages succeed, then the service is down for longer than the retries last
    fake.fail_next("error", code=11, count=10, method="user.getRecentTracks", after=3)
    first = await sync.sync_account(account_id)
    assert first.status == "error" and first.reason == "lastfm_unavailable"
    stored = await _listens(services, user_id)
    assert 0 < stored < 1000
    async with services.session() as s:
        account = await AccountRepository.without_cipher(s).by_id(account_id)
        assert account is not None and account.sync_cursor and not account.sync_cursor["done"]
        assert account.last_failure_reason == "lastfm_unavailable"

    fake.failures.clear()
    second = await sync.sync_account(account_id)
    assert second.status == "ok"
    assert await _listens(services, user_id) == 1000


@pytest.mark.parametrize(("setup", "reason"), [("private", "lastfm_private"), ("missing", "lastfm_user_not_found")])
async def test_account_problems_are_stored_reasons(services: Services, sync: LastfmSync, fake: LastfmFake,
                                                   setup: str, reason: str) -> None:
    if setup == "private":
        fake.add_user("shy", scrobbles=plays(3), private=True)
    _, account_id = await _link(services, "shy" if setup == "private" else "nobody")
    report = await sync.sync_account(account_id)
    assert report.status == "error" and report.reason == reason
    async with services.session() as s:
        account = await AccountRepository.without_cipher(s).by_id(account_id)
        assert account is not None
        assert account.last_failure_reason == reason and account.last_failure_message
        assert account.lock_owner is None, "the lock is released after a failure"


async def test_one_sync_per_account_at_a_time(services: Services, sync: LastfmSync, fake: LastfmFake) -> None:
    fake.add_user("busy", scrobbles=plays(400))
    user_id, account_id = await _link(services, "busy")
    other = LastfmSync(services, sync.client, owner="other-process")
    # a slow first page keeps the first sync holding the lock while the second one arrives
    fake.fail_next("slow", delay=0.5, method="user.getRecentTracks")
    reports = await asyncio.gather(sync.sync_account(account_id), other.sync_account(account_id))
    assert sorted(r.status for r in reports) == ["busy", "ok"]
    assert await _listens(services, user_id) == 400


# --- names cleaned at the ingest boundary (NUL stopped PostgreSQL imports for good) ---------------

LONG = "Ω" * 400  # over Artist.name (300) and near Track.title (500)

#: (artist, album, track) as Last.fm serves them -> (artist, album, track) as stored, or None: skipped
HOSTILE = [
    (("Nul\x00l Band", "Al\x00bum", "Tr\x00ack"), ("Null Band", "Album", "Track")),
    (("\x1b[31mRed\x1b[0m", "\x1b]0;title\x07Alb", "Song\x7f\x9b"), ("[31mRed[0m", "]0;titleAlb", "Song")),
    (("Tab\tand\nnewline", "  spaced   album ", "line\u2028sep"), ("Tab and newline", "spaced album", "line sep")),
    (("Beyonce\u0301 🎵", "Ａｌｂｕｍ", "👩\u200d👩\u200d👧 family"), ("Beyonce\u0301 🎵", "Ａｌｂｕｍ", "👩\u200d👩\u200d👧 family")),
    ((LONG, "A" * 700, "T" * 700), ("Ω" * 300, "A" * 500, "T" * 500)),
    (("\x00", "Nothing", "Only NUL artist"), None),
    (("Artist", "Album", "\x00\x01\x02"), None),
    (("Good Artist", "Good Album", "Good Track"), ("Good Artist", "Good Album", "Good Track")),
]


async def stored_plays(services: Services, user_id: int) -> set[tuple[str, str | None, str]]:
    async with services.session() as s:
        rows = (await s.execute(
            select(Artist.name, Album.title, Track.title).select_from(Listen)
            .join(Track, Track.id == Listen.track_id).join(Artist, Artist.id == Track.artist_id)
            .outerjoin(Album, Album.id == Track.album_id).where(Listen.user_id == user_id))).all()
    return {tuple(r) for r in rows}  # type: ignore[misc]


async def test_lastfm_sync_stores_cleaned_names_and_skips_unusable_rows(
        services: Services, sync: LastfmSync, fake: LastfmFake, caplog: pytest.LogCaptureFixture) -> None:
    # every hostile row twice (in two pages) among ordinary plays: one bad row must not stop the rest
    history = [(START + i * 60, f"Band {i % 7}", f"Album {i % 3}", f"Song {i}") for i in range(400)]
    for n, ((artist, album, track), _) in enumerate(HOSTILE * 2):
        history.append((START + 400 * 60 + n * 60, artist, album, track))
    fake.add_user("odd", scrobbles=history)
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(4242, "odd")
        account = await AccountRepository.without_cipher(s).link(user.id, "lastfm", "odd")
    with caplog.at_level(logging.WARNING, logger="core.sync.ingest"):
        report = await sync.sync_account(account.id)
    assert report.status == "ok", report
    skipped = sum(1 for _, out in HOSTILE if out is None) * 2
    assert await _listens(services, user.id) == len(history) - skipped
    stored = await stored_plays(services, user.id)
    expected = {out for _, out in HOSTILE if out is not None}
    assert expected <= stored
    for artist, album, track in stored:
        for name in (artist, album or "", track):
            assert printable(name) == name or "\u200d" in name or "\u0301" in name, repr(name)
            assert "\x00" not in name
    skipped_lines = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert skipped_lines and sum(int(r.getMessage().split()[1]) for r in skipped_lines) == skipped
    assert all(getattr(r, "user_id", None) == user.id for r in skipped_lines), [vars(r) for r in skipped_lines]
    assert all("lastfm play at 2023-" in r.getMessage() for r in skipped_lines)
