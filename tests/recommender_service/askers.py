"""Askers for service tests: a Discord member resolved as the adapter's `SonanceCog.who` does."""

from __future__ import annotations

from core.asker import Asker
from core.db.repositories import UserRepository
from core.services import Services


async def asker_for(services: Services, discord_id: int, guild_id: int | None = None) -> Asker:
    """The member's row (created on first use, like any command), as an `Asker`."""
    async with services.session() as session:
        user = await UserRepository(session).get_or_create_discord(discord_id)
        return Asker(int(user.id), discord_id, guild_id)
