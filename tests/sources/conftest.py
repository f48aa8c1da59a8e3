"""Fixtures for the source-client tests: settings pointed at local fakes, one shared HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from core.config import Settings
from core.sources.http import RateLimiter, RetryPolicy
from core.sources.lastfm import LastfmClient
from tests.fakes.lastfm_server import LastfmFake
from tests.fakes.spotify_server import SpotifyFake

#: fast retries so failure tests stay quick; real defaults are in RetryPolicy()
FAST_RETRY = RetryPolicy(attempts=3, base_delay_s=0.02, max_delay_s=0.1, max_retry_after_s=5.0)


def make_settings(**overrides: Any) -> Settings:
    """Settings that never read the developer's .env or environment secrets."""
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def lastfm_fake() -> AsyncIterator[LastfmFake]:
    async with LastfmFake() as fake:
        yield fake


@pytest.fixture
async def spotify_fake() -> AsyncIterator[SpotifyFake]:
    async with SpotifyFake() as fake:
        yield fake


@pytest.fixture
def lastfm_limiter() -> RateLimiter:
    return RateLimiter(1000.0, burst=50)


@pytest.fixture
def lastfm(lastfm_fake: LastfmFake, http: aiohttp.ClientSession, lastfm_limiter: RateLimiter) -> LastfmClient:
    settings = make_settings(**lastfm_fake.settings_overrides())
    return LastfmClient(settings, http, lastfm_limiter, retry=FAST_RETRY, timeout_s=1.0)
