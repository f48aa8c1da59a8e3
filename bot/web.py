"""The bot's small web server: /healthz and the OAuth callbacks (registered by the account layer).

It answers only its own routes (anything else is a plain 404) and refuses bodies over a small limit:
nothing here needs more than a query string.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from core.services import Services

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
SERVICES_KEY: web.AppKey[Services] = web.AppKey("services", Services)
HealthProbe = Callable[[], Awaitable[dict[str, Any]]]
PROBES_KEY: web.AppKey[list[HealthProbe]] = web.AppKey("probes", list)


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    status = await services.health()
    for probe in request.app[PROBES_KEY]:
        status.update(await probe())
    healthy = status.get("database") == "ok" and all(
        not str(v).startswith("error") for v in status.values())
    status["status"] = "ok" if healthy else "unhealthy"
    return web.json_response(status, status=200 if healthy else 503)


def build_web_app(services: Services) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SERVICES_KEY] = services
    app[PROBES_KEY] = []
    app.router.add_get("/healthz", healthz)
    return app


async def start_web(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("web server listening on %s:%s", host, port)
    return runner
