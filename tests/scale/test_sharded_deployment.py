"""Issue 15, part 1: three real `sonance run` processes share four Discord shards, one PostgreSQL
database and one Redis database.

Process A holds shards 0 and 3, B shard 1, C shard 2; there is a guild on every shard. The fake
Discord records which process (client tag) each session, REST call and interaction answer came
from; the fake Last.fm records when each process asked. In order, on one deployment:

1. every interaction is answered once, by the process that owns its guild's shard;
2. weekly DMs go out once across the processes (only the scheduler leader sends them);
3. /forget in one process is seen by all: nothing about the member left in Redis, and another
   process neither shows them in a leaderboard nor compares with them;
4. a model trained by `sonance train` (its own process) is served by every process within the
   recommender's refresh interval;
5. the Last.fm limit (5 requests/s) holds in total while all three import histories at once; with
   Redis cut off (a proxy in front of it), each process falls back to its share (2/4, 1/4, 1/4);
6. a shard process SIGKILLed mid-interaction: the interaction is answered by nobody or once, and
   its recommendations are recorded completely or not at all;
7. one scheduler leader; SIGKILLed, another takes over within lease + renewal interval.

Needs PostgreSQL and Redis (CI's second pass); figures are printed (`-s`) for the closing note.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.config import Settings
from core.db.repositories import UserRepository
from core.db.types import utcnow
from core.domain import Kind
from core.recommender.service import RecommendService
from core.services import Services, build_services
from core.weekly import WEEKDAYS
from tests.bot.world import MEMBERS, fake_world, seed_world
from tests.conftest import PG_URL, REDIS_URL
from tests.fakes.discord_payloads import FakeUser
from tests.fakes.discord_server import FakeDiscord, InteractionRecord, SentMessage
from tests.fakes.lastfm_server import LastfmFake
from tests.perf.bench_sync import _drop_pg, _pg_database
from tests.scale.deployment import (
    BotProcess,
    bot_env,
    cli_env,
    free_port,
    guild_on,
    run_cli,
    start_bot,
    window_rates,
)
from tests.scale.redis_proxy import RedisProxy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_URL and REDIS_URL), reason=(
        "needs PostgreSQL and Redis (SONANCE_TEST_DATABASE_URL + SONANCE_TEST_REDIS_URL, CI's second pass): "
        "several processes share one database and one Redis, which SQLite and the in-process cache cannot")),
]

SHARD_COUNT = 4
LAYOUT = {"A": [0, 3], "B": [1], "C": [2]}
GUILDS = [guild_on(k) for k in range(SHARD_COUNT)]
LEASE_S = 6.0  # SONANCE_SCHEDULER_LEASE_S: standbys renew every 2 s
DM_CHECK_S = 2.0
LASTFM_RATE = 5.0
REFRESH_INTERVAL_S = 60.0  # RecommendService's default refresh_interval_s
HISTORY_PAGES = 15  # per imported Last.fm user: 15 pages of 200 plays
#: Discord users who link Last.fm during the rate phases: (tag of the process that handles them, phase)
IMPORTERS = {f"lf{tag.lower()}{phase}": (tag, phase) for tag in LAYOUT for phase in (1, 2)}
FIGURES: dict[str, Any] = {}


def owner_of(guild_id: int) -> str:
    shard = (guild_id >> 22) % SHARD_COUNT
    return next(tag for tag, ids in LAYOUT.items() if shard in ids)


def guild_of(tag: str) -> int:
    return next(g.id for g in GUILDS if owner_of(g.id) == tag)


async def answer(fake: FakeDiscord, payload: dict[str, Any], timeout: float = 60.0) -> tuple[InteractionRecord, SentMessage]:  # noqa: ASYNC109
    record = await fake.dispatch(payload)
    return record, await record.wait_final(timeout=timeout)


async def until(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(step)
    return value


@pytest.fixture
async def world() -> AsyncIterator[dict[str, Any]]:
    """A fresh PostgreSQL database seeded with the bot tests' world, every member in every guild,
    and a trained artist model in a data directory all processes share."""
    assert PG_URL and REDIS_URL
    url, name = await _pg_database(PG_URL)
    tmp = Path(tempfile.mkdtemp(prefix="sonance-shards-"))
    settings = Settings(_env_file=None, DATABASE_URL=url, REDIS_URL=None,  # type: ignore[call-arg]
                        SONANCE_DATA_DIR=str(tmp / "data"), SONANCE_SECRET_KEY=secrets.token_urlsafe(32),
                        LASTFM_API_KEY=None, OPENAI_API_KEY=None, SONANCE_WORKER_PROCESSES=0)
    services: Services = await build_services(settings)
    try:
        ids = await seed_world(services)
        async with services.session() as session:
            users = UserRepository(session)
            for uid in ids.values():
                for guild in GUILDS:
                    await users.ensure_membership(guild.id, uid)
        trained = await RecommendService.of(services).retrain(Kind.ARTIST, tune=False)
        yield {"url": url, "tmp": tmp, "settings": settings, "services": services, "ids": ids,
               "v1": trained["version"]}
    finally:
        await services.close()
        await _drop_pg(PG_URL, name)


async def redis_keys(pattern: str) -> list[str]:
    from redis import asyncio as aioredis

    assert REDIS_URL
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        return [k async for k in client.scan_iter(match=pattern, count=500)]
    finally:
        await client.aclose()


async def clear_redis() -> None:
    from redis import asyncio as aioredis

    assert REDIS_URL
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter(match="sonance:*", count=500)]
        if keys:
            await client.unlink(*keys)
    finally:
        await client.aclose()


async def shown_rows(services: Services, user_id: int) -> int:
    async with services.session() as session:
        return int((await session.execute(text("SELECT count(*) FROM recommendations_shown WHERE user_id = :u"),
                                          {"u": user_id})).scalar_one())


async def leaders(bots: dict[str, BotProcess]) -> list[str]:
    states = {tag: (await bot.health()).get("scheduler") for tag, bot in bots.items() if bot.alive}
    return [tag for tag, state in states.items() if state == "leader"]


async def test_sharded_deployment(world: dict[str, Any]) -> None:
    assert REDIS_URL
    await clear_redis()
    services: Services = world["services"]
    ids: dict[str, int] = world["ids"]
    tmp: Path = world["tmp"]
    _, members = fake_world()
    importers = [FakeUser(id=1_300_000_000_000_000_500 + i, username=name, global_name=name.upper())
                 for i, name in enumerate(IMPORTERS)]
    proxy = await RedisProxy(REDIS_URL).start()
    bots: dict[str, BotProcess] = {}
    async with FakeDiscord(guilds=GUILDS, users=members + importers, shards=SHARD_COUNT) as fake, \
            LastfmFake() as lastfm:
        for name in IMPORTERS:
            lastfm.add_user(name, synthetic=HISTORY_PAGES * 200)
        base = {"DATABASE_URL": world["url"], "REDIS_URL": proxy.url, "SONANCE_DATA_DIR": str(tmp / "data"),
                "SONANCE_SECRET_KEY": world["settings"].secret_key.get_secret_value(),
                "SONANCE_BASE_DATASET": "none", "SONANCE_WORKER_PROCESSES": "0", "SONANCE_LOG_LEVEL": "INFO",
                "SONANCE_SCHEDULER_LEASE_S": str(LEASE_S), "SONANCE_WEEKLY_DM_CHECK_S": str(DM_CHECK_S),
                "LASTFM_REQUESTS_PER_SECOND": str(LASTFM_RATE)}
        try:
            for tag, shard_ids in LAYOUT.items():  # one after the other, as a rolling start would
                env = bot_env(base, fake, lastfm, tag, shard_ids, SHARD_COUNT, free_port())
                bots[tag] = await start_bot(tmp, env, fake, tag, shard_ids)
            assert fake.sessions_by_client() == LAYOUT and fake.duplicate_shard_sessions == []
            await until_leader(bots)

            await interactions_are_answered_once_by_their_shard(fake, services, ids)
            await weekly_dms_go_out_once(fake, bots)
            await forget_is_seen_by_every_process(fake, ids)
            await a_trained_model_reaches_every_process(fake, bots, base, tmp, world["v1"])
            await lastfm_limit_holds_in_total(fake, lastfm, proxy)
            await a_shard_killed_mid_interaction_leaves_nothing_half_done(fake, services, ids, bots)
            await the_leader_fails_over(bots)
            assert not fake.internal_errors and not fake.unmatched_requests, (fake.internal_errors,
                                                                              fake.unmatched_requests)
            print("\nsharded deployment figures:", FIGURES)
        finally:
            for bot in bots.values():
                await bot.stop()
            await proxy.close()
            await clear_redis()


async def until_leader(bots: dict[str, BotProcess]) -> None:
    deadline = time.monotonic() + 30
    while not (found := await leaders(bots)):
        assert time.monotonic() < deadline, "no scheduler leader within 30 s"
        await asyncio.sleep(0.2)
    assert len(found) == 1, f"more than one leader: {found}"


async def interactions_are_answered_once_by_their_shard(fake: FakeDiscord, services: Services,
                                                        ids: dict[str, int]) -> None:
    records = []
    for guild in GUILDS:
        for name in ("alice", "carol", "dave"):
            records.append((guild.id, fake.dispatch(fake.slash("recommend", {"count": 5}, user=name, guild=guild.id))))
    dispatched = [(gid, await coro) for gid, coro in records]
    for _, record in dispatched:
        await record.wait_final(timeout=60)
    for gid, record in dispatched:
        assert record.delivered_to == [((gid >> 22) % SHARD_COUNT, owner_of(gid))]
        accepted = [c for c in record.callbacks if c.accepted]
        assert len(accepted) == 1 and not record.rejected_callbacks
        assert accepted[0].client == owner_of(gid), (gid, accepted[0].client)
        # the follow-ups and edits of the deferred answer too: nobody else touched this interaction
        assert {r.client for r in fake.requests if record.token in r.path} == {owner_of(gid)}
        assert not record.answer_problems(), record.answer_problems()
    FIGURES["interactions_answered"] = {tag: sum(1 for g, _ in dispatched if owner_of(g) == tag) for tag in LAYOUT}
    # the size of one complete /recommend count:5 write, for the mid-interaction kill below
    before = await shown_rows(services, ids["carol"])
    await answer(fake, fake.slash("recommend", {"count": 5}, user="carol", guild=guild_of("B")))
    FIGURES["rows_per_recommend"] = await shown_rows(services, ids["carol"]) - before


async def weekly_dms_go_out_once(fake: FakeDiscord, bots: dict[str, BotProcess]) -> None:
    [leader] = await leaders(bots)
    now = utcnow() - timedelta(minutes=1)
    for name, tag in (("alice", "B"), ("carol", "C")):  # /dm handled by two different processes
        _, final = await answer(fake, fake.slash("dm", {"enabled": True, "day": WEEKDAYS[now.weekday()],
                                                        "time": f"{now:%H:%M}", "timezone": "UTC"},
                                                 user=name, guild=guild_of(tag)))
        assert final.content, final
    await until(lambda: len(fake.dms) >= 2, 60, "two weekly DMs")
    await asyncio.sleep(4 * DM_CHECK_S)  # several more job runs: nobody sends again
    recipients = sorted(d.recipient_id for d in fake.dms)
    assert recipients == sorted([MEMBERS["alice"].fake.id, MEMBERS["carol"].fake.id]), recipients
    senders = {r.client for r in fake.requests
               if r.method == "POST" and r.path.startswith("/channels/") and r.path.endswith("/messages")}
    assert senders == {leader}, senders
    FIGURES["weekly_dms"] = {"sent": len(fake.dms), "by": leader}


async def forget_is_seen_by_every_process(fake: FakeDiscord, ids: dict[str, int]) -> None:
    dave = ids["dave"]
    in_c = guild_of("C")
    _, before = await answer(fake, fake.slash("compat", {"member": "dave"}, user="carol", guild=in_c))
    assert before.embeds, before.body  # the compatibility card
    _, board = await answer(fake, fake.slash("leaderboard", {}, user="carol", guild=in_c))
    assert "Dave" in str(board.body)
    assert await redis_keys(f"sonance:*u{dave}:*"), "nothing about dave was cached: the check would prove nothing"

    _, prompt = await answer(fake, fake.slash("forget", {}, user="dave", guild=guild_of("B")))
    click = await fake.dispatch(fake.button("sonance:forget:yes", message=prompt, user="dave", guild=guild_of("B")))
    done = await click.wait_for(lambda r: r.original_edits[-1] if r.original_edits else None, timeout=30)
    assert (done.content or "").startswith("Done. Deleted "), done.content
    assert {c.client for c in click.callbacks if c.accepted} == {"B"}

    assert await redis_keys(f"sonance:*u{dave}:*") == []
    _, again = await answer(fake, fake.slash("compat", {"member": "dave"}, user="carol", guild=in_c))
    assert "hasn't linked a music account" in (again.content or ""), again.body
    _, board_after = await answer(fake, fake.slash("leaderboard", {}, user="carol", guild=in_c))
    assert "Dave" not in str(board_after.body)
    FIGURES["forget"] = "in B; C no longer compares with or ranks the member; no Redis key left"


def _serving(bot: BotProcess, version: str) -> bool:
    return f"model {version} is now serving" in bot.log_text()


async def a_trained_model_reaches_every_process(fake: FakeDiscord, bots: dict[str, BotProcess],
                                               base: dict[str, str], tmp: Path, v1: str) -> None:
    assert all(_serving(bot, v1) for bot in bots.values())
    env = cli_env(base)
    (tmp / "cli").mkdir(exist_ok=True)
    await run_cli(env, tmp / "cli", "train", "--kind", "artist", "--no-tune")
    trained_at = time.monotonic()
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(base["DATABASE_URL"])
    async with engine.connect() as conn:
        v2 = (await conn.execute(text("SELECT version FROM model_artifacts WHERE active AND kind = 'hybrid' "
                                      "AND granularity = 'artist'"))).scalar_one()
    await engine.dispose()
    assert v2 != v1
    picked_up: dict[str, float] = {}
    while len(picked_up) < len(bots):
        elapsed = time.monotonic() - trained_at
        assert elapsed < REFRESH_INTERVAL_S + 20, f"not every process serves {v2}: {picked_up}"
        for tag, bot in bots.items():
            if tag not in picked_up and _serving(bot, v2):
                picked_up[tag] = round(elapsed, 1)
        for tag in set(bots) - set(picked_up):  # requests drive the refresh check
            record = await fake.dispatch(fake.slash("recommend", {"count": 3}, user="alice", guild=guild_of(tag)))
            await record.wait_final(timeout=60)
        await asyncio.sleep(2)
    FIGURES["model_pickup_s"] = picked_up
    FIGURES["refresh_interval_s"] = REFRESH_INTERVAL_S


async def _import_phase(fake: FakeDiscord, lastfm: LastfmFake, phase: int) -> list[tuple[float, str, str | None]]:
    start = len(lastfm.request_clients)
    for name, (tag, p) in IMPORTERS.items():
        if p == phase:
            _, final = await answer(fake, fake.slash("link", {"username": name}, subcommand="lastfm", user=name,
                                                     guild=guild_of(tag)))
            assert name in (final.content or "") + str(final.embeds), final.body

    def pages_done() -> bool:
        got = {n: 0 for n, (_, p) in IMPORTERS.items() if p == phase}
        for (_, method, params) in lastfm.log[start:]:
            if method.lower() == "user.getrecenttracks" and params.get("user") in got:
                got[params["user"]] += 1
        return all(n >= HISTORY_PAGES for n in got.values())

    await until(pages_done, 120, f"phase {phase} imports", step=0.5)
    await asyncio.sleep(2)
    return lastfm.request_clients[start:]


def within_limit(requests: list[tuple[float, str, str | None]]) -> dict[str, Any]:
    """The total rate, judged as the project's other rate tests do: the mean over the whole import
    and every 5 s window with one second's worth of slack (a stalled event loop bunches a few
    requests that were each sent after their slot; a 2 s window mistakes that for a burst)."""
    times = [t for t, _, _ in requests]
    mean, _ = window_rates(times, 5.0)
    _, peak5 = window_rates(times, 5.0)
    _, peak2 = window_rates(times, 2.0)
    assert mean <= LASTFM_RATE * 1.02, mean
    assert peak5 * 5.0 <= LASTFM_RATE * (5.0 + 1.0), peak5
    return {"requests": len(times), "seconds": round(max(times) - min(times), 1), "mean_rps": round(mean, 2),
            "max_5s_window_rps": peak5, "max_2s_window_rps": peak2}


async def lastfm_limit_holds_in_total(fake: FakeDiscord, lastfm: LastfmFake, proxy: RedisProxy) -> None:
    shared = await _import_phase(fake, lastfm, 1)
    assert {c for _, _, c in shared} >= set(LAYOUT), "all three processes asked Last.fm at once"
    FIGURES["lastfm_redis"] = within_limit(shared)

    proxy.cut()
    try:
        alone = await _import_phase(fake, lastfm, 2)
    finally:
        proxy.restore()
    total = within_limit(alone)
    per_process = {}
    for tag, shard_ids in LAYOUT.items():
        share = LASTFM_RATE * len(shard_ids) / SHARD_COUNT
        own = [t for t, _, c in alone if c == tag]
        own_mean, _ = window_rates(own, 4.0)
        assert own_mean <= share * 1.05, (tag, own_mean, share)
        per_process[tag] = {"share_rps": share, "mean_rps": round(own_mean, 2), "requests": len(own)}
    FIGURES["lastfm_redis_down"] = {**total, "per_process": per_process}


async def a_shard_killed_mid_interaction_leaves_nothing_half_done(
        fake: FakeDiscord, services: Services, ids: dict[str, int], bots: dict[str, BotProcess]) -> None:
    [leader] = await leaders(bots)
    victim = next(tag for tag in ("C", "B") if tag != leader)
    before = await shown_rows(services, ids["carol"])
    record = await fake.dispatch(fake.slash("recommend", {"count": 5}, user="carol", guild=guild_of(victim)))
    await until(lambda: record.callbacks, 30, "the acknowledgement", step=0.005)
    bots[victim].kill()
    await bots[victim].proc.wait()
    await asyncio.sleep(3)
    finals = [e for e in record.events if isinstance(e, SentMessage)]
    assert len([c for c in record.callbacks if c.accepted]) <= 1 and len(finals) <= 1
    written = await shown_rows(services, ids["carol"]) - before
    assert written in (0, FIGURES["rows_per_recommend"]), written
    FIGURES["killed_mid_interaction"] = {"process": victim, "answers": len(finals), "rows_written": written}


async def the_leader_fails_over(bots: dict[str, BotProcess]) -> None:
    [leader] = await leaders(bots)
    killed_at = time.monotonic()
    bots[leader].kill()
    bound = LEASE_S + LEASE_S / 3 + 2.0
    while not (found := await leaders(bots)):
        assert time.monotonic() - killed_at < bound + 10, "no new leader"
        await asyncio.sleep(0.1)
    takeover = time.monotonic() - killed_at
    assert len(found) == 1 and found[0] != leader
    assert takeover <= bound, (takeover, bound)
    FIGURES["leader_takeover_s"] = {"killed": leader, "new": found[0], "seconds": round(takeover, 2),
                                    "bound_s": bound}
