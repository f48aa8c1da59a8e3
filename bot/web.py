"""The bot's small web server: /healthz and the OAuth callbacks (registered by the account layer).

It answers only its own routes (anything else is a plain 404) and refuses bodies over a small limit:
nothing here needs more than a query string.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import ClientPayloadError, web

from bot.web_guard import IDLE_TIMEOUT_S, LINGER_S, MAX_CONNECTIONS, AcceptErrorLimiter, CappedSite
from core.accounts import (
    LASTFM_CALLBACK_PATH,
    LINK_CONFIRM_PATH,
    SPOTIFY_CALLBACK_PATH,
    AccountService,
    PendingLink,
)
from core.domain import SOURCE_NAMES
from core.errors import SonanceError, SourceUnavailable
from core.services import Services

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
SERVICES_KEY: web.AppKey[Services] = web.AppKey("services", Services)
HealthProbe = Callable[[], Awaitable[dict[str, Any]]]
PROBES_KEY: web.AppKey[list[HealthProbe]] = web.AppKey("probes", list)
T = TypeVar("T")


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
    return {"explainer": services.explainer.status()}


_PAGE_STYLE = "font-family:sans-serif;max-width:32em;margin:3em auto"


def _page(title_html: str, body_html: str, colour: str) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Sonance</title>"
            "<meta name='referrer' content='no-referrer'></head>"
            f"<body style='{_PAGE_STYLE}'><h1 style='color:{colour}'>{title_html}</h1>{body_html}</body></html>")


def oauth_page(title: str, message: str, *, ok: bool) -> str:
    """The small page a browser lands on after approving (or failing) an OAuth link."""
    return _page(escape(title), f"<p>{escape(message)}</p><p>You can close this tab and go back to Discord.</p>",
                 "#1DB954" if ok else "#c0392b")


def confirm_page(pending: PendingLink) -> str:
    """"Link Spotify <b>victimsp</b> to Discord user <b>@alice</b>?" with the one button that links.

    Why a page and not a link at once: the state names who ran /link, not who opened the URL. A link
    forwarded to someone else would silently hand the sender that person's account; here they see
    the Discord name and can simply close the tab.
    """
    provider = SOURCE_NAMES[pending.provider]
    who = f"@{pending.discord_name}" if pending.discord_name else f"id {pending.discord_id}"
    return _page(
        f"Link {escape(provider)} <b>{escape(pending.username)}</b> to Discord user <b>{escape(who)}</b>?",
        f"<p>Sonance will read this {escape(provider)} account's listening for the Discord account "
        f"<b>{escape(who)}</b> (Discord id {pending.discord_id}).</p>"
        "<p>If you did not run /link yourself, or this is not your Discord account, close this tab: "
        "nothing has been linked.</p>"
        f"<form method='post' action='{LINK_CONFIRM_PATH}'>"
        f"<input type='hidden' name='token' value='{escape(pending.token, quote=True)}'>"
        f"<button type='submit'>Link {escape(provider)} account</button></form>",
        "#1DB954")


def _html(body: str, status: int) -> web.Response:
    # no-store: the URL carried a one-time code/state; nothing about it should be cached.
    return web.Response(text=body, status=status, content_type="text/html", headers={"Cache-Control": "no-store"})


async def _oauth_step(request: web.Request, provider: str | None,
                      step: Callable[[AccountService], Awaitable[T]]) -> T | web.Response:
    """Run one step of a link (callback or confirmation): every failure is a readable page, never a
    traceback. The query/form (code, token, state) is never logged: it is a credential until consumed."""
    services = request.app[SERVICES_KEY]
    name = SOURCE_NAMES.get(provider or "", "Account")
    try:
        await services.start_clients()  # idempotent; the web server may answer before the bot is up
        return await step(services.accounts)
    except SourceUnavailable as exc:
        log.warning("oauth %s: %s unavailable (%s)", request.path, provider, exc.detail)
        return _html(oauth_page(f"{name} not linked", exc.user_message + " The same link works again "
                                "once it is back.", ok=False), 503)
    except SonanceError as exc:
        log.info("oauth step refused: %s", exc, extra={"provider": provider, "path": request.path})
        return _html(oauth_page(f"{name} not linked", exc.user_message, ok=False), 400)
    except Exception:
        log.exception("oauth step failed", extra={"provider": provider, "path": request.path})
        return _html(oauth_page(f"{name} not linked", "Something went wrong on Sonance's side. Please run "
                                "the /link command again in a moment.", ok=False), 500)


async def _oauth_callback(request: web.Request, provider: str,
                          begin: Callable[[AccountService], Awaitable[PendingLink]]) -> web.Response:
    """Shared shape of both callbacks: exchange the code/token, then show the confirmation page."""
    if "error" in request.query:  # the user pressed "Cancel" on the provider's consent page
        name = SOURCE_NAMES[provider]
        return _html(oauth_page(f"{name} not linked", "You declined the request, so nothing was linked. "
                                "Run the /link command again whenever you like.", ok=False), 400)
    pending = await _oauth_step(request, provider, begin)
    if isinstance(pending, web.Response):
        return pending
    return _html(confirm_page(pending), 200)


async def lastfm_callback(request: web.Request) -> web.Response:
    """Last.fm web auth returns here with `?state=` (ours, in the callback URL) and `&token=`."""
    query = request.query
    return await _oauth_callback(request, "lastfm",
                                 lambda s: s.begin_lastfm(query.get("token", ""), query.get("state", "")))


async def spotify_callback(request: web.Request) -> web.Response:
    """Spotify's authorization-code redirect: `?code=…&state=…` (or `?error=access_denied`)."""
    query = request.query
    return await _oauth_callback(request, "spotify",
                                 lambda s: s.begin_spotify(query.get("code", ""), query.get("state", "")))


