"""Fault tests against real servers: what users and jobs see when a dependency misbehaves.

Each test breaks one dependency for real (no mocks) and checks the product's promise:
- Redis stopped (and frozen) mid-run: commands through the fake Discord keep answering within the 3 s
  ack without cache, one warning per outage is logged, and the cache works again once Redis is back.
- PostgreSQL restarted (`pg_ctl restart -m fast`) in the middle of a sync transaction: that run fails
  cleanly (nothing half-written, the failure stored, the lock released), the pool recovers without
  rebuilding the engine, and the next run completes with exactly the history, no duplicates.
- Last.fm 5xx/429 storms across concurrent syncs: retries honour Retry-After, the shared limiter keeps
  the request rate within settings, a sync that gives up stores `lastfm_unavailable` and keeps its
  cursor, and a later run catches up without duplicates.
- AOTY challenge storms: SourceUnavailable, never an empty album; nothing stored or cached as a miss.
- A hanging LLM endpoint: the template within the timeout, the model asked again after the cool-down,
  and /compat and "Why?" still answer in time through the fake Discord.

Servers that get stopped or restarted are PRIVATE instances on free ports (tests/fakes/
private_services.py); the shared PostgreSQL/Redis of SONANCE_TEST_* are only used as the ordinary test
database where nothing is broken.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis import asyncio as aioredis
from sqlalchemy import event, func, select, text

from core.cache import InProcessCache, RedisCache
from core.config import Settings
from core.db.models import Album, ItemTag, Listen
from core.db.models import AotyAlbum as AotyAlbumRow
from core.db.repositories import AccountRepository, ListenRepository, UserRepository
from core.domain import Evidence, Kind, Recommendation, Weighted
from core.errors import SourceUnavailable
from core.explain.budget import CallBudget
from core.explain.grounded import GroundedExplainer
from core.explain.openai_explainer import OpenAIExplainer
from core.explain.template import TemplateExplainer
from core.services import Services, build_services
from core.sources.aoty import AotyClient
from core.sources.http import RateLimiter, RetryPolicy, SerialGate, SourceLimiters
from core.sources.lastfm import LastfmClient
from core.sync.engine import LastfmSync
from core.sync.enrichment import AOTY_NAMESPACE, AotyFactsService
from core.sync.ingest import RawListen, ingest_listens
from tests.bot.world import GUILD_ID, MEMBERS
from tests.conftest import REDIS_URL, make_settings
from tests.fakes.aoty_server import CHALLENGE_HTML, TEST_ALBUM_PATH, AotyFake
from tests.fakes.discord_server import FakeDiscord, InteractionRecord, SentMessage
from tests.fakes.lastfm_server import LastfmFake
from tests.fakes.openai_server import FakeOpenAIServer, grounded_echo, slow
from tests.fakes.private_services import PrivatePostgres, PrivateRedis
from tests.reliability.conftest import bot_world

ACK_DEADLINE_S = 3.0
APOLOGY = "something went wrong on my side"
START = 1_700_000_000


# ------------------------------------------------------------------------------------- helpers


def uid(name: str) -> int:
    return MEMBERS[name].fake.id


def bot_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    return make_settings(database_url, tmp_path, DISCORD_DEV_GUILD_ID=str(GUILD_ID),
                         SONANCE_PUBLIC_BASE_URL="http://127.0.0.1:8080", **overrides)


async def ask(fake: FakeDiscord, name: str, user: str, options: dict[str, object] | None = None, *,
              within: float = 30.0) -> tuple[InteractionRecord, SentMessage, float]:
    """A slash command; asserts the 3 s ack, no protocol error and no apology. Returns the final answer."""
    started = time.monotonic()
    record = await fake.dispatch(fake.slash(name, options=options or {}, user=fake.user(user)))
    final = await record.wait_final(timeout=within)
    elapsed = time.monotonic() - started
    assert record.ack_latency is not None and record.ack_latency < ACK_DEADLINE_S, (name, record.ack_latency)
    assert not record.rejected_callbacks
    assert APOLOGY not in (final.content or "").lower(), (name, final.content)
    return record, final, elapsed


async def click(fake: FakeDiscord, custom_id: str, user: str, message: SentMessage | None = None
                ) -> tuple[SentMessage, float]:
    started = time.monotonic()
    record = await fake.dispatch(fake.button(custom_id, message=message, user=fake.user(user)))
    final = await record.wait_final(timeout=30.0)
    elapsed = time.monotonic() - started
    assert record.ack_latency is not None and record.ack_latency < ACK_DEADLINE_S
    assert not record.rejected_callbacks
    assert APOLOGY not in (final.content or "").lower()
    return final, elapsed


def plays(n: int, offset: int = 0) -> list[tuple[int, str, str, str]]:
    return [(START + (offset + i) * 60, f"Artist {(offset + i) % 37}", f"Album {(offset + i) % 11}",
             f"Track {(offset + i) % 97}") for i in range(n)]


async def link_lastfm(services: Services, username: str, discord_id: int) -> tuple[int, int]:
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(discord_id, username)
        account = await AccountRepository.without_cipher(s).link(user.id, "lastfm", username)
        return int(user.id), int(account.id)


async def listen_count(services: Services, user_id: int) -> int:
    async with services.session() as s:
        return await ListenRepository(s).count_listens(user_id)


async def duplicate_listens(services: Services) -> int:
    async with services.session() as s:
        return int((await s.execute(select(func.count()).select_from(
            select(Listen.user_id, Listen.played_at, Listen.track_id)
            .group_by(Listen.user_id, Listen.played_at, Listen.track_id)
            .having(func.count() > 1).subquery()))).scalar_one())


def messages(caplog: pytest.LogCaptureFixture, fragment: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if fragment in r.getMessage()]


# --------------------------------------------------------------------------------------- Redis

BACKOFF_S = 0.3  # RedisCache's retry back-off for the test (production: 5 s)


async def test_redis_stopped_frozen_and_restarted_mid_run(database_url: str, tmp_path: Path,
                                                          private_redis: PrivateRedis,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="core.cache")

    async def short_backoff(services: Services) -> None:
        await services.cache.close()
        services.cache = RedisCache(private_redis.url, retry_after_s=BACKOFF_S)

    settings = bot_settings(database_url, tmp_path, REDIS_URL=private_redis.url)
    async with bot_world(settings, prepare=short_backoff) as (fake, services):
        _, healthy, _ = await ask(fake, "compat", "alice", {"member": uid("bob")})
        assert healthy.embeds
        raw = aioredis.from_url(private_redis.url, decode_responses=True)
        try:
            assert await raw.keys("sonance:v1:compat:*"), "the healthy command used the cache"
        finally:
            await raw.aclose()

        # --- Redis stopped: every command still answers (no apology, ack in time), one warning only
        private_redis.stop()
        outage = [("compat", "bob", {"member": uid("alice")}), ("leaderboard", "carol", None),
                  ("matches", "dave", None), ("recommend", "alice", {"count": 3}),
                  ("compat", "carol", {"member": uid("alice")})]
        for name, user, options in outage:
            _, final, _ = await ask(fake, name, user, options)
            assert final.embeds or final.content, name
            await asyncio.sleep(BACKOFF_S + 0.05)  # let the cache try Redis again before the next command
        assert len(messages(caplog, "cache unavailable")) == 1, messages(caplog, "cache unavailable")
        assert (await services.health()) == {"database": "ok", "cache": "degraded"}

        # --- Redis back (empty: no persistence): writes and reads work again, "back" logged once
        private_redis.start()
        await asyncio.sleep(BACKOFF_S + 0.05)
        _, after, _ = await ask(fake, "compat", "dave", {"member": uid("alice")})
        assert after.embeds
        raw = aioredis.from_url(private_redis.url, decode_responses=True)
        try:
            written = await raw.keys("sonance:v1:compat:*")
            assert written, "the first command after the restart wrote to Redis again"
            key = written[0].split(":compat:", 1)[1]
            assert isinstance(await services.cache.get("compat", key), dict), "and reads come from Redis"
        finally:
            await raw.aclose()
        assert len(messages(caplog, "cache back")) == 1
        assert (await services.health())["cache"] == "ok"

        # --- Redis hung (SIGSTOP): a socket timeout, then misses; still answered within the ack
        private_redis.freeze()
        try:
            _, frozen, elapsed = await ask(fake, "compat", "bob", {"member": uid("carol")})
            assert frozen.embeds and elapsed < ACK_DEADLINE_S + 2
            assert len(messages(caplog, "cache unavailable")) == 2, "one warning per outage"
        finally:
            private_redis.thaw()
        await asyncio.sleep(BACKOFF_S + 0.05)
        assert await services.cache.ping()
        assert len(messages(caplog, "cache back")) == 2
        fake.assert_clean()


# ---------------------------------------------------------------------------------- PostgreSQL

FAST_RETRY = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=5.0)


async def test_postgres_restart_mid_sync_transaction_resumes_without_loss(private_postgres: PrivatePostgres,
                                                                         tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    total, batch = 2000, 200
    async with LastfmFake() as lastfm:
        lastfm.add_user("pat", scrobbles=plays(total))
        settings = make_settings(private_postgres.url, tmp_path, REDIS_URL=None, **lastfm.settings_overrides())
        services = await build_services(settings)  # runs core.db.migrate.upgrade on the private cluster
        try:
            user_id, account_id = await link_lastfm(services, "pat", 7001)
            async with services.engine.connect() as conn:
                booted = (await conn.execute(text("SELECT pg_postmaster_start_time()"))).scalar_one()

            restarted: list[float] = []
            listen_inserts = 0

            def restart_inside_third_batch(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                """Right after batch 3's listens are inserted (uncommitted), restart the server."""
                nonlocal listen_inserts
                if "INSERT INTO listens" in statement:
                    listen_inserts += 1
                    if listen_inserts == 3 and not restarted:
                        started = time.monotonic()
                        private_postgres.restart("fast")
                        restarted.append(time.monotonic() - started)

            async with aiohttp.ClientSession() as http:
                client = LastfmClient(settings, http, RateLimiter(1000, burst=50), retry=FAST_RETRY, timeout_s=5)
                sync = LastfmSync(services, client, owner="fault-worker", prefetch=1, commit_rows=batch)
                event.listen(services.engine.sync_engine, "after_cursor_execute", restart_inside_third_batch)
                try:
                    first = await sync.sync_due()  # the scheduler's entry point: catches what escapes
                finally:
                    event.remove(services.engine.sync_engine, "after_cursor_execute", restart_inside_third_batch)
                assert restarted, "the server was restarted during the run"

                # that run failed, and the failure is visible; the in-flight batch left nothing behind
                assert [(r.account_id, r.status) for r in first] == [(account_id, "error")]
                assert await listen_count(services, user_id) == 2 * batch, "batches 1-2 kept, batch 3 rolled back"
                async with services.session() as s:
                    account = await AccountRepository.without_cipher(s).by_id(account_id)
                    assert account is not None
                    assert account.lock_owner is None, "the lock is released once the server is back"
                    assert account.last_sync_status == "error" and account.last_failure_reason, \
                        "a crashed run must not stay 'running' (that blocks re-link imports)"
                    assert account.sync_cursor and not account.sync_cursor["done"]
                    assert account.sync_cursor["from_ts"] == plays(total)[2 * batch - 1][0]

                # the pool recovered by itself (pool_pre_ping): same engine, new server process
                async with services.engine.connect() as conn:
                    now_booted = (await conn.execute(text("SELECT pg_postmaster_start_time()"))).scalar_one()
                assert now_booted > booted
                assert (await services.health())["database"] == "ok"

                # the next run resumes from the stored cursor and completes: every listen exactly once
                second = await sync.sync_account(account_id)
                assert second.status == "ok" and second.complete
                assert second.inserted == total - 2 * batch
            assert await listen_count(services, user_id) == total
            assert await duplicate_listens(services) == 0
            async with services.session() as s:
                account = await AccountRepository.without_cipher(s).by_id(account_id)
                assert account is not None and account.history_complete and account.last_sync_status == "ok"
                assert account.lock_owner is None and account.last_failure_reason is None
        finally:
            await services.close()


