"""Fixtures for explainer tests: domain samples, an in-process cache, the fake OpenAI server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.cache import InProcessCache
from core.config import Settings
from core.domain import (
    AotyFacts,
    Bridge,
    Compatibility,
    Evidence,
    Kind,
    Recommendation,
    SharedArtist,
    Weighted,
)
from core.explain import GroundedExplainer, build_explainer
from tests.fakes.openai_server import FakeOpenAIServer


def artist_rec(name: str = "Slowdive", item_id: int = 1) -> Recommendation:
    return Recommendation(
        kind=Kind.ARTIST,
        item_id=item_id,
        name=name,
        score=0.91,
        evidence=Evidence(
            items=(Weighted("My Bloody Valentine", 0.8), Weighted("Ride", 0.5), Weighted("Cocteau Twins", 0.3)),
            tags=(Weighted("shoegaze", 0.9), Weighted("dream pop", 0.6)),
            sources={"cf": 0.7, "content": 0.3},
            popularity=0.12,
            lastfm_listeners=48_213,
        ),
    )


def album_rec() -> Recommendation:
    return Recommendation(
        kind=Kind.ALBUM,
        item_id=2,
        name="Souvlaki",
        artist="Slowdive",
        score=0.88,
        evidence=Evidence(
            items=(Weighted("Loveless", 0.7), Weighted("Nowhere", 0.4)),
            tags=(Weighted("shoegaze", 0.9), Weighted("dream pop", 0.5)),
            sources={"content": 0.6, "cf": 0.4},
            aoty=AotyFacts(critic_score=86.4, critic_count=21, user_score=87.9, user_count=5400, must_hear=True,
                           genres=("Shoegaze", "Dream Pop")),
        ),
    )


def compat_result() -> Compatibility:
    return Compatibility(
        score=78.2,
        label="kindred spirits",
        raw=0.41,
        confidence=0.8,
        shared_artists=(SharedArtist("Radiohead", 120, 80, 0.3), SharedArtist("Björk", 50, 40, 0.2),
                        SharedArtist("Portishead", 30, 44, 0.1)),
        shared_tags=(Weighted("art rock", 0.5), Weighted("trip-hop", 0.3)),
        bridges=(Bridge("Cocteau Twins", "a", 0.7),),
        differences_a=(Weighted("Slowdive", 0.4),),
        differences_b=(Weighted("Kendrick Lamar", 0.5), Weighted("Madlib", 0.2)),
        different_tags_a=(Weighted("shoegaze", 0.4),),
        different_tags_b=(Weighted("hip-hop", 0.5), Weighted("jazz", 0.2)),
    )


@pytest.fixture
def cache() -> InProcessCache:
    return InProcessCache()


@pytest.fixture
async def openai_server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        yield server


def settings_for(base_url: str | None, *, key: str | None = "test-key", timeout_s: float = 2.0,
                 budget: int = 50) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        openai_api_key=key,
        openai_base_url=base_url,
        openai_model="fake-model",
        explain_timeout_s=timeout_s,
        explain_daily_budget=budget,
    )


@pytest.fixture
async def explainer(openai_server: FakeOpenAIServer, cache: InProcessCache) -> AsyncIterator[GroundedExplainer]:
    e = build_explainer(settings_for(openai_server.base_url), cache)
    yield e
    await e.aclose()
