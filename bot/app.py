"""`sonance run`: builds the services, starts the web server, the scheduler and the Discord client,
and shuts down cleanly.

Following discord.py's advanced start-up example, the entry point owns every resource: it creates
them in order, and on SIGINT/SIGTERM stops the scheduler first (no job talks to a closing client),
then closes the bot (no new interactions), then the web server, then the database and cache.

The scheduler (`core.scheduler.SonanceScheduler`) is started inside the running loop, next to the
bot, and competes for the leader lease: with several bot processes exactly one runs the jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from bot.client import create_bot
from bot.discord_endpoints import apply_discord_endpoints
from bot.dm_delivery import DiscordDmDelivery
from bot.membership_probe import discord_membership_probe
from bot.web import PROBES_KEY, HealthProbe, build_web_app, start_web
from core.config import Settings
from core.errors import NotLinked, SonanceError
from core.memberships import MembershipSweep
from core.runtime import tune_gc
from core.scheduler import JobSet, SonanceScheduler
from core.services import Services, build_services
from core.sync.base_corpus import start_base_import
from core.weekly import ContentPort, DigestContent, ServerMatesContent, WeeklyDigest

log = logging.getLogger(__name__)


def weekly_content(services: Services) -> ContentPort:
    """The weekly DM's content port: fresh recommendations (recorded as shown, so the DM's 👍/👎
    buttons work), or, while the model is still learning or the user's history is too thin, the
    server-mates fallback ("artists your server-mates play that you don't")."""
    fallback = ServerMatesContent(services)

    async def content(user_id: int) -> DigestContent:
        try:
            asker = await services.askers.of_user(user_id)
            if asker is None:
                raise NotLinked()
            picks = await services.recommend.weekly_content(asker)
        except SonanceError as exc:
            log.info("weekly DM: recommender unavailable for this user (%s); using server-mates picks",
                     exc.user_message, extra={"user_id": user_id, "job": "weekly_dms"})
            return await fallback(user_id)
        return picks if picks.items else await fallback(user_id)

    return content


def build_jobs(services: Services, bot: discord.Client) -> JobSet:
    """The periodic work of a bot process. Jobs look their dependencies up when they run, because
    the external clients (`services.lastfm`, the explainer) only exist after the bot's setup hook.

    Sync: `LastfmSync.sync_due` selects accounts whose cadence has come, *both* active ones (every
    `sync_active_minutes`) and dormant ones (daily), so the same call serves both jobs; the daily
    `sync_dormant` run is a safety net that finds nothing when the active job keeps up, and per-account
    locks make overlapping runs harmless. Spotify (a supplement: it only reveals the last 50 plays)
    is synced on the same cadence. The daily job also fetches Last.fm tags for artists that have none,
    which the content model needs for new artists; both jobs read global listener counts and album
    covers for what is new or stale (the base of popularity wording and embed thumbnails).
    """
    settings = services.settings

    async def public_facts(artists: int, albums: int) -> None:
        """Global listener counts and album covers for what is new or stale (nothing due: no request)."""
        facts = services.lastfm_public_facts
        await facts.refresh_listeners(limit=artists)
        await facts.enrich_album_covers(limit=albums)

    async def sync_due() -> None:
        if services.lastfm is not None:  # None: not configured, or the clients have not started yet
            await services.lastfm_sync.sync_due(active_minutes=settings.sync_active_minutes)
            await public_facts(artists=40, albums=40)  # a fresh member's artists get counts within minutes
        if services.spotify is not None:
            await services.spotify_sync.sync_due(active_minutes=settings.sync_active_minutes)

    async def retrain() -> None:
        """Nightly: retrain the artist, album and track models off the event loop; each is swapped in
        atomically, and a kind without data yet is skipped."""
        results = await services.recommend.retrain_all()
        log.info("nightly retrain done: %s",
                 {kind: m.get("version") or m.get("skipped") for kind, m in results.items()}, extra={"job": "retrain"})

    async def daily() -> None:
        await sync_due()
        if services.lastfm is not None:
            await services.lastfm_tags.enrich_artist_tags(limit=500)
            await public_facts(artists=500, albums=300)

    async def similar_graph() -> None:
        """Last.fm's similar artists (then tracks) for what members play: new and 30-day-old entries.

        Each run asks at most what the shared limit allows in one job interval (so runs do not pile
        up), artists first; tracks only get a third of what artists left over, because a member's
        track list is long and syncing must keep its share of the same limit."""
        if services.lastfm is None:
            return
        from core.scheduler import SIMILAR_GRAPH_MINUTES

        graph = services.similar_graph
        budget = max(1, int(settings.lastfm_requests_per_second * SIMILAR_GRAPH_MINUTES * 60 * 0.9))
        report = await graph.fill_artists(limit=budget)
        if not report.stopped and (left := (budget - report.considered) // 3) > 0:
            await graph.fill_tracks(limit=left)

    digest = WeeklyDigest(services, weekly_content(services), DiscordDmDelivery(bot))  # one per process

    async def weekly_dms() -> None:
        if not bot.is_ready():  # DMs need a logged-in client; the next 5-minute run will do it
            log.info("weekly DMs: bot not ready yet; skipped this run")
            return
        await digest.run_due()

    sweep = MembershipSweep(services, discord_membership_probe(bot))

    async def memberships() -> None:
        """Members who left a guild leave its boards: ask Discord about the stalest memberships."""
        if not bot.is_ready():  # REST needs a logged-in client; the next run will do it
            return
        await sweep.run()

    has_source = settings.lastfm_api_key is not None or settings.spotify_client_id is not None
    return JobSet(sync_active=sync_due if has_source else None, sync_dormant=daily if has_source else None,
                  retrain=retrain, weekly_dms=weekly_dms, memberships=memberships,
                  similar_graph=similar_graph if settings.lastfm_api_key is not None else None)


def recommender_probe(services: Services) -> HealthProbe:
    """/healthz: is the model loaded and are the scoring workers warm (a readiness signal)."""
    async def probe() -> dict[str, Any]:
        return services.recommend.status()

    return probe


def scheduler_probe(scheduler: SonanceScheduler) -> HealthProbe:
    """/healthz: leader | standby | stopped, and the number of jobs (never touches the database)."""

    async def probe() -> dict[str, Any]:
        return scheduler.status()

    return probe


async def _warm_recommender(services: Services) -> None:
    """Load the model and scoring workers at start, so the first /recommend does not pay for it.

    Then the loaded model (and everything else alive by now) is exempted from garbage collection
    (`core.runtime.tune_gc`): it is ~200k long-lived objects that every older-generation collection
    walked again; under `scripts/bench bot` one such collection paused the loop for ~90 ms while
    50 interactions waited, and young collections took ~7 ms each.
    """
    try:
        await services.recommend.warm_up()
    except Exception:
        log.warning("recommender warm-up failed; the first request will load the model", exc_info=True)
        return
    tune_gc()


class DiscordTokenRejected(SonanceError):
    user_message = ("Discord rejected DISCORD_TOKEN: copy the bot token again from the Discord developer "
                    "portal (Applications > your app > Bot > Reset Token) and set DISCORD_TOKEN.")


class DiscordUnreachable(SonanceError):
    """Discord's API did not answer after every retry (network down, DNS, a proxy in the way)."""


