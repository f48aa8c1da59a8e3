"""Fixtures for fault tests: PRIVATE Redis / PostgreSQL servers (never the shared ones) and a bot world.

The shared services on 127.0.0.1:5432/6379 are used by other engineers' test runs, so a test that
stops, freezes or restarts a server gets its own instance on a free port. Each fixture registers its
teardown with `request.addfinalizer` before handing the server over, so the server is stopped and its
files removed even when the test (or a later fixture) fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from bot.client import create_bot
from core.config import Settings
from core.services import Services, build_services
from tests.bot.world import fake_world, seed_world
from tests.fakes.discord_server import FakeDiscord, running_bot
from tests.fakes.private_services import PrivatePostgres, PrivateRedis


@pytest.fixture
def private_redis(request: pytest.FixtureRequest) -> PrivateRedis:
    reason = PrivateRedis.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    server = PrivateRedis()
    request.addfinalizer(server.close)
    return server.start()


@pytest.fixture
def private_postgres(request: pytest.FixtureRequest) -> PrivatePostgres:
    reason = PrivatePostgres.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    server = PrivatePostgres()
    request.addfinalizer(server.close)
    return server.start()


async def flush_shared_redis(url: str | None) -> None:
    """Empty the suite's Redis database (the shared one when SONANCE_TEST_REDIS_URL is set)."""
    if not url:
        return
    from redis import asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@asynccontextmanager
async def bot_world(settings: Settings, *, prepare: Callable[[Services], Awaitable[None]] | None = None
                    ) -> AsyncIterator[tuple[FakeDiscord, Services]]:
    """The real bot against the fake Discord, on the seeded world of tests/bot/world.py.

    `await prepare(services)` runs after the services are built and before the world is seeded and the
    bot starts, e.g. to swap in a cache with a shorter back-off.
    """
    services = await build_services(settings, upgrade_schema=False)
    try:
        if prepare is not None:
            await prepare(services)
        services.extras["world_ids"] = await seed_world(services)
        guilds, users = fake_world()
        async with FakeDiscord(guilds=guilds, users=users) as fake:
            bot = create_bot(services, guild_ready_timeout=0.05)
            async with running_bot(bot, fake):
                yield fake, services
            fake.assert_one_answer_per_interaction()  # even under faults: one answer, never a second
    finally:
        await services.close()
