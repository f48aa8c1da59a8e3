"""What every cog shares: one error policy, replies that work whatever was acknowledged already,
and who is asking (an `Asker`, resolved once per interaction).

Error policy: a `SonanceError` carries a message safe to show, sent ephemeral; a
cooldown says when to retry; anything else is logged with the command, user and guild ids and
answered with a short apology. Nothing is ever acknowledged twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from core.asker import Asker, Caller
from core.errors import SonanceError
from core.services import Services

log = logging.getLogger("sonance.bot")

#: If validation itself is slow (a busy database), acknowledge anyway before Discord's 3 s deadline.
#: 1 s, not 2 s: the deferral is itself a request that waits behind a busy event loop; with 200
#: interactions at once (tests/reliability/test_load.py) that took ~0.7 s, so 2 s acked at ~2.7 s.
SAFETY_ACK_S = 1.0

#: Autocomplete cannot be deferred: past this budget, answer with no suggestions rather than miss the
#: 3 s deadline (a busy database or pool under load made tag lookups miss it: test_load on PostgreSQL).
AUTOCOMPLETE_BUDGET_S = 1.5
T = TypeVar("T")

APOLOGY = "Sorry, something went wrong on my side. It has been logged; please try again in a moment."


def log_context(interaction: discord.Interaction) -> dict[str, Any]:
    command = interaction.command.qualified_name if interaction.command else None
    if command is None and interaction.data:
        command = str(interaction.data.get("custom_id") or interaction.data.get("name") or "?")
    return {"command": command, "user_id": interaction.user.id, "guild_id": interaction.guild_id}


async def send(interaction: discord.Interaction, content: str | None = None, *, ephemeral: bool = False,
               **kwargs: Any) -> None:
    """Respond, or follow up when the interaction was already acknowledged (deferred)."""
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=ephemeral, **kwargs)
    else:
        await interaction.response.send_message(content, ephemeral=ephemeral, **kwargs)


#: `interaction.extras` key of the cooldown use to give back when the command is refused.
COOLDOWN_REFUND = "sonance_cooldown_refund"
#: Members one cooldown table remembers at most (a bound on memory; the oldest is forgotten first).
COOLDOWN_MEMBERS_MAX = 100_000


def once_per(per_s: float) -> Callable[[T], T]:
    """A per-user cooldown of one use per `per_s` seconds that a refused attempt does not spend.

    Why not `app_commands.checks.cooldown`: it counts every attempt, so a member who mistyped their
    Last.fm name was told "Easy there! Try again in 30 s." when they corrected it. Here a
    `SonanceError` (a refusal: unknown user, private profile…) gives the use back in `handle_error`;
    a success or a crash keeps it spent.
    """
    return per_user(1, per_s, refund_refusals=True)


def per_user(rate: int, per_s: float, *, refund_refusals: bool = False) -> Callable[[T], T]:
    """A per-user cooldown: `rate` uses per `per_s` seconds (`CommandOnCooldown` beyond that).

    Why not `app_commands.checks.cooldown` on busy commands: on every use it scans all its buckets
    for expired ones (a list over every member who used the command in the last `per_s` seconds),
    ~1 % of the bot's CPU per /recommend under load. Here a bucket is found by key and an expired
    one simply starts afresh (`Cooldown` refills by itself); the table is bounded like the
    `COOLDOWN_MEMBERS_MAX` (oldest user forgotten first). With `refund_refusals` a `SonanceError` gives
    the use back (`once_per`).
    """
    buckets: dict[int, app_commands.Cooldown] = {}

    async def predicate(interaction: discord.Interaction) -> bool:
        bucket = buckets.get(interaction.user.id)
        if bucket is None:
            bucket = buckets[interaction.user.id] = app_commands.Cooldown(rate, per_s)
            if len(buckets) > COOLDOWN_MEMBERS_MAX:  # bounded: forget the oldest user
                buckets.pop(next(iter(buckets)))
        retry_after = bucket.update_rate_limit()
        if retry_after:
            raise app_commands.CommandOnCooldown(bucket, retry_after)
        if refund_refusals:
            interaction.extras[COOLDOWN_REFUND] = bucket.reset
        return True

    return app_commands.check(predicate)


async def handle_error(interaction: discord.Interaction, error: BaseException) -> None:
    original = getattr(error, "original", error)
    context = log_context(interaction)
    if isinstance(original, SonanceError):
        log.info("refused: %s", original, extra=context)
        message = original.user_message
        refund = interaction.extras.pop(COOLDOWN_REFUND, None)
        if refund is not None:
            refund()
    elif isinstance(error, app_commands.CommandOnCooldown):
        message = f"Easy there! Try again in {error.retry_after:.0f} s."
    elif isinstance(error, app_commands.CheckFailure):
        message = "You can't use that here."
    else:
        log.error("command failed", exc_info=original, extra=context)
        message = APOLOGY
    try:
        await _unpublish_deferral(interaction)
        await send(interaction, message, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not deliver the error message", extra=context)


async def _unpublish_deferral(interaction: discord.Interaction) -> None:
    """Make room for a private error after a public "thinking…" deferral.

    The first follow-up of a deferral inherits the deferral's visibility, so an error sent after a
    public defer would be public. Deleting the deferred message first makes the follow-up a new,
    ephemeral message. Only for slash commands: a button's deferral points at the message the button
    is on, which must never be deleted.
    """
    if (interaction.type is not discord.InteractionType.application_command
            or interaction.response.type is not discord.InteractionResponseType.deferred_channel_message):
        return
    original = await interaction.original_response()
    if not original.flags.ephemeral:
        await original.delete()


class SonanceTree(app_commands.CommandTree):
    """The one place where application-command errors are answered.

    discord.py 2.7 (`CommandTree._call` and `_dispatch_error`) first runs the command's own handlers
    (`Command._invoke_error_handlers`: the command's, its groups', then the cog's
    `cog_app_command_error`) and then, always, this `on_error`; context menus likewise end here. So
    answering here, and nowhere else, gives every failing command exactly one answer; cogs must not
    override `cog_app_command_error` (a second answer is rejected by Discord: 40060 or 10008).
    """

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await handle_error(interaction, error)


async def within_budget(lookup: Awaitable[list[T]], budget_s: float = AUTOCOMPLETE_BUDGET_S) -> list[T]:
    """Autocomplete suggestions, or none when the lookup overruns its budget (it is cancelled)."""
    try:
        return await asyncio.wait_for(lookup, budget_s)
    except TimeoutError:
        log.info("autocomplete lookup over %.1f s; answering with no suggestions", budget_s)
        return []


def display_name(user: discord.abc.User) -> str:
    return getattr(user, "display_name", None) or user.name


#: `interaction.extras` key of the interaction's resolved `Asker`.
ASKER_KEY = "sonance_asker"


async def who(services: Services, interaction: discord.Interaction) -> Asker:
    """The member behind the interaction, resolved once per interaction (`AskerDirectory.resolve`:
    their row is created on first use and their membership of this guild recorded)."""
    asker = interaction.extras.get(ASKER_KEY)
    if not isinstance(asker, Asker):
        asker = await services.askers.resolve(interaction.user.id, display_name(interaction.user),
                                              interaction.guild_id)
        interaction.extras[ASKER_KEY] = asker
    return asker


def caller(interaction: discord.Interaction) -> Asker | Caller:
    """Who is asking, for a service that resolves the member in its own first database session
    (`AskerDirectory.resolve_in`): the `Asker` if this interaction resolved it already, else the
    `Caller`. Same rules as `who` (row created on first use, membership recorded), one session fewer."""
    asker = interaction.extras.get(ASKER_KEY)
    if isinstance(asker, Asker):
        return asker
    return Caller(interaction.user.id, display_name(interaction.user), interaction.guild_id)


async def known(services: Services, interaction: discord.Interaction) -> Asker | None:
    """The member behind the interaction when Sonance already stores them, else None; writes
    nothing (`AskerDirectory.known`). For buttons anyone may press and for the commands about
    stored data (/unlink, /forget, /export): asking must not store something new."""
    asker = interaction.extras.get(ASKER_KEY)
    if isinstance(asker, Asker):
        return asker
    return await services.askers.known(interaction.user.id, interaction.guild_id)


class SonanceCog(commands.Cog):
    """A cog with the shared services; `who` resolves the asker every service call takes."""

    def __init__(self, bot: commands.Bot, services: Services) -> None:
        self.bot = bot
        self.services = services

    async def who(self, interaction: discord.Interaction) -> Asker:
        """The asker (see the module-level `who`): a database write on first use, so commands that
        may run under load acknowledge the interaction before calling it."""
        return await who(self.services, interaction)

    async def known(self, interaction: discord.Interaction) -> Asker | None:
        """The asker when Sonance already stores them, else None (see the module-level `known`)."""
        return await known(self.services, interaction)

    @contextlib.asynccontextmanager
    async def acknowledged(self, interaction: discord.Interaction) -> AsyncIterator[tuple[Acknowledger, Asker]]:
        """An `Acknowledger` for a slow command and its asker, resolved under it: `who` is a database
        write on first use, slow under load, so the 3-second acknowledgement must already cover it."""
        async with Acknowledger(interaction) as ack:
            yield ack, await self.who(interaction)


class Acknowledger:
    """Defers an interaction exactly once: when the service says the slow part begins, or after
    `safety_s` if it has not by then (the interaction token dies at 3 s)."""

    def __init__(self, interaction: discord.Interaction, safety_s: float = SAFETY_ACK_S) -> None:
        self.interaction = interaction
        self.safety_s = safety_s
        self.deferred_publicly = False
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._firing = False

    async def __call__(self, private: bool) -> None:
        async with self._lock:
            if self.interaction.response.is_done():
                return
            await self.interaction.response.defer(ephemeral=private, thinking=True)
            self.deferred_publicly = not private

    async def _safety(self) -> None:
        await asyncio.sleep(self.safety_s)
        self._firing = True
        await self(False)

    async def __aenter__(self) -> Acknowledger:
        self._timer = asyncio.create_task(self._safety(), name="safety-ack")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._timer is None:
            return
        if self._firing:  # never cancel a deferral mid-request: its outcome decides what follows
            with contextlib.suppress(Exception):
                await self._timer
        else:
            self._timer.cancel()

    async def deliver(self, *, private: bool, **kwargs: Any) -> None:
        """Send the answer; a private answer after a (safety) public deferral goes in its own message,
        since the first follow-up of a deferral takes the deferral's visibility."""
        if private and self.deferred_publicly:
            await self.interaction.edit_original_response(content="I've sent you the answer privately.")
        await send(self.interaction, ephemeral=private, **kwargs)
