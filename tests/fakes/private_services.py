"""Private, throw-away Redis and PostgreSQL servers for fault tests (stop, freeze, restart at will).

Fault tests must never touch the machine's shared services (other engineers run the suite against
them), so each test that kills a server starts its own on a free port:

    with PrivateRedis() as redis:                 # redis-server --port P --save "" --appendonly no
        redis.stop(); redis.start()               # same port, empty data set (no persistence)
        redis.freeze(); redis.thaw()              # SIGSTOP / SIGCONT: a hung server, not a dead one

    with PrivatePostgres() as pg:                 # initdb + pg_ctl in a temp dir, trust auth, 127.0.0.1
        pg.url                                    # postgresql://postgres@127.0.0.1:P/postgres
        pg.restart()                              # pg_ctl restart -m fast (sessions are terminated)

PostgreSQL refuses to run as root, so when the tests run as root the server commands run as the
`postgres` OS user (`runuser -u postgres --`) in a directory that user owns. `unavailable_reason()`
says why a server cannot be started here (missing binaries or user), for `pytest.skip`.

Teardown: `close()` is idempotent and is called by the context managers, by the pytest fixtures'
finalizers and, as a last resort, at interpreter exit for anything still running.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

_LIVE: set[Any] = set()  # instances to close at interpreter exit if a finalizer never ran


@atexit.register
def _close_leftovers() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.close()


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int, timeout: float = 0.2) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ Redis


class PrivateRedis:
    """A redis-server child process on its own port, without persistence."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    @staticmethod
    def unavailable_reason() -> str | None:
        if shutil.which("redis-server") is None:
            return "redis-server binary not installed"
        return None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        if self.running:
            return self
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} (port {self.port} taken?)")
            if self._pong():
                return self
            time.sleep(0.05)
        self.close()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate the server (connections are refused afterwards) and wait until the port is free."""
        if self.proc is None:
            return
        if self.frozen:
            self.thaw()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> PrivateRedis:
        self.stop()
        return self.start()

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers (a hung server)."""
        assert self.proc is not None and self.proc.poll() is None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.proc is not None and self.frozen:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.frozen = False

    def close(self) -> None:
        try:
            self.stop()
        finally:
            _LIVE.discard(self)

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------- PostgreSQL


def postgres_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb and pg_ctl, else PATH, else None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.parent.name.split(".")],
                        reverse=True)
    for initdb in candidates:
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").exists():
            return bindir
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    return None


class PrivatePostgres:
    """A PostgreSQL cluster of its own: initdb'd into a temp dir, listening on 127.0.0.1:<port>.

    Tuned for tests (fsync off, small buffers): durability across an OS crash is not under test; a
    server restart (`pg_ctl restart -m fast`) still goes through a clean shutdown and recovery.
    """

    OS_USER = "postgres"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bindir = postgres_bindir()
        self.root: Path | None = None
        self.started = False

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if postgres_bindir() is None:
            return "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(cls.OS_USER)
            except KeyError:
                return f"running as root and there is no {cls.OS_USER!r} OS user to run PostgreSQL as"
            if shutil.which("runuser") is None:
                return "running as root and `runuser` is not available to drop to the postgres user"
        return None

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def url(self) -> str:
        """A libpq-style URL (Settings turns it into postgresql+asyncpg)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *args: str) -> list[str]:
        assert self.bindir is not None
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.OS_USER, "--", *cmd]
        return cmd

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        result = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}"
                               f"\n{self.server_log()}")

    def server_log(self, tail: int = 2000) -> str:
        if self.root is None or not (self.root / "server.log").exists():
            return ""
        return (self.root / "server.log").read_text(errors="replace")[-tail:]

    def _init(self) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        self.root = Path(tempfile.mkdtemp(prefix="sonance-pg-"))
        _LIVE.add(self)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.OS_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync", "--no-instructions")
        settings = {"port": str(self.port), "listen_addresses": "127.0.0.1",
                    "unix_socket_directories": str(self.root), "fsync": "off", "synchronous_commit": "off",
                    "full_page_writes": "off", "shared_buffers": "16MB", "max_connections": "60"}
        with (self.data_dir / "postgresql.auto.conf").open("a") as conf:  # read again by `pg_ctl restart`
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())

    def start(self) -> PrivatePostgres:
        if self.root is None:
            self._init()
        if self.started:
            return self
        assert self.root is not None
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "start")
        self.started = True
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.root is None or not self.started:
            return
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-m", mode, "stop")
        self.started = False

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m <mode>`: every session is terminated, then the server comes back."""
        assert self.root is not None and self.started
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "-m", mode, "restart")

    def close(self) -> None:
        """Stop the server (immediately) and delete its files; safe to call twice."""
        try:
            if self.root is not None and self.started:
                try:
                    self.stop("immediate")
                except Exception:
                    self._kill_postmaster()
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None
            _LIVE.discard(self)

    def _kill_postmaster(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        with contextlib.suppress(Exception):
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGQUIT)
        self.started = False

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
