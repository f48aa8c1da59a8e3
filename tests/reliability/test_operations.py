"""Operations: structured logs with context, /healthz with the scheduler, graceful shutdown mid-sync.

What this proves:
- A command run through the fake Discord produces JSON log lines (the `setup_logging` formatter) that
  carry `command`, `user_id` and `guild_id`: for a refusal (INFO) and for a crash (ERROR, with the
  traceback in `exc`, while the user gets the short apology).
- /healthz reports database, cache and scheduler status, wired as `bot/app.py` wires it (a real
  `SonanceScheduler` and `scheduler_probe`): leader while running, stopped after `stop()`, and 503
  when the database is unreachable.
- Closing the services while a Last.fm import is in flight (what `sonance run` does on SIGTERM)
  leaves no sync lock held and no half-written batch; the next run resumes from the stored cursor
  and ends with exactly the full history.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import scheduler_probe
from bot.web import PROBES_KEY, build_web_app
from core.config import Settings
from core.db.models import ArtistPlays, Lease, LinkedAccount, Listen
from core.db.repositories import AccountRepository, UserRepository
from core.logs import setup_logging
from core.scheduler import LEASE_NAME, JobSet, SonanceScheduler
from core.services import Services, build_services
from core.stats import StatsService
from core.sync.engine import LastfmSync
from tests.bot.world import GUILD_ID, MEMBERS
from tests.conftest import make_settings
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.lastfm_server import LastfmFake
from tests.reliability import test_privacy as world

# the reliability world (bot against the fake Discord, Last.fm/Spotify fakes)
fake, sonance, world_services = world.fake, world.sonance, world.world_services
lastfm_fake, spotify_fake, bot_settings = world.lastfm_fake, world.spotify_fake, world.bot_settings


# ------------------------------------------------------------------------------------ structured logs


@pytest.fixture
def json_lines(bot_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """`setup_logging` with SONANCE_LOG_JSON=true, as in production, writing to a buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("discord").level)
    monkeypatch.setattr(sys, "stderr", buffer)
    setup_logging(bot_settings.model_copy(update={"log_json": True, "log_level": "INFO"}))
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]
    logging.getLogger("discord").setLevel(saved[2])


