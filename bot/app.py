"""`sonance run`: builds the services, starts the web server and the Discord client, shuts down cleanly.

Following discord.py's advanced start-up example, the entry point owns every resource: it creates
them in order, and on SIGINT/SIGTERM closes the bot first (no new interactions), then the web
server, then the database and cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from bot.client import create_bot
from bot.discord_endpoints import apply_discord_endpoints
from bot.web import build_web_app, start_web
from core.config import Settings
from core.services import build_services

log = logging.getLogger(__name__)


async def run_bot(settings: Settings) -> None:
    settings.require("discord_token")
    assert settings.discord_token is not None
    apply_discord_endpoints(settings.discord_api_base, settings.discord_gateway_url)
    services = await build_services(settings)
    runner = None
    try:
        runner = await start_web(build_web_app(services), settings.web_host, settings.web_port)
        bot = create_bot(services)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        async with bot:
            runner_task = asyncio.create_task(bot.start(settings.discord_token.get_secret_value()))
            stop_task = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({runner_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            if runner_task in done:
                runner_task.result()  # surface a login failure
            log.info("shutting down")
            stop_task.cancel()
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await runner_task
    finally:
        if runner is not None:
            await runner.cleanup()
        await services.close()