# ------------------------------------------------------------------------------ Last.fm storms

STORM_RATE = 25.0  # LASTFM_REQUESTS_PER_SECOND for the storm
ARRIVAL_JITTER_S = 0.1  # how late a request may reach the fake after the limiter let it go
STORM_RETRY = RetryPolicy(attempts=5, base_delay_s=0.02, max_delay_s=0.1, max_retry_after_s=5.0)


@pytest.fixture
async def lastfm() -> AsyncIterator[LastfmFake]:
    async with LastfmFake() as server:
        yield server


async def test_lastfm_5xx_and_429_storm_across_concurrent_syncs(services: Services, lastfm: LastfmFake) -> None:
    users = {f"storm{i}": 1000 for i in range(4)}
    for i, (name, n) in enumerate(users.items()):
        lastfm.add_user(name, scrobbles=plays(n, offset=i * 10_000))
    accounts = {name: await link_lastfm(services, name, 8100 + i) for i, name in enumerate(users)}

    # Targeted first (a user's requests take its own failures before the shared ones):
    # storm1's first request is a 429 with Retry-After; storm3's Last.fm "goes down" after 2 requests
    # for longer than the retries of its two in-flight pages (prefetch 2) last.
    lastfm.fail_next("429", retry_after=0.4, user="storm1", method="user.getRecentTracks")
    lastfm.fail_next("http", status=502, count=12, user="storm3", method="user.getRecentTracks", after=2)
    for kind, extra in [("http", {"status": 500}), ("429", {"retry_after": 0.2}),
                        ("error", {"code": 11, "status": 503}), ("http", {"status": 503}),
                        ("error", {"code": 29, "status": 429, "retry_after": 0.1}),
                        ("error", {"code": 8, "status": 500}), ("error", {"code": 16, "status": 200})]:
        lastfm.fail_next(kind, **extra)  # type: ignore[arg-type]  # shared: taken by whoever asks next

    settings = Settings(_env_file=None, LASTFM_REQUESTS_PER_SECOND=STORM_RATE,  # type: ignore[call-arg]
                        **lastfm.settings_overrides())
    async with aiohttp.ClientSession() as http:
        limiter = SourceLimiters.from_settings(settings).lastfm
        client = LastfmClient(settings, http, limiter, retry=STORM_RETRY, timeout_s=5)
        sync = LastfmSync(services, client, owner="storm-worker", commit_rows=200)
        reports = {r.account_id: r for r in await sync.sync_due(concurrency=4)}
        assert set(reports) == {a for _, a in accounts.values()}

        by_name = {name: reports[account_id] for name, (_, account_id) in accounts.items()}
        for name, report in by_name.items():
            assert report.status == "ok" or report.reason == "lastfm_unavailable", (name, report)
        # 7 shared failures cannot exhaust 5 attempts twice: at least two of the others got through
        assert sum(by_name[n].status == "ok" for n in ("storm0", "storm1", "storm2")) >= 2, by_name
        down = by_name["storm3"]
        assert down.status == "error" and down.reason == "lastfm_unavailable"
        storm3_user, storm3_account = accounts["storm3"]
        assert 0 < await listen_count(services, storm3_user) < users["storm3"], "kept what it had, not all"
        async with services.session() as s:
            account = await AccountRepository.without_cipher(s).by_id(storm3_account)
            assert account is not None and account.last_failure_reason == "lastfm_unavailable"
            assert account.sync_cursor and not account.sync_cursor["done"], "the cursor is kept"
            assert account.lock_owner is None

        # Retry-After honoured: storm1's second request came no earlier than the 0.4 s it was told
        storm1 = [t for t, m, p in lastfm.log if p.get("user") == "storm1"]
        assert storm1[1] - storm1[0] >= 0.4 - 0.02

        # the shared limiter kept everyone together within LASTFM_REQUESTS_PER_SECOND (burst 1)
        times = sorted(t for t, _, _ in lastfm.log)
        assert len(times) >= 30 and not [f for f in lastfm.failures if f.user is None], "the storm hit"
        # (arrival times at the server, not grant times: the first request also opens the connection
        # and a busy event loop delays some requests so they bunch with the next ones. So the run's
        # span gets ARRIVAL_JITTER_S of slack at its ends, and the 1 s windows a little slack; a limit
        # per process instead of shared would still show as twice the rate.)
        span = times[-1] - times[0]
        assert len(times) - 1 <= STORM_RATE * (span + ARRIVAL_JITTER_S), (len(times), span)
        for i, t in enumerate(times):
            in_window = sum(1 for u in times[i:] if u - t < 1.0)
            assert in_window <= STORM_RATE + 5, f"{in_window} requests within 1 s of request {i}"

        # the storm passes: a later run catches every account up, nothing duplicated
        lastfm.failures.clear()
        for name, (user_id, account_id) in accounts.items():
            report = await sync.sync_account(account_id)
            assert report.status == "ok" and report.complete, (name, report)
            assert await listen_count(services, user_id) == users[name], name
    assert await duplicate_listens(services) == 0
    async with services.session() as s:
        for _, account_id in accounts.values():
            account = await AccountRepository.without_cipher(s).by_id(account_id)
            assert account is not None and account.history_complete and account.last_sync_status == "ok"


