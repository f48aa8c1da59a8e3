"""Who is asking: the one identity every service takes.

The Discord adapter resolves the member once per interaction (`SonanceCog.who`) and hands the
result down, or hands a `Caller` to a service that resolves it once in its own first session.
Services never look the asker up again and never mix a Discord snowflake with a row id in their
signatures: `user_id` is our `users.id`, `discord_id` is the Discord snowflake (for
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


@dataclass(frozen=True, slots=True)
class Caller:
    """The member behind one request *before* the lookup: the Discord identity the adapter holds.

    Why it exists: resolving an `Asker` costs a database session of its own (checkout, query,
    commit, reset). A service that opens a session for the request anyway takes a `Caller` and
    resolves it there, once (`AskerDirectory.resolve_in`), instead of the adapter resolving it in a
    separate session just before: on /recommend that separate session was ~10 % of the bot's CPU.
    """

    discord_id: int
    display_name: str | None
    guild_id: int | None = None