async def confirm_link(request: web.Request) -> web.Response:
    """The confirmation page's POST: the only request that links an account."""
    form = await request.post()
    token = form.get("token")
    linked = await _oauth_step(request, None,
                               lambda s: s.confirm_link(token if isinstance(token, str) else ""))
    if isinstance(linked, web.Response):
        return linked
    name = SOURCE_NAMES[linked.provider]
    message = f"Your {name} account {linked.username} is now linked to Sonance and verified."
    if linked.import_started:
        message += " Your listening history is being imported; /account shows the progress."
    return _html(oauth_page(f"{name} linked", message, ok=True), 200)


#: How long a request body may take to arrive (bodies are tiny here: a confirmation form at most).
BODY_TIMEOUT_S = 10.0
BODY_TIMEOUT_KEY: web.AppKey[float] = web.AppKey("body_timeout_s", float)
#: Sent with every response: the pages load nothing from anywhere, cannot be framed (clickjacking the
#: confirm button), post only to us, and never leak the one-time URL as a referrer.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Server": "Sonance",  # aiohttp's default names the Python and aiohttp versions
}


@web.middleware
async def limit_body(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                     ) -> web.StreamResponse:
    """413 for a body over MAX_BODY_BYTES on a known route, 408 for one that does not arrive within
    BODY_TIMEOUT_S. aiohttp's `client_max_size` only triggers when a handler reads the body, and it
    has no body timeout: reading here enforces both (chunked bodies too). A client that hangs up
    mid-body is routine, not an error: one DEBUG line."""
    if request.match_info.http_exception is None and request.body_exists:
        try:
            async with asyncio.timeout(request.app[BODY_TIMEOUT_KEY]):
                await request.read()  # raises HTTPRequestEntityTooLarge beyond client_max_size
        except TimeoutError:
            log.debug("request body not received within %ss; closing", request.app[BODY_TIMEOUT_KEY])
            raise web.HTTPRequestTimeout(headers={"Connection": "close"}) from None
        except (ConnectionError, ClientPayloadError) as exc:
            log.debug("client disconnected mid-body: %s", exc.__class__.__name__)
            raise web.HTTPBadRequest(headers={"Connection": "close"}) from None
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def build_web_app(services: Services) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[limit_body])
    app.on_response_prepare.append(_security_headers)
    app[SERVICES_KEY] = services
    app[PROBES_KEY] = [lambda: explainer_state(services)]
    app[BODY_TIMEOUT_KEY] = BODY_TIMEOUT_S
    app.router.add_get("/healthz", healthz)
    app.router.add_get(LASTFM_CALLBACK_PATH, lastfm_callback)
    app.router.add_get(SPOTIFY_CALLBACK_PATH, spotify_callback)
    app.router.add_post(LINK_CONFIRM_PATH, confirm_link)
    # SPOTIFY_REDIRECT_URI is the operator's choice; answer on its path too when it differs.
    redirect_path = urlsplit(services.settings.spotify_redirect_uri or "").path
    if redirect_path and redirect_path not in (SPOTIFY_CALLBACK_PATH, LASTFM_CALLBACK_PATH, LINK_CONFIRM_PATH,
                                               "/healthz"):
        app.router.add_get(redirect_path, spotify_callback)
    return app


async def start_web(app: web.Application, host: str, port: int, *, idle_timeout_s: float = IDLE_TIMEOUT_S,
                    body_timeout_s: float = BODY_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS,
                    ) -> web.AppRunner:
    """Serve `app` with the limits of bot/web_guard.py (idle/header timeout, keep-alive limit,
    connection cap, accept errors logged once per burst) and the body timeout of `limit_body`."""
    app[BODY_TIMEOUT_KEY] = body_timeout_s
    limiter = AcceptErrorLimiter(asyncio.get_running_loop())
    app.on_cleanup.append(lambda _app: _uninstall(limiter))
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle_timeout_s, lingering_time=LINGER_S)
    await runner.setup()
    site = CappedSite(runner, host, port, max_connections=max_connections)
    await site.start()
    limiter.install()
    log.info("web server listening on %s:%s", host, port)
    return runner


async def _uninstall(limiter: AcceptErrorLimiter) -> None:
    limiter.uninstall()
