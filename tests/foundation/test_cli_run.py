"""`sonance run`'s likeliest first failures, through the real CLI in its own process: each is one
readable line and the right exit code, never a traceback (issue 13 §4)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

from tests.fakes.discord_server import FakeDiscord

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DISCORD_", "DATABASE_URL", "REDIS_URL", "SONANCE_", "OPENAI_", "LASTFM_", "SPOTIFY_"))}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "SONANCE_DATA_DIR": str(tmp_path / "data"),
                "SONANCE_WEB_HOST": "127.0.0.1", "SONANCE_WEB_PORT": "0",
                "SONANCE_BASE_DATASET": "none",  # no base-corpus download from these start-up tests
                **extra})
    return env


async def _start(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _finish(process: asyncio.subprocess.Process, timeout: float = 90.0) -> tuple[int, str]:  # noqa: ASYNC109
    _, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, err.decode()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _fake_env(fake: FakeDiscord, tmp_path: Path, token: str) -> dict[str, str]:
    return _env(tmp_path, DISCORD_TOKEN=token, DISCORD_API_BASE=fake.api_base,
                DISCORD_GATEWAY_URL=fake.gateway_url)


async def test_a_token_discord_rejects_is_one_line(tmp_path: Path) -> None:
    async with FakeDiscord(token="the-right-token") as fake:
        process = await _start(_fake_env(fake, tmp_path, "a-wrong-token"), tmp_path)
        code, stderr = await _finish(process)
        assert [r.status for r in fake.requests_to("GET", "/users/@me")] == [401]
    assert code != 0
    assert "Traceback" not in stderr
    [line] = _error_lines(stderr)
    assert line.startswith("error: Discord rejected DISCORD_TOKEN")


async def test_unreachable_discord_is_retried_with_backoff_then_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _env(tmp_path, DISCORD_TOKEN="x", DISCORD_API_BASE=f"http://127.0.0.1:{port}/api/v10",
               DISCORD_CONNECT_ATTEMPTS="3", DISCORD_CONNECT_BACKOFF_S="0.5")
    started = time.monotonic()
    code, stderr = await _finish(await _start(env, tmp_path))
    elapsed = time.monotonic() - started
    assert code != 0
    assert "Traceback" not in stderr
    retries = [line for line in stderr.splitlines() if "Discord is not reachable" in line]
    assert len(retries) == 2 and "retrying in 0.5 s" in retries[0] and "retrying in 1.0 s" in retries[1]
    assert "attempt 1 of 3" in retries[0] and "attempt 2 of 3" in retries[1]
    assert elapsed >= 1.5, "waits 0.5 s then 1 s between the three attempts"
    [line] = _error_lines(stderr)
    assert line.startswith(f"error: Could not reach Discord at http://127.0.0.1:{port}/api/v10 after 3 attempts")


async def test_sigterm_during_login_exits_cleanly(tmp_path: Path) -> None:
    async with FakeDiscord(token="tok") as fake:
        fake.login_gate = asyncio.Event()
        process = await _start(_fake_env(fake, tmp_path, "tok"), tmp_path)
        deadline = time.monotonic() + 60
        while not fake.requests_to("GET", "/users/@me"):
            assert time.monotonic() < deadline, "the bot never started logging in"
            assert process.returncode is None
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        code, stderr = await _finish(process)
        fake.login_gate.set()
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Connector is closed" not in stderr
    assert _error_lines(stderr) == []


async def test_run_prints_the_invite_url_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    async with FakeDiscord(token="tok") as fake:
        process = await _start(_fake_env(fake, tmp_path, "tok"), tmp_path)
        await fake.wait_until_ready(timeout=60)
        process.send_signal(signal.SIGTERM)
        code, stderr = await _finish(process)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    invite = (f"https://discord.com/oauth2/authorize?client_id={fake.application_id}"
              "&scope=bot+applications.commands&permissions=52224")
    assert invite in stderr