# --------------------------------------------------------------------------------- AOTY storms

ALBUM_PATH = TEST_ALBUM_PATH
AOTY_RETRY = RetryPolicy(attempts=3, base_delay_s=0.02, max_delay_s=0.05, max_retry_after_s=1.0)


@pytest.fixture
async def aoty() -> AsyncIterator[AotyFake]:
    async with AotyFake() as fake:
        fake.add_test_album()
        yield fake


async def test_aoty_challenge_storm_is_unavailable_never_empty(services: Services, aoty: AotyFake) -> None:
    settings = Settings(_env_file=None, AOTY_BASE_URL=aoty.base_url, AOTY_MIN_INTERVAL_S=0.01)  # type: ignore[call-arg]
    albums = [("Test Band", "Double Feature"), *((f"Band {i}", f"Record {i}") for i in range(5))]
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(9301, "crate digger")
        await ingest_listens(s, user.id, [
            RawListen(artist=a, album=t, track=f"{t} opener", source="lastfm",
                      played_at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=i))
            for i, (a, t) in enumerate(albums)])
        by_title = {title: album for title, album in await s.execute(select(Album.title, Album.id))}
    assert set(by_title) == {t for _, t in albums}
    album_ids = list(by_title.values())

    async with aiohttp.ClientSession() as http:
        client = AotyClient(settings, http, SerialGate(0.01), retry=AOTY_RETRY)

        # every challenge flavour, and a 429 that never ends: an error, never an empty result
        flavours = {"403": lambda: setattr(aoty, "challenge", "403"),
                    "header": lambda: setattr(aoty, "challenge", "header"),
                    "body": lambda: aoty.pages.__setitem__(ALBUM_PATH, CHALLENGE_HTML),
                    "429": lambda: aoty.fail_next("429", retry_after=0.05, count=10)}
        original = aoty.pages[ALBUM_PATH]
        for name, apply in flavours.items():
            aoty.challenge, aoty.pages[ALBUM_PATH] = None, original
            aoty.failures.clear()
            apply()
            with pytest.raises(SourceUnavailable):
                await client.fetch_album(ALBUM_PATH)
            if name in ("403", "header", "429"):
                with pytest.raises(SourceUnavailable):
                    await client.search_albums("double feature")
                with pytest.raises(SourceUnavailable):
                    await client.resolve("Test Band", "Double Feature")
        aoty.challenge, aoty.pages[ALBUM_PATH] = "403", original
        aoty.failures.clear()

        # a storm of concurrent lookups through the facts service: no facts, nothing stored or
        # remembered as "not on AOTY", and the crawler pauses for everyone
        service = AotyFactsService(services, client=client)
        results = await asyncio.gather(*(service.album_facts(a) for a in album_ids for _ in range(2)))
        assert results == [None] * len(results)
        assert await service.paused()
        before = len(aoty.log)
        assert await service.facts_for(album_ids) == {}
        assert len(aoty.log) == before, "paused: nobody knocks on AOTY again until the pause ends"
        for album_id in album_ids:
            assert await services.cache.get(AOTY_NAMESPACE, f"album:{album_id}") is None, "no miss cached"
        async with services.session() as s:
            assert (await s.execute(select(func.count()).select_from(AotyAlbumRow))).scalar_one() == 0
            assert (await s.execute(select(func.count()).select_from(Album).where(Album.aoty_url.is_not(None))
                                    )).scalar_one() == 0
            assert (await s.execute(select(func.count()).select_from(ItemTag).where(
                ItemTag.source.in_(("aoty_genre", "aoty_tag"))))).scalar_one() == 0

        # the challenge lifts and the pause ends: the same album is read normally (retry later works)
        aoty.challenge = None
        await services.cache.delete(AOTY_NAMESPACE, "paused_until")
        facts = await service.album_facts(by_title["Double Feature"])
        assert facts is not None and facts.critic_score is not None and facts.genres


