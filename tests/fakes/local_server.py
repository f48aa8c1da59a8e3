"""The lifecycle every local fake service shares: an aiohttp app on 127.0.0.1 (random port by
default), started and stopped as an async context manager."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LocalServer:
    """Subclasses build their routes in `app()`, set `host`/`port` and `_runner = None` in __init__."""

    host: str
    port: int
    _runner: web.AppRunner | None

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> Self:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"