#: What the bot's own messages need besides answering interactions (which needs no permission):
#: reading and writing in channels, and embeds and files rendered there.
INVITE_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, embed_links=True,
                                         attach_files=True)
INVITE_SCOPES = ("bot", "applications.commands")


def invite_url(application_id: int) -> str:
    """The URL an operator opens to add Sonance to a server (bot + slash-command scopes)."""
    return discord.utils.oauth_url(application_id, permissions=INVITE_PERMISSIONS, scopes=INVITE_SCOPES)


async def wait_for_discord(settings: Settings) -> None:
    """Retry until Discord's REST API answers (`GET /gateway`, no token needed), with exponential
    backoff; after `discord_connect_attempts` tries, one `DiscordUnreachable` line.

    Why a probe before login: discord.py's login gives up on the first connection error, and
    retrying `login` itself would leave a half-made HTTP session behind on every attempt.
    """
    url = f"{discord.http.Route.BASE}/gateway"
    delay = settings.discord_connect_backoff_s
    timeout = aiohttp.ClientTimeout(total=10)
    last = ""
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for attempt in range(1, settings.discord_connect_attempts + 1):
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
                    last = f"HTTP {response.status}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                last = str(exc) or type(exc).__name__
            if attempt < settings.discord_connect_attempts:
                log.warning("Discord is not reachable (%s); retrying in %.1f s (attempt %d of %d)", last, delay,
                            attempt, settings.discord_connect_attempts)
                await asyncio.sleep(delay)
                delay *= 2
    raise DiscordUnreachable(f"Could not reach Discord at {discord.http.Route.BASE} after "
                             f"{settings.discord_connect_attempts} attempts ({last}); check the network and try again.")


