"""``apply_discord_endpoints`` is what production runs for DISCORD_API_BASE / DISCORD_GATEWAY_URL."""

from __future__ import annotations

import discord
import yarl

from bot.discord_endpoints import DEFAULT_API_BASE, DEFAULT_GATEWAY_URL, apply_discord_endpoints
from tests.fakes.discord_server import FakeDiscord, use_fake_discord


def test_apply_and_none_leaves_untouched() -> None:
    old_base, old_gw = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        apply_discord_endpoints("http://proxy.local:8080/api/v10/", None)
        assert discord.http.Route.BASE == "http://proxy.local:8080/api/v10"
        assert discord.http.Route("GET", "/users/@me").url == "http://proxy.local:8080/api/v10/users/@me"
        assert discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY == old_gw
        apply_discord_endpoints(None, "ws://gw.local/gw")
        assert discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY == yarl.URL("ws://gw.local/gw")
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gw
    assert DEFAULT_API_BASE == "https://discord.com/api/v10"
    assert DEFAULT_GATEWAY_URL == "wss://gateway.discord.gg/"


async def test_use_fake_discord_restores() -> None:
    before = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord() as fake:
        with use_fake_discord(fake):
            assert discord.http.Route.BASE == fake.api_base
            assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
    assert (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == before