# -------------------------------------------------------------------------------- LLM hanging


def a_recommendation() -> Recommendation:
    return Recommendation(
        kind=Kind.ARTIST, item_id=1, name="Slowdive", score=0.91,
        evidence=Evidence(items=(Weighted("My Bloody Valentine", 0.8), Weighted("Ride", 0.5)),
                          tags=(Weighted("shoegaze", 0.9), Weighted("dream pop", 0.6)),
                          sources={"cf": 0.7, "content": 0.3}, popularity=0.12))


async def test_hanging_llm_gives_template_in_time_and_is_retried_after_cooldown() -> None:
    now = [1000.0]
    async with FakeOpenAIServer() as server:
        server.default = slow({"text": "never arrives in time"}, delay_s=30)
        cache = InProcessCache()
        llm = OpenAIExplainer.create(api_key=server.api_key, base_url=server.base_url, model="fake-model",
                                     timeout_s=0.5)
        explainer = GroundedExplainer(llm, TemplateExplainer(), cache, CallBudget(cache, 100), timeout_s=0.5,
                                      failure_threshold=3, failure_cooldown_s=30.0, clock=lambda: now[0])
        try:
            rec = a_recommendation()
            for _ in range(3):
                started = time.monotonic()
                answer = await explainer.recommendation(rec, user_id=1)
                assert time.monotonic() - started < 0.5 + 0.4
                assert answer.source == "template" and answer.reason == "timeout" and answer.text
            asked = len(server.requests)
            assert asked == 3

            # three timeouts in a row: the model is left alone for the cool-down (instant templates)
            started = time.monotonic()
            cooled = await explainer.recommendation(rec, user_id=1)
            assert cooled.reason == "cooling-down" and time.monotonic() - started < 0.1
            assert len(server.requests) == asked

            # later, the endpoint has recovered: the explainer asks again and uses the model's answer
            server.default = grounded_echo
            now[0] += 31
            recovered = await explainer.recommendation(rec, user_id=1)
            assert len(server.requests) == asked + 1
            assert recovered.source == "llm" and "Slowdive" in recovered.text
        finally:
            await explainer.aclose()


