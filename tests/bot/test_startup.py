"""The bot starts against the fake Discord, syncs its commands once, and respects Discord's limits."""

from __future__ import annotations

from core.services import Services
from tests.bot.world import GUILD_ID
from tests.fakes.discord_limits import validate_command_payloads
from tests.fakes.discord_server import FakeDiscord


async def test_commands_synced_to_dev_guild_within_limits(sonance: FakeDiscord) -> None:
    payloads = sonance.synced_payloads(GUILD_ID)
    names = {p["name"] for p in payloads}
    assert {"link", "unlink", "account", "privacy", "forget", "export", "recommend", "similar", "tune", "compat",
            "leaderboard", "matches", "playlist", "whoknows", "top", "dm"} <= names
    assert validate_command_payloads(payloads) == []
    assert not sonance.synced_commands(None), "a dev guild is set: nothing is synced globally"
    sonance.assert_clean()


async def test_sync_is_skipped_when_the_command_set_is_unchanged(fake: FakeDiscord, world_services: Services) -> None:
    from bot.client import create_bot
    from tests.fakes.discord_server import running_bot

    for _ in range(2):
        bot = create_bot(world_services, guild_ready_timeout=0.05)
        async with running_bot(bot, fake):
            pass
    syncs = fake.requests_to("PUT", f"/applications/{fake.application_id}/guilds/{GUILD_ID}/commands")
    assert len(syncs) == 1


async def test_no_cog_answers_errors_itself(fake: FakeDiscord, world_services: Services) -> None:
    """Errors are answered by the tree's on_error alone: discord.py also calls a cog's
    `cog_app_command_error` first, and two handlers answered every refusal twice (issue 13)."""
    from discord.ext import commands

    from bot.client import create_bot
    from tests.fakes.discord_server import running_bot

    bot = create_bot(world_services, guild_ready_timeout=0.05)
    async with running_bot(bot, fake):
        cogs = dict(bot.cogs)
    overriding = [name for name, cog in cogs.items()
                  if commands.Cog._get_overridden_method(cog.cog_app_command_error) is not None]
    assert cogs and overriding == []
