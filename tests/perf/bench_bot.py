"""`scripts/bench bot`: slash-command latency of the real bot under concurrent load.

What it measures and why it is built this way:

* **The real pipeline, not a mock.** The production `SonanceBot` (every cog in `bot.client.COGS`)
  runs `Client.start()` against the local FakeDiscord
  (`tests/fakes/discord_server.py`), so each figure includes gateway JSON decoding, discord.py's
  command dispatch, the cog, the services, the database and the REST calls back. Mocking any of
  those would hide exactly the costs a user feels.
* **HetRec-sized data.** The HetRec 2011 dataset is imported into a fresh database, the recommender
  is trained once, and N Discord members get copies of HetRec listeners' artist plays, so queries and
  model scoring run on production-scale tables instead of a toy world.
* **Two latencies per interaction**, both from the moment the INTERACTION_CREATE frame is written:
  the acknowledgement (Discord's hard 3 s deadline; a defer counts) and the first visible answer
  (what the user waits for).
* **50 in flight** by default through a semaphore: a busy guild, and the case where one slow
  synchronous step on the event loop shows up as queueing for everyone.
* **The bot runs as its own process** (`python -m bot.cli run`, the production entry point, with
  `DISCORD_API_BASE` / `DISCORD_GATEWAY_URL` pointing at the fake), as it does against the real
  Discord, whose servers do not share the bot's CPU. Measured in one process, the fake's own work
  (serving REST, validating every payload, encoding gateway frames) was ~10-15% of the CPU time
  and competed for the bot's interpreter lock. CPU time is reported for the bot process alone.
  `--in-process` (implied by `--profile`) keeps the old shape: one event loop for the bot and the
  fake, so cProfile sees the bot's code.

Per-user cooldowns (/recommend: 3 per 30 s) are real product behaviour; the roster of members is
sized so that the benchmark never trips them, otherwise it would measure refusals.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import functools
import io
import math
import os
import pstats
import random
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from core.config import Settings
from core.datasets import PROJECT_ROOT, read_user_artists
from core.db.repositories import AccountRepository, ListenRepository, UserRepository
from core.db.repositories.listens import PlayRow
from core.domain import Kind
from core.errors import ConfigError
from core.runtime import run_main
from core.services import Services, build_services
from core.sync.imports import import_hetrec

GUILD_ID = 1_400_000_000_000_001_000
CHANNEL_ID = GUILD_ID + 1
MEMBER_ID_BASE = 1_400_000_000_000_100_000
ACK_TARGET_MS = 300.0
FINAL_TARGET_MS = 1000.0
#: Generous waits: a slow answer is a figure to report, not an error; only a missing one is.
ACK_WAIT_S = 4.0
FINAL_WAIT_S = 60.0
#: Commands of the mixed run, in rotation; only those the loaded cogs synced are used.
MIXED_COMMANDS = ("recommend", "whoknows", "top", "compat", "account")


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: a reported p95 is a latency some interaction really had."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/max in ms (None when nothing was measured, so JSON stays valid)."""
    if not values:
        return {"p50": None, "p95": None, "max": None}
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1),
            "max": round(max(values), 1)}


@dataclass
class Sample:
    """One measured interaction."""

    command: str
    ack_ms: float | None
    final_ms: float | None
    error: str | None = None


