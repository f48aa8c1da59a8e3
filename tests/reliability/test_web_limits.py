"""The web server against idle, slow and too many clients, and its response headers (issue 16 §3, §6).

Through `start_web`, exactly as `sonance run` serves, on a free port, with short limits so the test
is quick: hundreds of idle, partial-header and partial-body sockets do not stop /healthz answering
within 1 s, and the server closes them itself within its timeouts; connections over the cap are
refused at once; accept errors are logged once per burst; a client hanging up mid-body is a DEBUG
line, not an ERROR; every response carries the security headers and no version in `Server`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.web import build_web_app, start_web
from bot.web_guard import LINGER_S, AcceptErrorLimiter
from core.services import Services

IDLE_S = 1.5
BODY_S = 1.5
SOCKETS_PER_KIND = 100  # idle + partial headers + partial body = 300 sockets
REPO_ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture
async def server(services: Services) -> AsyncIterator[tuple[web.AppRunner, int]]:
    runner = await start_web(build_web_app(services), "127.0.0.1", 0, idle_timeout_s=IDLE_S,
                             body_timeout_s=BODY_S)  # the default connection cap
    try:
        yield runner, runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def _open(port: int, first_bytes: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if first_bytes:
        writer.write(first_bytes)
        await writer.drain()
    return reader, writer


async def _closed_after(reader: asyncio.StreamReader, started: float, limit: float) -> float:
    """Seconds until the server closed the connection (EOF), reading whatever it answered first."""
    async with asyncio.timeout(limit):
        while await reader.read(4096):
            pass
    return time.monotonic() - started


async def test_hundreds_of_idle_and_slow_sockets_neither_starve_healthz_nor_stay_open(
        server: tuple[web.AppRunner, int]) -> None:
    _runner, port = server
    kinds = {
        "idle": b"",
        "partial header": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        "partial body": b"POST /link/confirm HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200\r\n"
                        b"Content-Type: application/x-www-form-urlencoded\r\n\r\ntoken=abc",
    }
    started = time.monotonic()
    sockets = {kind: [(*(await _open(port, data)), time.monotonic()) for _ in range(SOCKETS_PER_KIND)]
               for kind, data in kinds.items()}
    opened = time.monotonic()

    async with aiohttp.ClientSession() as client:
        asked = time.monotonic()
        async with client.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 200
        healthz_s = time.monotonic() - asked
    assert healthz_s < 1.0, f"/healthz took {healthz_s:.2f}s with {3 * SOCKETS_PER_KIND} sockets held"

    closed: dict[str, list[float]] = {}
    for kind, pairs in sockets.items():
        limit = (IDLE_S if kind != "partial body" else BODY_S + LINGER_S) + 3.0
        closed[kind] = list(await asyncio.gather(*(_closed_after(r, t, limit) for r, _, t in pairs)))
        for _, writer, _t in pairs:
            writer.close()
    print(f"\n{3 * SOCKETS_PER_KIND} sockets opened in {opened - started:.2f}s; /healthz answered in "
          f"{healthz_s * 1000:.0f} ms; closed by the server after (min-max s from each socket's opening): "
          + ", ".join(f"{k} {min(v):.2f}-{max(v):.2f}" for k, v in closed.items()))
    for kind, times in closed.items():
        assert max(times) < (IDLE_S if kind != "partial body" else BODY_S + LINGER_S) + 3.0, kind
        assert min(times) >= IDLE_S - 0.1, f"{kind}: closed before its timeout"


async def test_connections_over_the_cap_are_refused_at_once(services: Services) -> None:
    runner = await start_web(build_web_app(services), "127.0.0.1", 0, idle_timeout_s=IDLE_S, max_connections=20)
    port = runner.addresses[0][1]
    try:
        held = [await _open(port, b"") for _ in range(20)]
        await asyncio.sleep(0.1)
        reader, writer = await _open(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(1.0):
            answer = await reader.read()  # the answer, then EOF: the socket is not kept
        assert answer.startswith(b"HTTP/1.1 503") and b"Connection: close" in answer
        writer.close()
        for reader, _ in held:  # the idle ones go after the idle timeout, and the server serves again
            await _closed_after(reader, time.monotonic(), IDLE_S + 3.0)
        async with aiohttp.ClientSession() as client, client.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 200
    finally:
        for _, w in held:
            w.close()
        await runner.cleanup()


async def test_accept_errors_are_logged_once_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    seen: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    limiter = AcceptErrorLimiter(loop, window_s=60).install()
    try:
        with caplog.at_level(logging.DEBUG, logger="bot.web_guard"):
            for _ in range(15_000):
                loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                             "exception": OSError(errno.EMFILE, "Too many open files")})
            loop.call_exception_handler({"message": "something else", "exception": RuntimeError("x")})
    finally:
        limiter.uninstall()
        loop.set_exception_handler(previous)
    records = [r for r in caplog.records if r.name == "bot.web_guard"]
    assert len(records) == 1 and records[0].levelno == logging.ERROR and "Too many open files" in records[0].message
    assert limiter.suppressed == 14_999
    assert [c["message"] for c in seen] == ["something else"]  # other errors go to the previous handler


async def test_a_client_leaving_mid_body_is_a_debug_line_not_an_error(
        server: tuple[web.AppRunner, int], caplog: pytest.LogCaptureFixture) -> None:
    _runner, port = server
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        _reader, writer = await _open(port, b"POST /link/confirm HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
                                            b"Content-Type: application/x-www-form-urlencoded\r\n\r\ntoken=12")
        await asyncio.sleep(0.05)
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0.3)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], \
        [(r.name, r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("disconnected mid-body" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


async def test_every_response_has_security_headers_and_no_version_in_server(
        server: tuple[web.AppRunner, int]) -> None:
    _runner, port = server
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as client:
        for method, path in (("GET", "/healthz"), ("GET", "/callback/spotify?state=x&code=y"),
                             ("GET", "/callback/lastfm?error=denied"), ("GET", "/nope"),
                             ("POST", "/link/confirm"), ("GET", "/link/confirm")):
            async with client.request(method, path) as resp:
                headers = resp.headers
                assert headers["Server"] == "Sonance", (path, headers["Server"])
                assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
                assert headers["Referrer-Policy"] == "no-referrer"
                csp = headers["Content-Security-Policy"]
                assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
                assert "form-action 'self'" in csp


_EMFILE_SERVER = r"""
import asyncio, logging, os, resource, sys
from aiohttp import web
from bot.web import start_web

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")

