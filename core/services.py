"""The composition root of the engine: every long-lived resource is built once here and passed in.

`build_services` fails fast with one clear `ConfigError` when the database or Redis cannot be
reached at start, or when tokens are stored but no secret key is configured to read them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.cache import Cache, build_cache
from core.config import Settings
from core.crypto import TokenCipher
from core.db import migrate
from core.db.engine import engine_from_settings, session_factory
from core.db.repositories import AccountRepository
from core.errors import ConfigError
from core.private_files import tighten

if TYPE_CHECKING:
    from core.accounts import AccountService
    from core.compat.service import CompatService
    from core.explain.grounded import GroundedExplainer
    from core.fuzzy import FuzzyIndexes
    from core.identity import AskerDirectory
    from core.playlists.service import PlaylistService
    from core.recommender.service import RecommendService
    from core.sources.aoty import AotyClient
    from core.sources.http import SourceLimiters
    from core.sources.lastfm import LastfmClient
    from core.sources.spotify import SpotifyClient
    from core.stats import StatsService
    from core.sync.engine import LastfmSync
    from core.sync.enrichment import LastfmPublicFacts, LastfmTagEnrichment
    from core.sync.similar_graph import SimilarGraph
    from core.sync.spotify_sync import SpotifySync
    from core.weekly import WeeklySettings

log = logging.getLogger(__name__)


#: The typed engine components below, in the order `Services.close` closes them: the account
#: service first, because its background imports need the HTTP session and engine it closes after.
COMPONENTS = ("accounts", "recommend", "askers", "compat", "playlists", "stats", "weekly_settings", "lastfm_sync",
              "spotify_sync", "lastfm_tags", "lastfm_public_facts", "similar_graph", "fuzzy")


@dataclass
class Services:
    """Every long-lived resource and engine component of one process.

    Resources (engine, cache, HTTP clients) are fields built by `build_services`/`start_clients`.
    Engine components are typed, lazily built properties: each exists once per process because
    state in it must be shared by the cogs, the scheduler and the web server (a loaded taste space,
    running imports, written memberships). Built on first use, not at start, because several need
    the external clients that only exist after `start_clients`. A test may set one before its first
    use (`services.lastfm_sync = LastfmSync(…, prefetch=1)`) to configure it.
    """

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: Cache
    cipher: TokenCipher | None
    extras: dict[str, Any] = field(default_factory=dict)  # free-form per-process notes (tests keep fixtures here)
    http: aiohttp.ClientSession | None = None
    limiters: SourceLimiters | None = None
    lastfm: LastfmClient | None = None  # None when LASTFM_API_KEY is not set
    spotify: SpotifyClient | None = None  # None unless the Spotify app is configured
    aoty: AotyClient | None = None
    # Built once with the services, never None: template-only until `start_clients` connects a
    # configured model (core/explain/grounded.py), so no caller needs a fallback of its own.
    explainer: GroundedExplainer = field(init=False)

    def __post_init__(self) -> None:
        from core.explain.factory import build_explainer

        self.explainer = build_explainer(self.settings, self.cache, deferred=True)

    # --- engine components (one per process, built on first use) ---------------------------------
    @cached_property
    def askers(self) -> AskerDirectory:
        from core.identity import AskerDirectory

        return AskerDirectory(self)

    @cached_property
    def accounts(self) -> AccountService:
        from core.accounts import AccountService

        return AccountService(self)

    @cached_property
    def compat(self) -> CompatService:
        from core.compat.service import CompatService

        return CompatService(self)

    @cached_property
    def playlists(self) -> PlaylistService:
        from core.playlists.service import PlaylistService

        return PlaylistService(self)

    @cached_property
    def stats(self) -> StatsService:
        from core.stats import StatsService

        return StatsService(self)

    @cached_property
    def weekly_settings(self) -> WeeklySettings:
        from core.weekly import WeeklySettings

        return WeeklySettings(self)

    @cached_property
    def lastfm_sync(self) -> LastfmSync:
        """The Last.fm sync engine of first imports (accounts) and the scheduler's sync jobs alike."""
        from core.sync.engine import LastfmSync

        return LastfmSync(self, self.lastfm)  # type: ignore[arg-type]  # used only when Last.fm is set

    @cached_property
    def spotify_sync(self) -> SpotifySync:
        from core.sync.spotify_sync import SpotifySync

        return SpotifySync(self)

    @cached_property
    def lastfm_tags(self) -> LastfmTagEnrichment:
        from core.sync.enrichment import LastfmTagEnrichment

        return LastfmTagEnrichment(self)

    @cached_property
    def lastfm_public_facts(self) -> LastfmPublicFacts:
        from core.sync.enrichment import LastfmPublicFacts

        return LastfmPublicFacts(self)

    @cached_property
    def similar_graph(self) -> SimilarGraph:
        from core.sync.similar_graph import SimilarGraph

        return SimilarGraph(self)

    @cached_property
    def fuzzy(self) -> FuzzyIndexes:
        from core.fuzzy import FuzzyIndexes

        return FuzzyIndexes(self)

    @cached_property
    def recommend(self) -> RecommendService:
        """The recommender: its served model, scoring workers and lists exist once per process."""
        from core.recommender.service import RecommendService

        return RecommendService(self)

    async def start_clients(self) -> None:
        """Create the shared HTTP session, rate limiters and external-service clients (once)."""
        if self.http is not None:
            return
        from core.sources.aoty import AotyClient
        from core.sources.http import SourceLimiters
        from core.sources.lastfm import LastfmClient
        from core.sources.spotify import SpotifyClient

        settings = self.settings
        self.http = aiohttp.ClientSession()
        self.limiters = SourceLimiters.from_settings(settings, cache=self.cache)  # shared across shards via Redis
        if settings.lastfm_api_key is not None:
            self.lastfm = LastfmClient(settings, self.http, self.limiters.lastfm)
        if settings.spotify_client_id and settings.spotify_client_secret and settings.spotify_redirect_uri:
            self.spotify = SpotifyClient(settings, self.http, self.limiters.spotify)
        self.aoty = AotyClient(settings, self.http, self.limiters.aoty)
        self.explainer.start()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits on success, rolls back on any error (nothing half-written)."""
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def health(self) -> dict[str, Any]:
        from sqlalchemy import text

        status: dict[str, Any] = {}
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            status["database"] = "ok"
        except Exception as exc:  # health must report, not raise
            status["database"] = f"error: {exc.__class__.__name__}"
        status["cache"] = "ok" if await self.cache.ping() else "degraded"
        return status

    async def close(self) -> None:
        built = [self.__dict__[name] for name in COMPONENTS if name in self.__dict__]
        for component in built:
            closer = getattr(component, "aclose", None)
            if closer is not None:
                await closer()
        await self.explainer.aclose()
        if self.http is not None:
            await self.http.close()
        await self.cache.close()
        await self.engine.dispose()


def build_cipher(settings: Settings) -> TokenCipher | None:
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        return None
    return TokenCipher(settings.secret_key.get_secret_value())


async def build_services(settings: Settings, *, upgrade_schema: bool = True) -> Services:
    """Connect, migrate and check; raises `ConfigError` with one actionable line on failure."""
    cipher = build_cipher(settings)
    tighten(settings.data_dir)  # created world-readable by an older version: only its owner may read it
    engine = engine_from_settings(settings)
    try:
        if upgrade_schema:
            revision = await migrate.upgrade(engine)
            log.info("database schema at revision %s", revision)
        else:
            await migrate.check_connection(engine)
        cache = build_cache(settings.redis_url)
        if settings.redis_url and not await cache.ping():
            await cache.close()
            raise ConfigError("Cannot reach Redis at REDIS_URL; start it or unset REDIS_URL to use the "
                              "in-process cache.")
        services = Services(settings, engine, session_factory(engine), cache, cipher)
        if cipher is None:
            async with services.session() as session:
                if await AccountRepository.without_cipher(session).count_with_tokens():
                    raise ConfigError("Stored account tokens need SONANCE_SECRET_KEY: set it to the key "
                                      "they were encrypted with.")
        return services
    except BaseException:
        await engine.dispose()
        raise
