"""The bot's small web server: /healthz and the OAuth callbacks (registered by the account layer).

It answers only its own routes (anything else is a plain 404) and refuses bodies over a small limit:
nothing here needs more than a query string.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from core.accounts import LASTFM_CALLBACK_PATH, SPOTIFY_CALLBACK_PATH, AccountService, OAuthLinked
from core.errors import SonanceError, SourceUnavailable
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


async def explainer_state(services: Services) -> dict[str, Any]:
    """/healthz: "ok", "off" (templates by configuration) or "failing: <why>" (e.g. "http 401"): a
    failing model degrades to templates, so it is reported but does not make the bot unhealthy."""
    if services.explainer is None:  # the clients start with the bot
        return {"explainer": "starting" if services.settings.openai_api_key else "off"}
    return {"explainer": services.explainer.status()}


PROVIDER_NAMES = {"lastfm": "Last.fm", "spotify": "Spotify"}


def oauth_page(title: str, message: str, *, ok: bool) -> str:
    """The small page a browser lands on after approving (or failing) an OAuth link."""
    colour = "#1DB954" if ok else "#c0392b"
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Sonance</title>"
            "<meta name='referrer' content='no-referrer'></head>"
            "<body style='font-family:sans-serif;max-width:32em;margin:3em auto'>"
            f"<h1 style='color:{colour}'>{escape(title)}</h1><p>{escape(message)}</p>"
            "<p>You can close this tab and go back to Discord.</p></body></html>")


def _html(body: str, status: int) -> web.Response:
    # no-store: the URL carried a one-time code/state; nothing about it should be cached.
    return web.Response(text=body, status=status, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


async def _oauth_callback(request: web.Request, provider: str,
                          complete: Callable[[AccountService], Awaitable[OAuthLinked]]) -> web.Response:
    """Shared shape of both callbacks: every outcome is a readable page, never a traceback.

    The query (code, token, state) is never logged: it is a credential until consumed.
    """
    services = request.app[SERVICES_KEY]
    name = PROVIDER_NAMES[provider]
    if "error" in request.query:  # the user pressed "Cancel" on the provider's consent page
        return _html(oauth_page(f"{name} not linked", "You declined the request, so nothing was linked. "
                                "Run the /link command again whenever you like.", ok=False), 400)
    try:
        await services.start_clients()  # idempotent; the web server may answer before the bot is up
        service = services.component("accounts", AccountService)
        linked = await complete(service)
    except SourceUnavailable as exc:
        log.warning("oauth callback: %s unavailable (%s)", provider, exc.detail)
        return _html(oauth_page(f"{name} not linked", exc.user_message, ok=False), 503)
    except SonanceError as exc:
        log.info("oauth callback refused: %s", exc, extra={"provider": provider})
        return _html(oauth_page(f"{name} not linked", exc.user_message, ok=False), 400)
    except Exception:
        log.exception("oauth callback failed", extra={"provider": provider})
        return _html(oauth_page(f"{name} not linked", "Something went wrong on Sonance's side. Please run "
                                "the /link command again in a moment.", ok=False), 500)
    message = f"Your {name} account {linked.username} is now linked to Sonance and verified."
    if linked.import_started:
        message += " Your listening history is being imported; /account shows the progress."
    return _html(oauth_page(f"{name} linked", message, ok=True), 200)


async def lastfm_callback(request: web.Request) -> web.Response:
    """Last.fm web auth returns here with `?state=` (ours, in the callback URL) and `&token=`."""
    query = request.query
    return await _oauth_callback(request, "lastfm",
                                 lambda s: s.complete_lastfm(query.get("token", ""), query.get("state", "")))


async def spotify_callback(request: web.Request) -> web.Response:
    """Spotify's authorization-code redirect: `?code=…&state=…` (or `?error=access_denied`)."""
    query = request.query
    return await _oauth_callback(request, "spotify",
                                 lambda s: s.complete_spotify(query.get("code", ""), query.get("state", "")))


@web.middleware
async def limit_body(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                     ) -> web.StreamResponse:
    """413 for a body over MAX_BODY_BYTES on a known route. No handler reads a body, so aiohttp's
    `client_max_size` alone would never trigger; reading here enforces it (chunked bodies too)."""
    if request.match_info.http_exception is None and request.body_exists:
        await request.read()  # raises HTTPRequestEntityTooLarge beyond client_max_size
    return await handler(request)


def build_web_app(services: Services) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[limit_body])
    app[SERVICES_KEY] = services
    app[PROBES_KEY] = [lambda: explainer_state(services)]
    app.router.add_get("/healthz", healthz)
    app.router.add_get(LASTFM_CALLBACK_PATH, lastfm_callback)
    app.router.add_get(SPOTIFY_CALLBACK_PATH, spotify_callback)
    # SPOTIFY_REDIRECT_URI is the operator's choice; answer on its path too when it differs.
    redirect_path = urlsplit(services.settings.spotify_redirect_uri or "").path
    if redirect_path and redirect_path not in (SPOTIFY_CALLBACK_PATH, LASTFM_CALLBACK_PATH, "/healthz"):
        app.router.add_get(redirect_path, spotify_callback)
    return app


async def start_web(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("web server listening on %s:%s", host, port)
    return runner
