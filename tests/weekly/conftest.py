"""Weekly DM fixtures: the seeded world (reused from the bot tests) and the real bot on the fake Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from discord.ext import commands

from bot.client import create_bot
from core.services import Services
from tests.bot.conftest import (  # noqa: F401 - fixtures reused here (and the one-answer check)
    bot_settings,
    fake,
    one_answer_per_interaction,
    world_services,
)
from tests.fakes.discord_server import FakeDiscord, running_bot


@pytest.fixture
async def live_bot(fake: FakeDiscord, world_services: Services) -> AsyncIterator[commands.Bot]:  # noqa: F811
    """The real bot, connected to `fake` (the weekly engine needs the bot itself to send DMs)."""
    bot = create_bot(world_services, guild_ready_timeout=0.05)
    async with running_bot(bot, fake):
        yield bot