@dataclass
class RunResult:
    """One load run (all /recommend, or the mixed rotation)."""

    name: str
    concurrency: int
    samples: list[Sample]
    wall_s: float
    cpu_s: float
    loop_lag_ms: list[float]
    http_errors: int  # non-2xx answers of the fake during the run (any request, any interaction)
    profile_text: str | None = None
    load_cpu_s: float | None = None  # the fake + load generator, when the bot runs as its own process

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if s.error) + self.http_errors

    def error_samples(self, limit: int = 5) -> list[str]:
        return [f"/{s.command}: {s.error}" for s in self.samples if s.error][:limit]

    def figures(self, samples: Sequence[Sample] | None = None) -> dict[str, Any]:
        chosen = self.samples if samples is None else samples
        return {
            "ack_ms": summary([s.ack_ms for s in chosen if s.ack_ms is not None]),
            "final_ms": summary([s.final_ms for s in chosen if s.final_ms is not None]),
            "interactions": len(chosen),
            "errors": sum(1 for s in chosen if s.error),
        }

    def to_json(self) -> dict[str, Any]:
        data = self.figures()
        data.update(
            concurrency=self.concurrency,
            errors=self.errors,
            http_errors=self.http_errors,
            throughput_per_s=round(len(self.samples) / self.wall_s, 1) if self.wall_s else None,
            wall_s=round(self.wall_s, 2),
            cpu_s=round(self.cpu_s, 2),
            cpu_ms_per_interaction=round(1000 * self.cpu_s / len(self.samples), 1) if self.samples else None,
            load_cpu_s=None if self.load_cpu_s is None else round(self.load_cpu_s, 2),
            loop_lag_ms=summary(self.loop_lag_ms),
            error_samples=self.error_samples(),
        )
        commands = sorted({s.command for s in self.samples})
        if len(commands) > 1:
            data["by_command"] = {c: self.figures([s for s in self.samples if s.command == c]) for c in commands}
        return data


@dataclass
class BotBenchReport:
    database: str
    members: int
    setup_seconds: float
    setup: dict[str, float]
    dataset: dict[str, int]
    runs: list[RunResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bot: str = "process"  # "process" (its own, like production) or "in-process" (shares the fake's loop)

    def run(self, name: str) -> RunResult | None:
        return next((r for r in self.runs if r.name == name), None)

    def targets_met(self) -> bool | None:
        rec = self.run("recommend")
        if rec is None:
            return None
        fig = rec.figures()
        ack, final = fig["ack_ms"]["p95"], fig["final_ms"]["p95"]
        return (rec.errors == 0 and ack is not None and final is not None
                and ack <= ACK_TARGET_MS and final <= FINAL_TARGET_MS)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {run.name: run.to_json() for run in self.runs}
        data.update(
            setup_seconds=round(self.setup_seconds, 1),
            setup={k: round(v, 2) for k, v in self.setup.items()},
            database=self.database,
            bot=self.bot,
            members=self.members,
            dataset=self.dataset,
            targets={"ack_p95_ms": ACK_TARGET_MS, "final_p95_ms": FINAL_TARGET_MS, "met": self.targets_met()},
            load_avg=[round(x, 2) for x in os.getloadavg()],
            cpus=os.cpu_count(),
            notes=self.notes,
        )
        return data


@dataclass(frozen=True)
class BotBenchConfig:
    """What to run; the CLI maps its options onto this one-to-one."""

    hetrec_dir: Path
    database_url: str | None = None  # a PostgreSQL server URL: a fresh database is created and dropped
    members: int = 200
    interactions: int = 500
    concurrency: int = 50
    warmup: int = 10
    mixed: bool = True
    tune: bool = False
    profile: bool = False
    profile_path: Path | None = None
    seed: int = 7
    in_process: bool = False  # the bot in the benchmark's own event loop (needed for --profile)


# --------------------------------------------------------------------------------------------------
# The fake and the world
# --------------------------------------------------------------------------------------------------


def load_fake_discord() -> ModuleType:
    """`tests.fakes.discord_server`, imported when a run starts (it pulls in aiohttp's server side)."""
    from tests.fakes import discord_server

    return discord_server


@contextlib.asynccontextmanager
async def _database(server_url: str | None, tmp: Path) -> AsyncIterator[tuple[str, str]]:
    """(async URL, label): a temp SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    if server_url is None:
        yield f"sqlite+aiosqlite:///{tmp / 'bench.db'}", "sqlite"
        return
    from tests.perf.bench_sync import _drop_pg, _pg_database  # same create/drop as `bench sync`

    url, name = await _pg_database(server_url)
    try:
        yield url, "postgresql"
    finally:
        await _drop_pg(server_url, name)


def bench_settings(database_url: str, data_dir: Path) -> Settings:
    """Hermetic settings: nothing from the environment may point the bot at a real service."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, DATABASE_URL=database_url, REDIS_URL=None, SONANCE_DATA_DIR=str(data_dir),
        SONANCE_SECRET_KEY=secrets.token_urlsafe(32), DISCORD_DEV_GUILD_ID=str(GUILD_ID),
        DISCORD_SHARD_COUNT=None, LASTFM_API_KEY=None, OPENAI_API_KEY=None, OPENAI_BASE_URL=None,
        SPOTIFY_CLIENT_ID=None, SONANCE_LOG_LEVEL="WARNING",
        # This process only sets up (and, with --in-process, serves on its own loop); the bot process
        # gets the production default.
        SONANCE_WORKER_PROCESSES=0)