async def healthz(request):
    return web.Response(text="ok")

async def main():
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = await start_web(app, "127.0.0.1", 0)
    print(runner.addresses[0][1], flush=True)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    hog = []  # the rest of the process (Discord, database, workers) has used every descriptor
    try:
        while True:
            hog.append(open(os.devnull))
    except OSError:
        pass
    await asyncio.sleep(float(sys.argv[1]))
    for f in hog:
        f.close()
    print("released", flush=True)
    await asyncio.sleep(float(sys.argv[2]))
    await runner.cleanup()

asyncio.run(main())
"""


async def test_out_of_file_descriptors_logs_one_line_per_burst_and_recovers(tmp_path: Path) -> None:
    """A real EMFILE: asyncio logs one ERROR per failed accept (up to the backlog per tick, again
    every second); with the limiter the whole burst is one line, and /healthz answers once
    descriptors are free again."""
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file:  # a file, not a pipe: a flood must not block the server
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _EMFILE_SERVER, "3.0", "3.0", stdout=asyncio.subprocess.PIPE,
            stderr=log_file, cwd=REPO_ROOT)
    assert proc.stdout is not None
    try:
        port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
        await asyncio.sleep(0.5)
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(60)]  # queued, unaccepted
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"released"
        async with aiohttp.ClientSession() as client:
            asked = time.monotonic()
            async with client.get(f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                assert resp.status == 200
            assert time.monotonic() - asked < 1.0
        for _, writer in clients:
            writer.close()
    finally:
        await asyncio.wait_for(proc.communicate(), 30)
    stderr = log_path.read_text(errors="replace")
    accept_lines = [line for line in stderr.splitlines() if "accept" in line]
    print(f"\naccept error lines while out of descriptors for 3 s: {len(accept_lines)}")
    assert accept_lines, f"the server never hit EMFILE; stderr: {stderr[-500:]}"
    assert len(accept_lines) <= 2, accept_lines[:5]
    assert "Traceback" not in stderr, stderr[-2000:]