async def test_hanging_llm_commands_still_answer_in_time(database_url: str, tmp_path: Path) -> None:
    timeout_s = 1.0
    async with FakeOpenAIServer() as server:
        server.default = slow({"text": "never arrives in time"}, delay_s=30)
        settings = bot_settings(database_url, tmp_path, OPENAI_API_KEY=server.api_key,
                                OPENAI_BASE_URL=server.base_url, SONANCE_EXPLAIN_TIMEOUT_S=timeout_s)

        async def fresh_cache(services: Services) -> None:
            if REDIS_URL:  # the shared test Redis: no explanation cached by an earlier test
                await services.cache.delete_namespace("explain")
                await services.cache.delete_namespace("recs")
                await services.cache.delete_namespace("compat")

        async with bot_world(settings, prepare=fresh_cache) as (fake, _services):
            _, compat, elapsed = await ask(fake, "compat", "alice", {"member": uid("bob")})
            assert compat.embeds and compat.embeds[0].get("description")
            assert elapsed < ACK_DEADLINE_S, f"/compat took {elapsed:.2f}s with a hanging model"
            assert server.requests, "the model was asked (and did not answer)"

            _, recs, elapsed = await ask(fake, "recommend", "alice", {"count": 3})
            assert recs.embeds
            why_id = next(c for c in recs.custom_ids() if c.startswith("sonance:why:"))
            why, why_elapsed = await click(fake, why_id, "alice", recs)
            assert why.ephemeral and len(why.content or "") > 20
            assert why_elapsed < ACK_DEADLINE_S, f"Why? took {why_elapsed:.2f}s with a hanging model"
            fake.assert_clean()