async def create_members(services: Services, folder: Path, count: int, seed: int) -> list[int]:
    """N Discord users in the guild, each with a copy of one HetRec listener's artist plays.

    Listeners are a seeded sample (repeated when N exceeds the dataset) so runs are comparable.
    Returns the Discord ids. Uses existing repository methods only: read one listener's rows,
    write them again under the member's user id.
    """
    hetrec_users = sorted({int(u) for u in read_user_artists(folder / "user_artists.dat").users.tolist()})
    rng = random.Random(seed)
    picks = rng.sample(hetrec_users, k=min(count, len(hetrec_users)))
    while len(picks) < count:
        picks.append(hetrec_users[len(picks) % len(hetrec_users)])
    discord_ids = [MEMBER_ID_BASE + i for i in range(count)]
    async with services.session() as session:
        users = UserRepository(session)
        listens = ListenRepository(session)
        accounts = AccountRepository(session, services.cipher)
        source_ids = await users.by_external_refs([f"hetrec:{u}" for u in picks])
        rows: list[PlayRow] = []
        for i, (discord_id, listener) in enumerate(zip(discord_ids, picks, strict=True)):
            user = await users.get_or_create_discord(discord_id, f"Bench {i}")
            await users.ensure_membership(GUILD_ID, user.id)
            await accounts.link(user.id, "lastfm", f"bench_{i}")
            source = source_ids.get(f"hetrec:{listener}")
            if source is None:
                continue
            rows += [PlayRow(user.id, r.artist_id, r.plays, r.last_played_at)
                     for r in await listens.user_artist_plays(source)]
        await listens.set_artist_plays(rows)
    return discord_ids


async def popular_artists(services: Services, discord_ids: Sequence[int], limit: int = 20) -> list[str]:
    """Artists several members play: realistic /whoknows arguments with non-empty answers."""
    async with services.session() as session:
        users = UserRepository(session)
        listens = ListenRepository(session)
        counts: dict[str, int] = {}
        for discord_id in discord_ids[:50]:
            user = await users.by_discord_id(discord_id)
            if user is None:
                continue
            for name, _plays in await listens.top_artists(user.id, None, limit=10):
                counts[name] = counts.get(name, 0) + 1
    return [name for name, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:limit]]


# --------------------------------------------------------------------------------------------------
# The bot as its own process
# --------------------------------------------------------------------------------------------------

#: What the bot process inherits from ours; everything else comes from the benchmark's settings, so
#: nothing in the caller's environment (a real DISCORD_TOKEN, REDIS_URL…) can leak into it.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")