def parsed(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


async def test_command_logs_are_json_with_command_user_and_guild(
        json_lines: io.StringIO, sonance: FakeDiscord, world_services: Services,
        monkeypatch: pytest.MonkeyPatch) -> None:
    alice = MEMBERS["alice"].fake.id
    refused = await world.run(sonance, "whoknows", "alice", {"artist": "Nonexistent Band"})
    assert refused.ephemeral

    async def broken(self: StatsService, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database fell over")

    monkeypatch.setattr(StatsService, "who_knows", broken)
    crashed = await world.run(sonance, "whoknows", "alice", {"artist": "Radiohead"})
    assert "Sorry, something went wrong" in (crashed.content or "") and "fell over" not in (crashed.content or "")

    lines = parsed(json_lines)
    refusal = next(line for line in lines if line["message"].startswith("refused:"))
    failure = next(line for line in lines if line["message"] == "command failed")
    for line in (refusal, failure):
        assert (line["command"], line["user_id"], line["guild_id"]) == ("whoknows", alice, GUILD_ID)
        assert {"ts", "level", "logger"} <= set(line)
    assert refusal["level"] == "INFO" and failure["level"] == "ERROR"
    assert "RuntimeError: database fell over" in failure["exc"]


# ------------------------------------------------------------------------------------ /healthz


async def test_healthz_reports_database_cache_and_scheduler(services: Services) -> None:
    ran = asyncio.Event()

    async def tick() -> None:
        ran.set()

    scheduler = SonanceScheduler(services, JobSet(extra={"tick": ({"trigger": "interval", "seconds": 1}, tick)}),
                                 owner="healthz-test", lease_ttl_s=3, renew_every_s=1)
    app = build_web_app(services)
    app[PROBES_KEY].append(scheduler_probe(scheduler))  # exactly as bot/app.py registers it
    async with TestClient(TestServer(app)) as web:
        resp = await web.get("/healthz")
        body = await resp.json()
        assert resp.status == 200
        assert body == {"database": "ok", "cache": "ok", "explainer": "off", "scheduler": "stopped", "jobs": 1,
                        "status": "ok"}

        scheduler.start()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if scheduler.status()["scheduler"] == "leader":
                    break
                await asyncio.sleep(0.05)
            body = await (await web.get("/healthz")).json()
            assert body["scheduler"] == "leader" and body["status"] == "ok"
            await asyncio.wait_for(ran.wait(), 10)  # and the leader really runs its jobs
        finally:
            await scheduler.stop()
        body = await (await web.get("/healthz")).json()
        assert body["scheduler"] == "stopped"
        async with services.session() as s:  # a graceful stop hands the lease over at once
            assert await s.get(Lease, LEASE_NAME) is None

        await services.engine.dispose()
        real = services.engine.url
        from core.db.engine import create_engine

        broken = create_engine("sqlite+aiosqlite:////nonexistent-dir/x.db" if real.get_backend_name() == "sqlite"
                               else real.set(port=1).render_as_string(False))
        healthy_engine, services.engine = services.engine, broken
        try:
            resp = await web.get("/healthz")
            body = await resp.json()
            assert resp.status == 503 and body["status"] == "unhealthy"
            assert body["database"].startswith("error") and body["cache"] == "ok"
        finally:
            services.engine = healthy_engine
            await broken.dispose()


# ------------------------------------------------------------------------------------ graceful shutdown


async def _state(settings: Settings, account_id: int, user_id: int) -> tuple[LinkedAccount, int, int]:
    services = await build_services(settings, upgrade_schema=False)
    try:
        async with services.session() as s:
            account = await s.get(LinkedAccount, account_id)
            assert account is not None
            listens = int((await s.execute(select(func.count()).select_from(Listen)
                                           .where(Listen.user_id == user_id))).scalar_one())
            plays = int((await s.execute(select(func.coalesce(func.sum(ArtistPlays.plays), 0))
                                         .where(ArtistPlays.user_id == user_id))).scalar_one())
        return account, listens, plays
    finally:
        await services.close()


async def test_shutdown_mid_import_holds_no_lock_and_the_next_run_resumes(
        database_url: str, tmp_path: Path, lastfm_fake: LastfmFake) -> None:
    settings = make_settings(database_url, tmp_path, **lastfm_fake.settings_overrides())
    lastfm_fake.add_user("longfm", synthetic=1000)  # 5 pages of 200
    lastfm_fake.fail_next("slow", delay=4.0, method="user.getRecentTracks", after=3)  # a probe, pages 1-2, then page 3 hangs

    services = await build_services(settings, upgrade_schema=False)
    await services.start_clients()
    services.lastfm_sync = LastfmSync(services, services.lastfm, prefetch=1, commit_rows=200)  # type: ignore[arg-type]
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(4242, "Long")
        account = await AccountRepository(s, services.cipher).link(user.id, "lastfm", "longfm")
        user_id, account_id = user.id, account.id
    assert services.accounts.start_import(account_id)

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait until two batches are committed and a request hangs
        async with services.session() as s:
            n = int((await s.execute(select(func.count()).select_from(Listen).where(Listen.user_id == user_id)))
                    .scalar_one())
        if n >= 400:
            break
        await asyncio.sleep(0.02)
    started = time.monotonic()
    await services.close()  # what `sonance run` does last on SIGTERM
    assert time.monotonic() - started < 5, "shutdown waited for the hanging request"

    account, listens, plays = await _state(settings, account_id, user_id)
    assert account.lock_owner is None and account.lock_expires_at is None, "a sync lock outlived the process"
    assert listens % 200 == 0 and 400 <= listens < 1000, listens  # whole committed batches only
    assert plays == listens, "artist_plays disagrees with the listens: a half-written batch"
    assert account.sync_cursor and not account.history_complete

    # the next process resumes from the cursor and ends with exactly the full history
    services = await build_services(settings, upgrade_schema=False)
    try:
        await services.start_clients()
        assert services.lastfm is not None
        report = await LastfmSync(services, services.lastfm).sync_account(account_id)
        assert report.status == "ok" and report.inserted == 1000 - listens  # nothing twice, nothing lost
    finally:
        await services.close()
    account, listens, plays = await _state(settings, account_id, user_id)
    assert (listens, plays) == (1000, 1000)
    assert account.history_complete and account.last_sync_status == "ok" and account.lock_owner is None
