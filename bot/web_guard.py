"""The web server's defences against idle, slow and too many clients.

Why: the web server shares its process with the Discord gateway and the database pool. Without
limits, a few hundred idle or half-sent connections hold file descriptors for ever; once the process
runs out of them, /healthz hangs, Discord and the database stop too, and asyncio logs an ERROR for
every failed accept.

- Idle connections and connections that never finish their request headers are closed after
  `idle_timeout_s`: aiohttp's keep-alive timer starts when the connection is made and only closes a
  connection that is waiting for a request, so it is the header timeout as well as the keep-alive
  limit. (Bodies are read under their own timeout in bot/web.py's middleware; after an early answer
  the rest of a body is drained for at most `LINGER_S`.)
- `CappedSite` caps concurrent connections at accept time: beyond the cap a connection gets a short
  503 and is closed at once, so it never holds a descriptor or a request handler.
- `AcceptErrorLimiter` logs accept errors (EMFILE and friends) once per burst with a count, instead
  of once per attempt.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import time
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

#: Idle / unfinished-headers / keep-alive timeout, seconds.
IDLE_TIMEOUT_S = 10.0
#: After an early answer (413, 408), how long the rest of an unread body is drained before closing
#: (aiohttp's default of 10 s would let a slow body hold the socket that much longer).
LINGER_S = 1.0
#: Concurrent connections the site accepts; the rest get a 503 and are closed. Never more than half
#: the process's file-descriptor limit: Discord, the database pool, Redis and the scoring workers
#: need the rest, and an accept that hits the limit fails for everyone.
MAX_CONNECTIONS = 512


def connection_cap(wanted: int = MAX_CONNECTIONS) -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return wanted if soft == resource.RLIM_INFINITY else max(8, min(wanted, soft // 2))

_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
         b"Connection: close\r\nRetry-After: 1\r\n\r\nbusy\n")
_ACCEPT_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class _Refuse(asyncio.Protocol):
    """The protocol for a connection over the cap: answer 503 and close (no parsing, no handler)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


class CappedSite(web.BaseSite):
    """A TCP site that accepts at most `max_connections` connections at a time.

    aiohttp has no connection limit of its own; the protocol factory is the one place that sees each
    accepted connection before any work is done for it, so the cap lives there.
    """

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 max_connections: int = MAX_CONNECTIONS, backlog: int = 128) -> None:
        super().__init__(runner, backlog=backlog)
        self._host, self._port, self.max_connections = host, port, connection_cap(max_connections)
        self.refused = 0

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self._runner.server
        assert server is not None
        if len(server.connections) >= self.max_connections:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("web server at its connection cap (%d): refusing connections (%d so far)",
                            self.max_connections, self.refused)
            return _Refuse()
        return server()

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self._host, self._port, backlog=self._backlog,
                                                reuse_address=True)


class AcceptErrorLimiter:
    """A loop exception handler that reports accept errors once per `window_s` burst, with a count.

    Every other exception context goes to the handler that was installed before (or the default).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, window_s: float = 60.0) -> None:
        self._loop = loop
        self._previous = loop.get_exception_handler()
        self.window_s = window_s
        self._burst_started: float | None = None
        self.suppressed = 0

    def install(self) -> AcceptErrorLimiter:
        self._loop.set_exception_handler(self)
        return self

    def uninstall(self) -> None:
        if self._loop.get_exception_handler() is self:
            self._loop.set_exception_handler(self._previous)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not (isinstance(exc, OSError) and exc.errno in _ACCEPT_ERRNOS and "accept" in context.get("message", "")):
            if self._previous is not None:
                self._previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if self._burst_started is not None and now - self._burst_started < self.window_s:
            self.suppressed += 1
            return
        if self.suppressed:
            log.error("web server could not accept connections: %s (%d more in the last burst, not logged)",
                      exc, self.suppressed)
        else:
            log.error("web server could not accept connections: %s (further errors of this burst are "
                      "counted, not logged)", exc)
        self._burst_started, self.suppressed = now, 0
