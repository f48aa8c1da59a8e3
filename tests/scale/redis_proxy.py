"""A TCP forwarder in front of the test Redis that a test can cut and restore.

Why: the Redis server is shared by the whole test run (and by other suites on the machine), so a
test must never stop it. Bot processes pointed at this proxy see exactly what a Redis outage looks
like to them (connections reset, new connections refused) while the server itself keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class RedisProxy:
    """127.0.0.1:<port> -> the Redis of `url`; `cut()` drops every connection and refuses new ones."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._url = parts
        self._target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.down = False
        self.port = 0

    @property
    def url(self) -> str:
        """The Redis URL (same database number and credentials) through the proxy."""
        netloc = f"127.0.0.1:{self.port}"
        if self._url.password:
            netloc = f"{self._url.username or ''}:{self._url.password}@{netloc}"
        return urlunsplit(self._url._replace(netloc=netloc))

    async def start(self) -> RedisProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self.down = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.down = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
