"""End-to-end bot fixtures: the real SonanceBot against the local fake Discord, on the test database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.client import create_bot
from core.config import Settings
from core.services import Services, build_services
from tests.bot.world import GUILD_ID, fake_world, seed_world
from tests.conftest import flush_test_redis, make_settings
from tests.fakes.discord_server import FakeDiscord, running_bot


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def one_answer_per_interaction(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every bot test: each interaction got exactly one clean answer (no second initial
    response, no touch of a deleted message, no repeated message, no error after the answer), and
    the bot never failed to deliver an error message.

    Why autouse: the double refusal of issue 13 went unnoticed because no test looked for it.
    """
    fake: FakeDiscord | None = request.getfixturevalue("fake") if "fake" in request.fixturenames else None
    collect = _Collect()
    logger = logging.getLogger("sonance.bot")
    logger.addHandler(collect)
    try:
        yield
    finally:
        logger.removeHandler(collect)
    undelivered = [r.getMessage() for r in collect.records if "could not deliver" in r.getMessage()]
    assert not undelivered, f"the bot could not deliver messages: {undelivered}"
    if fake is not None:
        fake.assert_one_answer_per_interaction()


@pytest.fixture
def bot_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, DISCORD_DEV_GUILD_ID=str(GUILD_ID),
                         SONANCE_PUBLIC_BASE_URL="http://127.0.0.1:8080")


@pytest.fixture
async def world_services(bot_settings: Settings) -> AsyncIterator[Services]:
    services = await build_services(bot_settings, upgrade_schema=False)
    await flush_test_redis()  # counters and caches of earlier tests must not leak into this world
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
