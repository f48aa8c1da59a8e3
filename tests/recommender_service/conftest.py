"""The seeded bot world (tests/bot/world.py) without Discord: services over a database with listeners."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.config import Settings
from core.services import Services, build_services
from tests.bot.world import seed_world


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[Services]:
    services = await build_services(settings, upgrade_schema=False)
    services.extras["world_ids"] = await seed_world(services)
    yield services
    await services.close()
