"""Who is asking: the one identity every service takes.

The Discord adapter resolves the member once per interaction (`SonanceCog.who`) and hands the
result down. Services never look the asker up again and never mix a Discord snowflake with a row id
in their signatures: `user_id` is our `users.id`, `discord_id` is the Discord snowflake (for
mentions and DMs), `guild_id` is the server the command came from (None in DMs).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Asker:
    """The member behind one request, resolved once by the adapter."""

    user_id: int
    discord_id: int
    guild_id: int | None = None

    @property
    def in_guild(self) -> bool:
        return self.guild_id is not None
