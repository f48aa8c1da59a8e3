"""Fixtures for end-to-end tests of real discord.py bots against :mod:`tests.fakes.discord_server`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.fakes.discord_server import FakeDiscord


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A started fake Discord with the default world: guild "Sonance Dev", alice (DMs open), bob (closed)."""
    async with FakeDiscord() as server:
        yield server


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks behind: a bot that did not shut down cleanly.

    Why: discord.py spawns background tasks (ready waiters, view timeouts, shard readers); a leak
    shows up later as "Task was destroyed but it is pending" noise in unrelated tests.
    """
    before = set(asyncio.all_tasks())
    yield
    await asyncio.sleep(0)  # let just-cancelled tasks finish unwinding
    leaked = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
    if leaked:
        await asyncio.sleep(0.1)
        leaked = [t for t in leaked if not t.done()]
    assert not leaked, f"tasks still pending after the test: {leaked}"
