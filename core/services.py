"""The composition root of the engine: every long-lived resource is built once here and passed in.

`build_services` fails fast with one clear `ConfigError` when the database or Redis cannot be
reached at start, or when tokens are stored but no secret key is configured to read them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.cache import Cache, build_cache
from core.config import Settings
from core.crypto import TokenCipher
from core.db import migrate
from core.db.engine import engine_from_settings, session_factory
from core.db.repositories import AccountRepository
from core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: Cache
    cipher: TokenCipher | None
    extras: dict[str, Any] = field(default_factory=dict)  # components registered by later layers

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
        await self.cache.close()
        await self.engine.dispose()


def build_cipher(settings: Settings) -> TokenCipher | None:
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        return None
    return TokenCipher(settings.secret_key.get_secret_value())


async def build_services(settings: Settings, *, upgrade_schema: bool = True) -> Services:
    """Connect, migrate and check; raises `ConfigError` with one actionable line on failure."""
    cipher = build_cipher(settings)
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
                if await AccountRepository(session, None).count_with_tokens():
                    raise ConfigError("Stored account tokens need SONANCE_SECRET_KEY: set it to the key "
                                      "they were encrypted with.")
        return services
    except BaseException:
        await engine.dispose()
        raise