def bot_env(settings: Settings, fake: Any, web_port: int) -> dict[str, str]:
    """Environment for `python -m bot.cli run` that reproduces `settings` against `fake`."""
    env = {k: v for k, v in os.environ.items() if k in INHERITED_ENV}
    assert settings.secret_key is not None
    env.update(
        DATABASE_URL=settings.database_url, SONANCE_DATA_DIR=str(settings.data_dir),
        SONANCE_SECRET_KEY=settings.secret_key.get_secret_value(),
        DISCORD_DEV_GUILD_ID=str(settings.discord_dev_guild_id), DISCORD_TOKEN=fake.token,
        DISCORD_API_BASE=fake.api_base, DISCORD_GATEWAY_URL=fake.gateway_url,
        SONANCE_WEB_HOST="127.0.0.1", SONANCE_WEB_PORT=str(web_port), SONANCE_LOG_LEVEL=settings.log_level,
        SONANCE_BASE_DATASET="none",  # measure the bot serving its members, not a base-corpus import
        PYTHONPATH=os.pathsep.join([str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    return env


async def _recommender_warm(web_port: int, timeout_s: float) -> str | None:
    """Wait until the bot's /healthz says the model is loaded and its scoring workers are warm.

    The bot warms both at start (not on the first request); measuring before that finished would
    time the warm-up, not the service. Returns None when warm, else what /healthz last said (the
    caller adds it to the report's notes rather than failing the run).
    """
    import aiohttp

    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, ValueError):
                async with http.get(f"http://127.0.0.1:{web_port}/healthz") as resp:
                    status = await resp.json()
                if status.get("recommender") == "ready" and status.get("scoring_workers") != "warming":
                    return None
            await asyncio.sleep(0.2)
    return (f"measured before the bot was warm: recommender {status.get('recommender', '?')}, "
            f"scoring workers {status.get('scoring_workers', '?')}")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its threads."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


@contextlib.asynccontextmanager
async def bot_process(settings: Settings, fake: Any, workdir: Path, notes: list[str], *,
                      ready_timeout_s: float = 120.0) -> AsyncIterator[int]:
    """Run the production bot (`python -m bot.cli run`) against `fake` until the block ends; yields its pid.

    Ready means the fake has sent READY on the bot's gateway session, which discord.py reaches only
    after `setup_hook` (cogs loaded, commands synced). Its output goes to `workdir/bot.log`, whose
    tail is shown if it dies early.
    """
    from tests.perf.bench_sync import _free_port

    log_path = workdir / "bot.log"
    web_port = _free_port()
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", cwd=workdir, env=bot_env(settings, fake, web_port),
            stdout=log_file, stderr=asyncio.subprocess.STDOUT)
    try:
        ready = asyncio.create_task(fake.wait_until_ready(timeout=ready_timeout_s))
        exited = asyncio.create_task(proc.wait())
        done, _ = await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            ready.cancel()
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ConfigError(f"the bot process exited with {proc.returncode} before it was ready:\n{tail}")
        exited.cancel()
        ready.result()
        not_warm = await _recommender_warm(web_port, ready_timeout_s)
        if not_warm:
            notes.append(not_warm)
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# --------------------------------------------------------------------------------------------------
# Load generation
# --------------------------------------------------------------------------------------------------


class Roster:
    """Hands out askers round-robin, one cursor per command, so per-user cooldowns are never hit."""

    def __init__(self, users: Sequence[Any]) -> None:
        self.users = list(users)
        self._cursor: dict[str, int] = {}

    def next(self, command: str) -> Any:
        i = self._cursor.get(command, 0)
        self._cursor[command] = i + 1
        return self.users[i % len(self.users)]

    def other(self, user: Any) -> Any:
        """A different member (for /compat): the next one along."""
        return self.users[(self.users.index(user) + 1) % len(self.users)]


PayloadFactory = Callable[[str], dict[str, Any]]


def payload_factory(fake: Any, roster: Roster, artists: Sequence[str]) -> PayloadFactory:
    """Builds the slash payload of one command for the next asker in the roster."""
    counter = iter(range(1 << 62))

    def build(command: str) -> dict[str, Any]:
        user = roster.next(command)
        if command == "recommend":
            return fake.slash("recommend", {"kind": "artists"}, user=user)  # type: ignore[no-any-return]
        if command == "whoknows":
            return fake.slash("whoknows", {"artist": artists[next(counter) % len(artists)]},  # type: ignore[no-any-return]
                              user=user)
        if command == "top":
            return fake.slash("top", {"period": "overall"}, user=user)  # type: ignore[no-any-return]
        if command == "compat":
            return fake.slash("compat", {"member": roster.other(user)}, user=user)  # type: ignore[no-any-return]
        if command == "account":
            return fake.slash("account", user=user)  # type: ignore[no-any-return]
        raise ValueError(f"no payload builder for /{command}")

    return build


def classify(record: Any) -> str | None:
    """Why an answered interaction counts as an error, or None.

    Every benchmarked command answers with an embed on success; a bare text answer is the shared
    error policy speaking (apology, cooldown, refusal), and a rejected callback is a protocol error.
    """
    if record.rejected_callbacks:
        cb = record.rejected_callbacks[0]
        return f"callback rejected: HTTP {cb.status} code {cb.error_code}"
    final = record.final()
    if final is None:
        return "no final message"
    if not final.embeds:
        return f"text answer: {(final.content or '')[:120]!r}"
    return None


async def one_interaction(fake: Any, payload: dict[str, Any], command: str) -> Sample:
    """Dispatch one INTERACTION_CREATE and wait for its acknowledgement and final message."""
    record = await fake.dispatch(payload)
    try:
        await record.wait_ack(timeout=ACK_WAIT_S)
    except AssertionError:
        return Sample(command, None, None, f"no acknowledgement within {ACK_WAIT_S} s")
    ack_ms = record.ack_latency * 1000.0
    try:
        final = await record.wait_final(timeout=FINAL_WAIT_S)
    except AssertionError:
        return Sample(command, ack_ms, None, f"no final message within {FINAL_WAIT_S} s")
    return Sample(command, ack_ms, (final.at - record.dispatched_at) * 1000.0, classify(record))


async def _loop_lag(samples: list[float], stop: asyncio.Event, interval: float = 0.01) -> None:
    """How late a 10 ms timer fires: the queueing every interaction suffers on this loop."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await asyncio.sleep(interval)
        samples.append(max(0.0, (loop.time() - started - interval) * 1000.0))


@contextlib.contextmanager
def _maybe_profile(enabled: bool, path: Path | None, out: list[str]) -> Iterator[None]:
    """cProfile of the event-loop thread (worker threads such as model scoring are not included)."""
    if not enabled:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        if path is not None:
            profiler.dump_stats(str(path))
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer).sort_stats("cumulative")
        stats.print_stats(35)
        buffer.write("\n--- by own time ---\n")
        stats.sort_stats("tottime").print_stats(25)
        out.append(buffer.getvalue())


async def load_run(fake: Any, build: PayloadFactory, name: str, commands: Sequence[str], total: int,
                   concurrency: int, warmup: int, *, profile: bool = False,
                   profile_path: Path | None = None, bot_cpu: Callable[[], float] | None = None) -> RunResult:
    """Warm up (sequentially, excluded), then `total` interactions with `concurrency` in flight.

    `bot_cpu` reads the bot process's CPU seconds when it runs apart; otherwise this process's
    CPU time is the bot's (and the fake's)."""
    for i in range(warmup):
        command = commands[i % len(commands)]
        await one_interaction(fake, build(command), command)
    semaphore = asyncio.Semaphore(concurrency)
    plan = [commands[i % len(commands)] for i in range(total)]
    payloads = [(c, build(c)) for c in plan]  # built up front: payload building is not the bot's cost

    async def guarded(command: str, payload: dict[str, Any]) -> Sample:
        async with semaphore:
            return await one_interaction(fake, payload, command)

    lag: list[float] = []
    stop = asyncio.Event()
    first_request = len(fake.requests)
    profile_out: list[str] = []
    monitor = asyncio.create_task(_loop_lag(lag, stop))
    bot0 = bot_cpu() if bot_cpu is not None else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with _maybe_profile(profile, profile_path, profile_out):
        samples = await asyncio.gather(*(guarded(c, p) for c, p in payloads))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    stop.set()
    await monitor
    http_errors = sum(1 for r in fake.requests[first_request:] if r.status >= 300)
    if bot_cpu is not None and bot0 is not None:
        return RunResult(name, concurrency, list(samples), wall, bot_cpu() - bot0, lag, http_errors,
                         load_cpu_s=cpu)
    return RunResult(name, concurrency, list(samples), wall, cpu, lag, http_errors,
                     profile_out[0] if profile_out else None)


def required_members(config: BotBenchConfig, mixed_commands: int) -> int:
    """Members needed so that no one uses /recommend or /compat more than their cooldown allows."""
    from cogs.compat import COMPAT_RATE
    from cogs.recommend import RECOMMEND_RATE

    rec = config.warmup + config.interactions
    compat = 0
    if config.mixed and mixed_commands:
        rec += math.ceil((config.warmup + config.interactions) / mixed_commands)
        compat = math.ceil((config.warmup + config.interactions) / mixed_commands)
    return max(math.ceil(rec / RECOMMEND_RATE), math.ceil(compat / COMPAT_RATE), 2)


# --------------------------------------------------------------------------------------------------
# The whole benchmark
# --------------------------------------------------------------------------------------------------


async def run_bot_bench(config: BotBenchConfig, progress: Callable[[str], None] = lambda _m: None) -> BotBenchReport:
    """Set up the world, start the real bot against FakeDiscord, run the load, return the figures."""
    fakes = load_fake_discord()
    from bot.client import create_bot
    from core.recommender.service import RecommendService

    if config.interactions < 1 or config.concurrency < 1 or config.members < 2:
        raise ConfigError("need at least 1 interaction, concurrency 1 and 2 members")
    notes: list[str] = []
    members = config.members
    needed = required_members(config, len(MIXED_COMMANDS))
    if members < needed:
        notes.append(f"members raised from {members} to {needed} so per-user cooldowns are not hit")
        members = needed
    setup: dict[str, float] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sonance-bench-bot-") as tmp_name:
        tmp = Path(tmp_name)
        async with _database(config.database_url, tmp) as (url, label):
            t = time.perf_counter()
            services = await build_services(bench_settings(url, tmp / "data"))
            setup["migrate_s"] = time.perf_counter() - t
            try:
                progress(f"importing HetRec from {config.hetrec_dir}")
                t = time.perf_counter()
                async with services.session() as session:
                    imported = await import_hetrec(session, config.hetrec_dir)
                setup["import_s"] = time.perf_counter() - t
                progress("training the artist recommender")
                t = time.perf_counter()
                await RecommendService.of(services).retrain(Kind.ARTIST, tune=config.tune)
                setup["train_s"] = time.perf_counter() - t
                progress(f"creating {members} Discord members")
                t = time.perf_counter()
                discord_ids = await create_members(services, config.hetrec_dir, members, config.seed)
                artists = await popular_artists(services, discord_ids)
                setup["members_s"] = time.perf_counter() - t

                users = [fakes.FakeUser(id=d, username=f"bench{i}", global_name=f"Bench {i}")
                         for i, d in enumerate(discord_ids)]
                guild = fakes.FakeGuild(id=GUILD_ID, name="Sonance Bench",
                                        channels=[fakes.FakeChannel(id=CHANNEL_ID, name="general")])
                in_process = config.in_process or config.profile
                t = time.perf_counter()
                async with fakes.FakeDiscord(guilds=[guild], users=users) as fake, contextlib.AsyncExitStack() as bot:
                    bot_cpu: Callable[[], float] | None = None
                    if in_process:
                        await bot.enter_async_context(
                            fakes.running_bot(create_bot(services, guild_ready_timeout=0.05), fake, timeout=60.0))
                    else:
                        progress("starting the bot process")
                        pid = await bot.enter_async_context(bot_process(services.settings, fake, tmp, notes))
                        bot_cpu = functools.partial(process_cpu_seconds, pid)
                    setup["bot_start_s"] = time.perf_counter() - t
                    report = BotBenchReport(label, members, time.perf_counter() - started, setup,
                                            dict(imported.counts), notes=notes,
                                            bot="in-process" if in_process else "process")
                    synced = {c["name"] for c in fake.synced_commands(GUILD_ID)}
                    build = payload_factory(fake, Roster(users), artists or ["Radiohead"])
                    progress(f"/recommend: {config.interactions} interactions, {config.concurrency} in flight")
                    report.runs.append(await load_run(
                        fake, build, "recommend", ["recommend"], config.interactions, config.concurrency,
                        config.warmup, profile=config.profile, profile_path=config.profile_path, bot_cpu=bot_cpu))
                    mixed = [c for c in MIXED_COMMANDS if c in synced]
                    if config.mixed and mixed:
                        skipped = [c for c in MIXED_COMMANDS if c not in synced]
                        if skipped:
                            notes.append(f"mixed run skips commands not loaded: {skipped}")
                        progress(f"mixed ({', '.join(mixed)}): {config.interactions} interactions")
                        report.runs.append(await load_run(
                            fake, build, "mixed", mixed, config.interactions, config.concurrency,
                            max(config.warmup, len(mixed)), bot_cpu=bot_cpu))
                    if fake.internal_errors:
                        notes.append(f"FakeDiscord internal errors: {len(fake.internal_errors)}")
            finally:
                await services.close()
    return report


def run(config: BotBenchConfig, progress: Callable[[str], None] = lambda _m: None) -> BotBenchReport:
    """Synchronous entry point for the CLI."""
    return run_main(run_bot_bench(config, progress))

