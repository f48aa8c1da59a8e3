"""End-to-end bot fixtures: the real SonanceBot against the local fake Discord, on the test database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.client import create_bot
from core.config import Settings
from core.services import Services, build_services
from tests.bot.world import GUILD_ID, fake_world, seed_world
from tests.conftest import make_settings
from tests.fakes.discord_server import FakeDiscord, running_bot


@pytest.fixture
def bot_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, DISCORD_DEV_GUILD_ID=str(GUILD_ID),
                         SONANCE_PUBLIC_BASE_URL="http://127.0.0.1:8080")


@pytest.fixture
async def world_services(bot_settings: Settings) -> AsyncIterator[Services]:
    services = await build_services(bot_settings, upgrade_schema=False)
    services.extras["world_ids"] = await seed_world(services)
    yield services
    await services.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    guilds, users = fake_world()
    async with FakeDiscord(guilds=guilds, users=users) as server:
        yield server


@pytest.fixture
async def sonance(fake: FakeDiscord, world_services: Services) -> AsyncIterator[FakeDiscord]:
    """The real bot running against `fake`; yields the fake to drive it."""
    bot = create_bot(world_services, guild_ready_timeout=0.05)
    async with running_bot(bot, fake):
        yield fake
