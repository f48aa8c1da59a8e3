"""Point discord.py at a different REST base and gateway (DISCORD_API_BASE / DISCORD_GATEWAY_URL).

Why: discord.py has no constructor argument for its endpoints, but two public class attributes
decide them: ``discord.http.Route.BASE`` (read when each ``Route`` is built, so it applies to REST
and interaction webhooks alike) and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (used by
a plain ``Client``; ``AutoShardedClient`` instead takes the URL from ``GET /gateway/bot`` on the REST
base). Setting them lets staging use a rate-limit proxy and lets tests use a local fake Discord.
This must run before ``Client.start()``; it changes process-wide state, so call it once at startup.
"""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl

#: Upstream defaults, kept so tests can restore them.
DEFAULT_API_BASE: str = discord.http.Route.BASE
DEFAULT_GATEWAY_URL: str = str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


def apply_discord_endpoints(api_base: str | None, gateway_url: str | None) -> None:
    """Override discord.py's REST base and/or gateway URL; ``None`` leaves that one untouched.

    ``api_base`` must include the version path (``http://host:port/api/v10``); a trailing slash is
    stripped because discord.py appends paths that start with ``/``.
    """
    if api_base is not None:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url is not None:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
