"""A sharded Sonance deployment for tests: several real `sonance run` processes on one PostgreSQL
database and one Redis database, against the fake Discord (guilds on every shard) and the fake
Last.fm, each process recognisable in the fakes' records by its client tag.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.fakes.discord_payloads import FakeChannel, FakeGuild
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.lastfm_server import LastfmFake
from tests.perf.bench_sync import _free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: What a bot process inherits from the test's environment; everything else is set explicitly, so
#: nothing in the caller's environment (a real token, another REDIS_URL) can leak in.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
EPOCH_MS = 1_300_000_000_000  # divisible by 4, so `guild_on(k)` is on shard k of 4 (and k % 2 of 2)


def guild_on(shard: int) -> FakeGuild:
    """A guild whose events Discord routes to `shard` (of 4): (guild_id >> 22) % 4 == shard."""
    gid = ((EPOCH_MS + shard) << 22) | 1
    return FakeGuild(id=gid, name=f"Guild on shard {shard}", channels=[FakeChannel(id=gid + 1, name="general")])


@dataclass
class BotProcess:
    """One `sonance run` process: its client tag in the fakes, its shards, web port and log."""

    tag: str
    shard_ids: list[int]
    web_port: int
    proc: asyncio.subprocess.Process
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def health(self) -> dict[str, Any]:
        """/healthz, or {} when the process does not answer."""
        with contextlib.suppress(aiohttp.ClientError, ValueError, OSError, TimeoutError):
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http, \
                    http.get(f"http://127.0.0.1:{self.web_port}/healthz") as resp:
                return dict(await resp.json())
        return {}

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a machine dies."""
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
        await self.proc.wait()


def cli_env(base: Mapping[str, str]) -> dict[str, str]:
    """Environment for a `sonance` command beside the bots (same database, Redis and data dir)."""
    env = {k: v for k, v in os.environ.items() if k in INHERITED_ENV}
    env.update(base)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def bot_env(base: Mapping[str, str], fake: FakeDiscord, lastfm: LastfmFake, tag: str, shard_ids: Sequence[int],
            shard_count: int, web_port: int) -> dict[str, str]:
    env = cli_env(base)
    env.update(
        DISCORD_TOKEN=fake.token, DISCORD_API_BASE=fake.client_api_base(tag),
        DISCORD_GATEWAY_URL=fake.client_gateway_url(tag), DISCORD_SHARD_COUNT=str(shard_count),
        DISCORD_SHARD_IDS=",".join(map(str, shard_ids)), DISCORD_CONNECT_ATTEMPTS="3",
        DISCORD_CONNECT_BACKOFF_S="0.5", SONANCE_WEB_HOST="127.0.0.1", SONANCE_WEB_PORT=str(web_port),
        LASTFM_API_KEY=lastfm.api_key, LASTFM_API_SECRET=lastfm.api_secret,
        LASTFM_API_ROOT=lastfm.api_root_for(tag), LASTFM_AUTH_URL=f"{lastfm.base_url}/api/auth/",
    )
    return env


async def start_bot(workdir: Path, env: dict[str, str], fake: FakeDiscord, tag: str, shard_ids: list[int],
                    timeout_s: float = 120.0) -> BotProcess:
    """Start `python -m bot.cli run` and wait until the fake has READY sessions for all its shards."""
    home = workdir / tag
    home.mkdir(parents=True, exist_ok=True)  # its own cwd: no stray .env is read
    log_path = home / "bot.log"
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "run", cwd=home, env=env,
                                                    stdout=log_file, stderr=asyncio.subprocess.STDOUT)
    bot = BotProcess(tag, sorted(shard_ids), int(env["SONANCE_WEB_PORT"]), proc, log_path)
    deadline = time.monotonic() + timeout_s
    while fake.sessions_by_client().get(tag) != bot.shard_ids:
        if not bot.alive:
            raise AssertionError(f"bot {tag} exited with {proc.returncode}:\n{bot.log_text()[-3000:]}")
        if time.monotonic() > deadline:
            await bot.stop()
            raise AssertionError(f"bot {tag} not ready within {timeout_s}s:\n{bot.log_text()[-3000:]}")
        await asyncio.sleep(0.1)
    return bot


async def run_cli(env: dict[str, str], workdir: Path, *args: str, timeout_s: float = 300.0) -> str:
    """A `sonance` command as its own process (e.g. `train`); its output, or AssertionError."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", *args, cwd=workdir, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"sonance {' '.join(args)} failed ({proc.returncode}):\n{text[-3000:]}"
    return text


def free_port() -> int:
    return _free_port()


def window_rates(times: Sequence[float], window_s: float) -> tuple[float, float]:
    """(mean rate over the whole span, highest count in any `window_s` window / window_s)."""
    stamps = sorted(times)
    if len(stamps) < 2:
        return 0.0, 0.0
    mean = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    j, most = 0, 0
    for i, start in enumerate(stamps):
        while j < len(stamps) and stamps[j] < start + window_s:
            j += 1
        most = max(most, j - i)
    return mean, most / window_s