async def _connect(bot: commands.Bot, token: str) -> None:
    """Log in and stay connected; a rejected token becomes one `DiscordTokenRejected` line."""
    try:
        await bot.login(token)
    except discord.LoginFailure:
        raise DiscordTokenRejected from None
    except (aiohttp.ClientError, OSError) as exc:
        raise DiscordUnreachable(f"Lost Discord while logging in ({exc}); try again.") from None
    if bot.application_id is not None:
        log.info("invite Sonance to a server with %s", invite_url(bot.application_id))
    try:
        await bot.connect(reconnect=True)
    except discord.ConnectionClosed as exc:
        if exc.code == 4004:  # Authentication failed: the gateway refused the token
            raise DiscordTokenRejected from None
        raise


async def run_bot(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM. A stop signal at any point of start-up (migrating, logging in)
    ends the process cleanly: what has started is stopped in order, and the exit code is 0."""
    settings.require("discord_token")
    assert settings.discord_token is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    apply_discord_endpoints(settings.discord_api_base, settings.discord_gateway_url)
    services = await build_services(settings)
    runner = None
    scheduler: SonanceScheduler | None = None
    warm_up: asyncio.Task[None] | None = None
    base_import: asyncio.Task[Any] | None = None
    try:
        if not await _until_stopped(wait_for_discord(settings), stop):
            return
        web_app = build_web_app(services)
        runner = await start_web(web_app, settings.web_host, settings.web_port)
        bot = create_bot(services)
        scheduler = SonanceScheduler(services, build_jobs(services, bot))
        web_app[PROBES_KEY].append(scheduler_probe(scheduler))
        web_app[PROBES_KEY].append(recommender_probe(services))
        warm_up = asyncio.create_task(_warm_recommender(services), name="recommender-warm-up")
        base_import = start_base_import(services)  # background: never delays start-up or commands
        async with bot:
            scheduler.start()  # needs the running loop; jobs wait for the bot where they must
            await _until_stopped(_connect(bot, settings.discord_token.get_secret_value()), stop)
            log.info("shutting down")
            await scheduler.stop()  # before the bot closes: a running DM job is cancelled, not broken
            await bot.close()
    finally:
        for task in (warm_up, base_import):
            if task is not None and not task.done():
                task.cancel()
        if scheduler is not None:
            await scheduler.stop()  # idempotent; covers a failed login, and always before services close
        if runner is not None:
            await runner.cleanup()
        await services.close()


async def _until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run `work` until it ends (its error propagates) or a stop signal comes; on a stop it is
    cancelled and awaited, so nothing (e.g. a login mid-request) fails against closed resources.
    True when `work` finished by itself."""
    task = asyncio.create_task(work)
    stop_task = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_task.cancel()
    if task in done:
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False
