"""`scripts/bench soak`: the real bot under a steady command mix for N minutes, watching for leaks.

What it does:

* Runs the production bot (every cog of `bot.client.COGS`) against the local FakeDiscord and a local
  Last.fm fake, both from `tests/fakes/`, on a fresh database: a temporary
  SQLite file, or a fresh PostgreSQL database (created and dropped) with `--database-url`.
* The world is the end-to-end test world (`tests/bot/world.py`: alice, bob, carol, dave, erin and 60
  dataset listeners) plus `extra` synthetic members with listening histories, all linked to Last.fm.
* Drives a steady mix (/recommend, /similar, /whoknows, /top, /compat, /leaderboard, /matches,
  /account, /playlist, autocomplete, 👍/👎 and "Why?" clicks on items shown earlier) at a fixed
  rate with a bounded number in flight, and runs a Last.fm sync of a few accounts every
  `sync_every_s`, with new scrobbles appearing in the fake before each round.
* Samples every `interval_s`: RSS, asyncio tasks, open fds, sockets, DB connections checked out of
  the pool, interactions per second and p95 acknowledgement latency.

Everything is bounded: the driver stops at the deadline *and* after a maximum count, waits at most
`DRAIN_S` for stragglers, and the records the fakes keep are pruned as the run goes (otherwise the
fakes' own bookkeeping would be the leak we measure).

Verdict ("flat memory and no growth of open connections or tasks"): compare the mean of the last
third of the post-warm-up samples with the mean of the first third; see `TOLERANCES` for why each
tolerance is what it is. After the drain, a quiesced sample must show zero DB connections checked
out and no more bot tasks than before the load started (plus the bounded, expected ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from core.config import Settings
from core.errors import ConfigError
from core.runtime import run_main
from core.services import Services

log = logging.getLogger(__name__)

#: Extra synthetic members on top of the test world (alice..erin).
EXTRA_MEMBER_ID_BASE = 1_300_000_000_000_200_000
ACK_DEADLINE_S = 3.0
FINAL_WAIT_S = 30.0
DRAIN_S = 35.0
#: Interactions whose final answer arrived more than this long ago are dropped from the fake's records.
PRUNE_AFTER_S = 20.0
APOLOGY_MARK = "Sorry, something went wrong"
COOLDOWN_MARK = "Easy there!"

#: Weights of the mix (interaction kind -> relative frequency).
MIX_WEIGHTS: dict[str, float] = {
    "recommend": 2.0, "similar": 1.0, "whoknows": 2.0, "top": 2.0, "compat": 1.5, "leaderboard": 1.0,
    "matches": 1.0, "account": 1.0, "playlist": 0.5, "autocomplete": 2.5, "feedback": 2.0, "why": 0.5,
}
#: Per-user cooldowns of the cogs (rate, per seconds); the roster never asks more than rate-1 per window.
COOLDOWNS: dict[str, tuple[int, float]] = {"recommend": (3, 30.0), "compat": (3, 30.0), "playlist": (2, 60.0)}

#: Tolerances of the verdict (last third mean vs first third mean, after warm-up):
#: * rss: +10 % or +24 MiB, whichever is larger. Within a run the bot legitimately grows bounded
#:   state: live /recommend page views (300 s timeout) and /playlist views (600 s) each keep their
#:   result, caches fill up to their TTL, and CPython/glibc keep freed arenas. A leak of 10 KiB per
#:   interaction at the default 5/s shows as ~18 MiB per minute, far outside the band over 3 min;
#:   `rss_slope_mib_per_min` is reported so a longer soak can judge a slower leak.
#: * tasks: +10 beyond the difference in live view timers (one task per live view is discord.py's
#:   design and is bounded by the view timeouts) and in in-flight interactions (bounded by the driver).
#: * fds / sockets: +10. aiohttp keeps idle keep-alive connections per host (both ends are in this
#:   process) up to the peak concurrency seen; a leak at 5 interactions/s passes 10 within seconds.
#: * db_checked_out: +1 on the mean, and exactly 0 once quiesced.
TOLERANCES = {"rss_rel": 0.10, "rss_abs_mib": 24.0, "tasks_abs": 10.0, "fds_abs": 10.0, "sockets_abs": 10.0,
              "db_checked_out_abs": 1.0}


# --------------------------------------------------------------------------------------------------
# The fakes
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fakes:
    discord: ModuleType  # tests.fakes.discord_server
    world: ModuleType  # tests.bot.world
    lastfm: ModuleType  # tests.fakes.lastfm_server


def load_fakes() -> Fakes:
    """The test fakes, imported when a run starts (they pull in aiohttp's server side)."""
    from tests.bot import world
    from tests.fakes import lastfm_server
    from tests.perf.bench_bot import load_fake_discord

    return Fakes(load_fake_discord(), world, lastfm_server)


# --------------------------------------------------------------------------------------------------
# The world: the test world plus synthetic members
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtraMember:
    discord_id: int
    username: str
    cluster: str
    artists: tuple[str, ...]

    @property
    def lastfm_name(self) -> str:
        return f"{self.username}_fm"


def extra_members(world: ModuleType, count: int, seed: int = 11) -> list[ExtraMember]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        cluster = rng.choice(sorted(world.CLUSTERS))
        artists = tuple(rng.sample(world.CLUSTERS[cluster], k=min(3, len(world.CLUSTERS[cluster]))))
        out.append(ExtraMember(EXTRA_MEMBER_ID_BASE + i, f"listener{i}", cluster, artists))
    return out


def load_world(fakes: Fakes, extra: int, seed: int = 11) -> tuple[list[Any], list[Any], list[ExtraMember]]:
    """(fake guilds, fake users, extra members) for FakeDiscord."""
    guilds, users = fakes.world.fake_world()
    members = extra_members(fakes.world, extra, seed)
    users = list(users) + [fakes.discord.FakeUser(id=m.discord_id, username=m.username,
                                                  global_name=m.username.capitalize()) for m in members]
    return guilds, users, members


async def seed_load_world(services: Services, fakes: Fakes, members: Sequence[ExtraMember]) -> dict[str, int]:
    """`seed_world` plus the extra members (guild members, linked to Last.fm, with listens)."""
    from datetime import timedelta

    from core.db.repositories import AccountRepository, UserRepository
    from core.sync.ingest import RawListen, ingest_listens

    world = fakes.world
    ids: dict[str, int] = await world.seed_world(services)
    async with services.session() as session:
        users = UserRepository(session)
        accounts = AccountRepository(session, services.cipher)
        for m in members:
            user = await users.get_or_create_discord(m.discord_id, m.username.capitalize())
            ids[m.username] = user.id
            await users.ensure_membership(world.GUILD_ID, user.id)
            await accounts.link(user.id, "lastfm", m.lastfm_name)
            plays = [RawListen(artist=a, track=f"{a} song {k}", album=f"{a} album", source="lastfm",
                               played_at=world.NOW - timedelta(days=rank * 3 + k, minutes=k))
                     for rank, a in enumerate(m.artists) for k in range(10 - 2 * rank)]
            await ingest_listens(session, user.id, plays)
    return ids


# --------------------------------------------------------------------------------------------------
# The command mix
# --------------------------------------------------------------------------------------------------


class Roster:
    """Askers for each kind, round-robin, skipping anyone whose per-user cooldown could trip."""

    def __init__(self, users: Sequence[Any], clock: Callable[[], float] = time.monotonic) -> None:
        self.users = list(users)
        self.clock = clock
        self._cursor: dict[str, int] = {}
        self._used: dict[tuple[str, int], deque[float]] = {}

    def next(self, kind: str) -> Any:
        start = self._cursor.get(kind, 0)
        limit = COOLDOWNS.get(kind)
        for step in range(len(self.users)):
            user = self.users[(start + step) % len(self.users)]
            if limit is None or self._free(kind, user.id, *limit):
                self._cursor[kind] = start + step + 1
                return user
        return None  # everyone is on cooldown for this kind: the caller picks another kind

    def _free(self, kind: str, user_id: int, rate: int, per: float) -> bool:
        now = self.clock()
        used = self._used.setdefault((kind, user_id), deque())
        while used and now - used[0] > per + 2.0:  # +2 s: the bot's clock starts when it handles it
            used.popleft()
        if len(used) >= rate - 1:
            return False
        used.append(now)
        return True

    def other(self, user: Any) -> Any:
        return self.users[(self.users.index(user) + 1) % len(self.users)]


@dataclass
class Shown:
    """A /recommend answer whose 👍/👎/Why? buttons can be clicked (by its asker only)."""

    message: Any  # SentMessage
    owner: Any  # FakeUser
    custom_ids: list[str]


class CommandMix:
    """Builds the next interaction payload of the mix: (kind, payload)."""

    def __init__(self, fake: Any, users: Sequence[Any], artists: Sequence[str], *, seed: int = 3,
                 weights: dict[str, float] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.fake = fake
        self.roster = Roster(users, clock)
        self.artists = list(artists)
        self.rng = random.Random(seed)
        synced = {c["name"] for c in fake.synced_commands(fake.default_guild.id)}
        self.weights = {k: w for k, w in (weights or MIX_WEIGHTS).items()
                        if k in ("feedback", "why", "autocomplete") or k in synced}
        self.has_playlist = "playlist" in synced
        self.shown: deque[Shown] = deque(maxlen=200)

    def remember(self, kind: str, record: Any) -> None:
        """Keep /recommend answers so later clicks vote on items really shown."""
        if kind != "recommend":
            return
        final = record.final()
        if final is None or final.message is None:
            return
        ids = [c for c in final.custom_ids() if c.startswith(("sonance:fb:", "sonance:why:"))]
        if ids:
            owner = self.fake.user(int(record.payload["member"]["user"]["id"]))
            self.shown.append(Shown(final, owner, ids))

    def next(self) -> tuple[str, dict[str, Any]]:
        kinds = list(self.weights)
        for _ in range(20):
            kind = self.rng.choices(kinds, weights=[self.weights[k] for k in kinds])[0]
            payload = self.build(kind)
            if payload is not None:
                return kind, payload
        kind = "account"
        return kind, self.fake.slash("account", user=self.roster.next(kind))

    def build(self, kind: str) -> dict[str, Any] | None:
        fake, rng = self.fake, self.rng
        if kind in ("feedback", "why"):
            if not self.shown:
                return None
            shown = rng.choice(self.shown)
            prefix = "sonance:fb:" if kind == "feedback" else "sonance:why:"
            choices = [c for c in shown.custom_ids if c.startswith(prefix)]
            if not choices:
                return None
            return fake.button(rng.choice(choices), message=shown.message, user=shown.owner)  # type: ignore[no-any-return]
        user = self.roster.next(kind)
        if user is None:
            return None
        artist = rng.choice(self.artists)
        if kind == "recommend":
            return fake.slash("recommend", {"kind": "artists", "count": rng.choice([5, 8, 10])}, user=user)  # type: ignore[no-any-return]
        if kind == "similar":
            return fake.slash("similar", {"artist": artist}, user=user)  # type: ignore[no-any-return]
        if kind == "whoknows":
            return fake.slash("whoknows", {"artist": artist}, user=user)  # type: ignore[no-any-return]
        if kind == "top":
            options: dict[str, Any] = {"period": rng.choice(["7day", "1month", "12month", "overall"])}
            if rng.random() < 0.3:
                options["member"] = self.roster.other(user)
            return fake.slash("top", options, user=user)  # type: ignore[no-any-return]
        if kind == "compat":
            return fake.slash("compat", {"member": self.roster.other(user)}, user=user)  # type: ignore[no-any-return]
        if kind in ("leaderboard", "matches", "account"):
            return fake.slash(kind, user=user)  # type: ignore[no-any-return]
        if kind == "playlist":
            return fake.slash("playlist", {"mode": "for me", "length": 10}, user=user)  # type: ignore[no-any-return]
        if kind == "autocomplete":
            prefix = artist[: rng.randint(1, 3)]
            which = rng.choice(["whoknows", "similar", "recommend", "dm"] + (["playlist"] if self.has_playlist else []))
            if which == "whoknows":
                return fake.autocomplete("whoknows", "artist", prefix, user=user)  # type: ignore[no-any-return]
            if which == "similar":
                return fake.autocomplete("similar", "artist", prefix, user=user)  # type: ignore[no-any-return]
            if which == "recommend":
                return fake.autocomplete("recommend", "tag", rng.choice(["ele", "sh", "met", "po", ""]), user=user)  # type: ignore[no-any-return]
            if which == "playlist":
                return fake.autocomplete("playlist", "seed", prefix, {"mode": "from seed"}, user=user)  # type: ignore[no-any-return]
            return fake.autocomplete("dm", "timezone", rng.choice(["Europe/", "America/N", "UT", "Asia"]),  # type: ignore[no-any-return]
                                     {"enabled": True}, user=user)
        raise ValueError(f"unknown kind {kind!r}")


# --------------------------------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    ack_s: float | None
    final_s: float | None
    error: str | None  # an error response, a missing/late answer or a rejected callback
    cooldown: bool = False
    finished_at: float = 0.0


def classify(record: Any) -> tuple[str | None, bool]:
    """(error or None, hit a cooldown). Refusals that are product behaviour are not errors."""
    if record.rejected_callbacks:
        cb = record.rejected_callbacks[0]
        return f"callback rejected: HTTP {cb.status} code {cb.error_code}", False
    if record.ack is None:
        return "never acknowledged", False
    final = record.final()
    texts = [e.content or "" for e in record.events if hasattr(e, "kind") and hasattr(e, "body")]
    if any(APOLOGY_MARK in t for t in texts):
        return "apology: " + next(t for t in texts if APOLOGY_MARK in t)[:100], False
    if record.type == 4:  # autocomplete: the ack is the answer
        return None, False
    if final is None:
        return "no final answer", False
    return None, COOLDOWN_MARK in (final.content or "")


async def run_one(fake: Any, kind: str, payload: dict[str, Any], *, final_wait_s: float = FINAL_WAIT_S
                  ) -> tuple[Outcome, Any]:
    """Dispatch one interaction and wait for its acknowledgement and (unless autocomplete) its answer."""
    record = await fake.dispatch(payload)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(AssertionError):
        await record.wait_ack(timeout=ACK_DEADLINE_S + 0.5)
    if record.ack is not None and record.type != 4:
        with contextlib.suppress(AssertionError):
            await record.wait_final(timeout=final_wait_s)
    final = record.final()
    ack_s = record.ack_latency
    if record.type == 4:
        final_s = ack_s
    else:
        final_s = (final.at - record.dispatched_at) if final is not None else None
    error, cooldown = classify(record)
    if error is None and ack_s is not None and ack_s > ACK_DEADLINE_S:
        error = f"acknowledged after {ack_s:.2f} s"
    return Outcome(kind, ack_s, final_s, error, cooldown, loop.time()), record


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest rank (the same definition as `scripts/bench bot`)."""
    if not values:
        return None
    from tests.perf.bench_bot import percentile as nearest_rank

    return nearest_rank(values, q)


def latency_summary(values: Sequence[float | None]) -> dict[str, float | None]:
    """p50/p95/max in ms."""
    vals = [v * 1000.0 for v in values if v is not None]
    if not vals:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    return {"p50": round(percentile(vals, 50) or 0.0, 1), "p95": round(percentile(vals, 95) or 0.0, 1),
            "max": round(max(vals), 1), "n": len(vals)}


# --------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------


@dataclass
class ResourceSample:
    t_s: float
    rss_mib: float
    tasks: int  # all asyncio tasks
    view_timers: int  # discord.py view timeout tasks (one per live view: bounded by the view timeouts)
    in_flight: int  # interactions the driver is waiting on
    bot_tasks: int  # tasks - view_timers - in_flight driver tasks - the soak's own loops
    fds: int
    sockets: int
    db_checked_out: int
    ips: float  # interactions finished per second since the previous sample
    ack_p95_ms: float | None  # over the interactions finished since the previous sample
    phase: str = "load"  # warmup | load | quiesced


def _view_timers() -> int:
    n = 0
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        name = getattr(coro, "__qualname__", "") or ""
        if "timeout_task_impl" in name:
            n += 1
    return n


def db_checked_out(services: Services) -> int:
    pool = services.engine.sync_engine.pool
    checked = getattr(pool, "checkedout", None)
    return int(checked()) if callable(checked) else 0


class Sampler:
    def __init__(self, services: Services, own_tasks: int) -> None:
        import psutil

        self.proc = psutil.Process()
        self.services = services
        self.own_tasks = own_tasks
        self.samples: list[ResourceSample] = []
        self.started = time.monotonic()
        self._last_t = self.started
        self._last_count = 0

    def sample(self, finished: Sequence[Outcome], in_flight: int, phase: str) -> ResourceSample:
        now = time.monotonic()
        new = finished[self._last_count:]
        self._last_count = len(finished)
        dt = max(1e-6, now - self._last_t)
        self._last_t = now
        tasks = len(asyncio.all_tasks())
        timers = _view_timers()
        try:
            sockets = len(self.proc.net_connections(kind="inet"))
        except Exception:  # psutil may be refused on some platforms: report -1, don't crash
            sockets = -1
        acks = [o.ack_s * 1000.0 for o in new if o.ack_s is not None]
        s = ResourceSample(
            t_s=round(now - self.started, 1), rss_mib=round(self.proc.memory_info().rss / 2**20, 1), tasks=tasks,
            view_timers=timers, in_flight=in_flight, bot_tasks=tasks - timers - in_flight - self.own_tasks,
            fds=self.proc.num_fds() if hasattr(self.proc, "num_fds") else -1, sockets=sockets,
            db_checked_out=db_checked_out(self.services), ips=round(len(new) / dt, 2),
            ack_p95_ms=round(percentile(acks, 95) or 0.0, 1) if acks else None, phase=phase)
        self.samples.append(s)
        return s


# --------------------------------------------------------------------------------------------------
# Verdict
# --------------------------------------------------------------------------------------------------


def _mean(xs: Sequence[float]) -> float:
    return statistics.fmean(xs) if xs else 0.0


def _slope_per_min(ts: Sequence[float], ys: Sequence[float]) -> float:
    if len(ts) < 2:
        return 0.0
    mt, my = _mean(ts), _mean(ys)
    den = sum((t - mt) ** 2 for t in ts)
    return (sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / den * 60.0) if den else 0.0


def verdict(samples: Sequence[ResourceSample], baseline: ResourceSample | None,
            quiesced: ResourceSample | None) -> dict[str, Any]:
    """Compare the last third of the load samples with the first third; plus the quiesced checks."""
    load = [s for s in samples if s.phase == "load"]
    checks: dict[str, Any] = {}
    if len(load) < 3:
        return {"ok": None, "reason": f"only {len(load)} samples after warm-up; run longer", "checks": checks}
    k = max(1, len(load) // 3)
    first, last = load[:k], load[-k:]

    def cmp(name: str, get: Callable[[ResourceSample], float], tolerance: float) -> None:
        a, b = _mean([get(s) for s in first]), _mean([get(s) for s in last])
        checks[name] = {"first": round(a, 2), "last": round(b, 2), "growth": round(b - a, 2),
                        "tolerance": round(tolerance, 2), "ok": b - a <= tolerance}

    rss_first = _mean([s.rss_mib for s in first])
    cmp("rss_mib", lambda s: s.rss_mib, max(TOLERANCES["rss_rel"] * rss_first, TOLERANCES["rss_abs_mib"]))
    cmp("bot_tasks", lambda s: s.bot_tasks, TOLERANCES["tasks_abs"])
    cmp("fds", lambda s: s.fds, TOLERANCES["fds_abs"])
    if all(s.sockets >= 0 for s in load):
        cmp("sockets", lambda s: s.sockets, TOLERANCES["sockets_abs"])
    cmp("db_checked_out", lambda s: s.db_checked_out, TOLERANCES["db_checked_out_abs"])
    checks["rss_slope_mib_per_min"] = round(_slope_per_min([s.t_s for s in load], [s.rss_mib for s in load]), 2)
    if quiesced is not None:
        checks["quiesced_db_checked_out"] = {"value": quiesced.db_checked_out, "ok": quiesced.db_checked_out == 0}
        if baseline is not None:
            growth = quiesced.bot_tasks - baseline.bot_tasks
            checks["quiesced_bot_tasks"] = {"baseline": baseline.bot_tasks, "value": quiesced.bot_tasks,
                                            "growth": growth, "tolerance": TOLERANCES["tasks_abs"],
                                            "ok": growth <= TOLERANCES["tasks_abs"]}
    ok = all(v["ok"] for v in checks.values() if isinstance(v, dict))
    return {"ok": ok, "first_third_samples": len(first), "last_third_samples": len(last), "checks": checks}


# --------------------------------------------------------------------------------------------------
# The soak
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoakConfig:
    minutes: float = 3.0
    rate: float = 5.0  # interactions started per second
    max_in_flight: int = 32
    interval_s: float = 10.0
    warmup_s: float = 30.0
    extra_members: int = 40
    sync_every_s: float = 30.0
    sync_accounts: int = 8
    new_scrobbles: int = 5  # per synced account per round
    database_url: str | None = None  # a PostgreSQL server URL; default a temporary SQLite file
    seed: int = 7


@dataclass
class SoakReport:
    database: str
    config: dict[str, Any]
    duration_s: float = 0.0
    interactions: int = 0
    errors: int = 0
    cooldowns: int = 0
    error_samples: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    ack_ms: dict[str, Any] = field(default_factory=dict)
    final_ms: dict[str, Any] = field(default_factory=dict)
    ips_mean: float = 0.0
    syncs: dict[str, Any] = field(default_factory=dict)
    fake_discord: dict[str, int] = field(default_factory=dict)
    log_errors: int = 0
    samples: list[ResourceSample] = field(default_factory=list)
    verdict: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["samples"] = [asdict(s) for s in self.samples]
        return data


class _ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"{record.name}: {record.getMessage()[:160]}")


def soak_settings(database_url: str, data_dir: Path, lastfm: dict[str, Any], guild_id: int) -> Settings:
    """Hermetic settings: only the local fakes; nothing from the environment."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, DATABASE_URL=database_url, REDIS_URL=None, SONANCE_DATA_DIR=str(data_dir),
        SONANCE_SECRET_KEY=secrets.token_urlsafe(32), DISCORD_DEV_GUILD_ID=str(guild_id),
        DISCORD_SHARD_COUNT=None, OPENAI_API_KEY=None, OPENAI_BASE_URL=None, SPOTIFY_CLIENT_ID=None,
        SONANCE_PUBLIC_BASE_URL="http://127.0.0.1:8080", SONANCE_LOG_LEVEL="WARNING",
        LASTFM_REQUESTS_PER_SECOND=50.0, **lastfm)


def prune_fake(fake: Any, now: float) -> None:
    """Drop the fake Discord's records of interactions answered long ago (bounded bookkeeping)."""
    for iid, rec in list(fake.interactions.items()):
        done_at = max((e.at for e in rec.events), default=None)
        if done_at is not None and now - done_at > PRUNE_AFTER_S:
            fake.forget_interaction(iid)
            ids = [rec.original_message["id"]] if rec.original_message else []
            ids += [m.message["id"] for m in rec.followups if m.message]
            for mid in ids:
                fake.messages.pop(int(mid), None)
        elif done_at is None and rec.dispatched_at is not None and now - rec.dispatched_at > 120.0:
            fake.forget_interaction(iid)
    del fake.requests[:]


async def _sync_round(services: Services, lastfm_fake: Any, names: Sequence[tuple[str, int]], n_new: int,
                      artists: Sequence[str], rng: random.Random, stats: dict[str, Any]) -> None:
    """New scrobbles appear in the fake, then each account is synced (as the scheduler would)."""
    sync = services.lastfm_sync
    now = int(time.time())
    for name, _ in names:
        user = lastfm_fake.users[name.lower()]
        last = user.plays[-1][0] if user.plays else now - 3600
        for i in range(n_new):
            a = rng.choice(artists)
            user.plays.append((max(last + 1 + i, now - n_new + i), a, f"{a} album", f"{a} song {rng.randint(1, 40)}"))
    started = time.perf_counter()
    reports = await asyncio.gather(*(sync.sync_account(acc) for _, acc in names), return_exceptions=True)
    stats["rounds"] += 1
    stats["seconds"].append(round(time.perf_counter() - started, 3))
    for r in reports:
        if isinstance(r, BaseException):
            stats["errors"] += 1
            stats["error_samples"].append(repr(r)[:160])
        elif r.status != "ok":
            stats["errors"] += 1
            stats["error_samples"].append(f"{r.status}: {r.reason} {r.message}"[:160])
        else:
            stats["inserted"] += r.inserted


async def run_soak(config: SoakConfig, progress: Callable[[str], None] = lambda _m: None,
                   on_sample: Callable[[ResourceSample], None] = lambda _s: None) -> SoakReport:
    from core.db.repositories import AccountRepository
    from core.services import build_services
    from tests.perf.bench_bot import _database

    if config.minutes <= 0 or config.rate <= 0 or config.max_in_flight < 1:
        raise ConfigError("--minutes, --rate and --max-in-flight must be positive")
    fakes = load_fakes()
    world = fakes.world
    guilds, users, members = load_world(fakes, config.extra_members, config.seed)
    error_counter = _ErrorCounter()
    logging.getLogger().addHandler(error_counter)
    rng = random.Random(config.seed)
    try:
        with tempfile.TemporaryDirectory(prefix="sonance-soak-") as tmp_name:
            tmp = Path(tmp_name)
            async with _database(config.database_url, tmp) as (url, label), \
                    fakes.lastfm.LastfmFake() as lastfm_fake:
                lastfm_fake.log_limit = 1000  # bounded request log
                services = await build_services(soak_settings(url, tmp / "data", lastfm_fake.settings_overrides(),
                                                              world.GUILD_ID))
                report = SoakReport(label, asdict(config) | {"database_url": None})
                try:
                    progress(f"seeding the world ({5 + len(members)} members, {label})")
                    await seed_load_world(services, fakes, members)
                    # Last.fm accounts that the soak syncs: the first `sync_accounts` extra members
                    sync_names: list[tuple[str, int]] = []
                    async with services.session() as session:
                        accounts = AccountRepository(session, None)
                        for m in members[: config.sync_accounts]:
                            now = int(time.time())
                            lastfm_fake.add_user(m.lastfm_name, scrobbles=[
                                (now - 3600 + 60 * k, a, f"{a} album", f"{a} song {k}")
                                for k, a in enumerate(m.artists * 4)])
                            acc = await accounts.get(await _user_id(session, m.discord_id), "lastfm")
                            assert acc is not None
                            sync_names.append((m.lastfm_name, int(acc.id)))
                    await _run_bot_phase(config, fakes, guilds, users, services, lastfm_fake, sync_names, rng,
                                         report, progress, on_sample)
                finally:
                    await services.close()
    finally:
        logging.getLogger().removeHandler(error_counter)
    report.log_errors = error_counter.count
    if error_counter.first:
        report.error_samples += [f"log: {m}" for m in error_counter.first]
    return report


async def _user_id(session: Any, discord_id: int) -> int:
    from core.db.repositories import UserRepository

    user = await UserRepository(session).by_discord_id(discord_id)
    assert user is not None
    return int(user.id)


async def _run_bot_phase(config: SoakConfig, fakes: Fakes, guilds: list[Any], users: list[Any], services: Services,
                         lastfm_fake: Any, sync_names: list[tuple[str, int]], rng: random.Random,
                         report: SoakReport, progress: Callable[[str], None],
                         on_sample: Callable[[ResourceSample], None]) -> None:
    from bot.client import create_bot

    world = fakes.world
    artists = list(world.CATALOG)
    loop = asyncio.get_running_loop()
    async with fakes.discord.FakeDiscord(guilds=guilds, users=users) as fake:
        bot = create_bot(services, guild_ready_timeout=0.05)
        async with fakes.discord.running_bot(bot, fake, timeout=60.0):
            askers = [u for u in users if not u.bot and u.username != "erin"]  # erin linked nothing
            mix = CommandMix(fake, askers, artists, seed=config.seed)
            finished: list[Outcome] = []
            in_flight: set[asyncio.Task[None]] = set()
            sync_stats: dict[str, Any] = {"rounds": 0, "inserted": 0, "errors": 0, "seconds": [],
                                          "error_samples": [], "accounts": len(sync_names)}
            # one sequential request per kind first: trains the model, builds the compat space
            progress("warming up (first request of each kind trains or loads what it needs)")
            for kind in ("recommend", "recommend", "compat", "similar", "whoknows", "top", "playlist"):
                payload = mix.build(kind) if kind in mix.weights else None
                if payload is not None:
                    _outcome, record = await run_one(fake, kind, payload, final_wait_s=60.0)
                    mix.remember(kind, record)
            await _sync_round(services, lastfm_fake, sync_names, 0, artists, rng, sync_stats)  # first: full

            sampler = Sampler(services, own_tasks=2)  # the sampler loop and the sync loop
            baseline = sampler.sample(finished, 0, "warmup")
            on_sample(baseline)
            duration = config.minutes * 60.0
            started = loop.time()
            deadline = started + duration
            max_count = int(duration * config.rate * 1.05) + 1
            stop = asyncio.Event()

            async def one(kind: str, payload: dict[str, Any]) -> None:
                outcome, record = await run_one(fake, kind, payload)
                finished.append(outcome)
                mix.remember(kind, record)

            async def sampler_loop() -> None:
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), config.interval_s)
                    if stop.is_set():
                        break
                    phase = "warmup" if loop.time() - started < config.warmup_s else "load"
                    on_sample(sampler.sample(finished, len(in_flight), phase))
                    prune_fake(fake, loop.time())

            async def sync_loop() -> None:
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), config.sync_every_s)
                    if stop.is_set() or loop.time() >= deadline:
                        break
                    await _sync_round(services, lastfm_fake, sync_names, config.new_scrobbles, artists, rng,
                                      sync_stats)

            progress(f"soaking for {config.minutes:g} min at {config.rate:g} interactions/s")
            loops = [asyncio.create_task(sampler_loop(), name="soak-sampler"),
                     asyncio.create_task(sync_loop(), name="soak-sync")]
            sent = 0
            next_at = started
            while sent < max_count and loop.time() < deadline:
                next_at += 1.0 / config.rate
                delay = next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if len(in_flight) >= config.max_in_flight:
                    continue  # back-pressure: skip this slot rather than queue unboundedly
                kind, payload = mix.next()
                report.by_kind[kind] = report.by_kind.get(kind, 0) + 1
                task = asyncio.create_task(one(kind, payload), name=f"soak-{kind}")
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                sent += 1
            # drain: bounded wait for stragglers
            if in_flight:
                await asyncio.wait(set(in_flight), timeout=DRAIN_S)
                for task in list(in_flight):
                    task.cancel()
            stop.set()
            await asyncio.gather(*loops, return_exceptions=True)
            report.duration_s = round(loop.time() - started, 1)
            await asyncio.sleep(2.0)  # let discord.py finish its own bookkeeping tasks
            prune_fake(fake, loop.time() + PRUNE_AFTER_S + 1)
            quiesced = sampler.sample(finished, 0, "quiesced")
            on_sample(quiesced)

            report.samples = sampler.samples
            report.interactions = len(finished)
            errors = [o for o in finished if o.error]
            report.errors = len(errors)
            report.error_samples = [f"{o.kind}: {o.error}" for o in errors[:8]]
            report.cooldowns = sum(1 for o in finished if o.cooldown)
            report.ack_ms = latency_summary([o.ack_s for o in finished])
            report.final_ms = latency_summary([o.final_s for o in finished])
            report.ips_mean = round(len(finished) / report.duration_s, 2) if report.duration_s else 0.0
            sync_stats["seconds_p50"] = percentile(sync_stats["seconds"], 50)
            sync_stats["seconds_max"] = max(sync_stats["seconds"], default=None)
            del sync_stats["seconds"]
            report.syncs = sync_stats
            report.fake_discord = {"unmatched_requests": len(fake.unmatched_requests),
                                   "internal_errors": len(fake.internal_errors)}
            report.verdict = verdict(sampler.samples, baseline, quiesced)
            if fake.unmatched_requests or fake.internal_errors:
                report.verdict["ok"] = False
                report.verdict["reason"] = "the fake Discord saw unknown routes or handler errors"


def run(config: SoakConfig, progress: Callable[[str], None] = lambda _m: None,
        on_sample: Callable[[ResourceSample], None] = lambda _s: None) -> SoakReport:
    """Synchronous entry point for the CLI."""
    return run_main(run_soak(config, progress, on_sample))
