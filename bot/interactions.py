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
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

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
#: What a public (safety) deferral turns into when the answer must be private after all.
SENT_PRIVATELY = "I've sent you the answer privately."


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


#: `interaction.extras` key of the cooldown use to give back when the command fails (a `Refund`).
COOLDOWN_REFUND = "sonance_cooldown_refund"
#: Members one cooldown table remembers at most (a bound on memory; the oldest is forgotten first).
COOLDOWN_MEMBERS_MAX = 100_000


class Refund(NamedTuple):
    """How `handle_error` gives back the cooldown use of a command that did not do its work."""

    give_back: Callable[[], None]
    on_refusal: bool  # a `SonanceError` (unknown user, private profile…) gives the use back
    on_failure: bool  # an unexpected error (answered with `APOLOGY`) gives the use back


def once_per(per_s: float, *, refund_refusals: bool = True) -> Callable[[T], T]:
    """A per-user cooldown of one use per `per_s` seconds that only a success spends.

    Why not `app_commands.checks.cooldown`: it counts every attempt, so a member who mistyped their
    Last.fm name was told "Easy there! Try again in 30 s." when they corrected it, and one whose
    /export crashed was told to "try again in a moment" by the apology and then to wait five
    minutes. Here a crash always gives the use back in `handle_error`, and so does a `SonanceError`
    (a refusal) unless `refund_refusals` is off: for a refusal that is expensive to reach and
    certain to repeat (/export "too large" serialises everything first), keeping it spent is the
    protection the cooldown is for.
    """
    return per_user(1, per_s, refund_refusals=refund_refusals, refund_failures=True)


def per_user(rate: int, per_s: float, *, refund_refusals: bool = False,
             refund_failures: bool = False) -> Callable[[T], T]:
    """A per-user cooldown: `rate` uses per `per_s` seconds (`CommandOnCooldown` beyond that).

    Why not `app_commands.checks.cooldown` on busy commands: on every use it scans all its buckets
    for expired ones (a list over every member who used the command in the last `per_s` seconds),
    ~1 % of the bot's CPU per /recommend under load. Here a bucket is found by key and an expired
    one simply starts afresh (`Cooldown` refills by itself); the table is bounded like the
    `COOLDOWN_MEMBERS_MAX` (oldest user forgotten first). With `refund_refusals` a `SonanceError`,
    with `refund_failures` an unexpected error, gives the use back (`once_per`); the give-back
    refills the bucket, so it is meant for `rate` 1.
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
        if refund_refusals or refund_failures:
            interaction.extras[COOLDOWN_REFUND] = Refund(bucket.reset, refund_refusals, refund_failures)
        return True

    return app_commands.check(predicate)


def cooldown_message(retry_after: float) -> str:
    """The cooldown answer, the wait rounded up to whole seconds and at least 1 s.

    Why not rounding to the nearest second: with under half a second left it said "Try again in
    0 s", and a retry then would be refused again (any wait below a second reads as "1 s")."""
    return f"Easy there! Try again in {max(1, math.ceil(retry_after))} s."


async def handle_error(interaction: discord.Interaction, error: BaseException) -> None:
    original = getattr(error, "original", error)
    context = log_context(interaction)
    refund = interaction.extras.pop(COOLDOWN_REFUND, None)
    if isinstance(original, SonanceError):
        log.info("refused: %s", original, extra=context)
        message = original.user_message
        if isinstance(refund, Refund) and refund.on_refusal:
            refund.give_back()
    elif isinstance(error, app_commands.CommandOnCooldown):
        message = cooldown_message(error.retry_after)
    elif isinstance(error, app_commands.CheckFailure):
        message = "You can't use that here."
    else:
        log.error("command failed", exc_info=original, extra=context)
        message = APOLOGY
        if isinstance(refund, Refund) and refund.on_failure:
            refund.give_back()  # the apology invites a retry "in a moment": don't make them wait
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


def member_name(user: discord.abc.User) -> str:
    """The name Sonance knows a member by, in every server: their Discord global name, else their
    username. Every name handed to core or shown in a reply comes from here.

    Why not discord.py's `display_name`: inside a server that is the member's nickname *there*. Core
    stores one name per member and shows it in every server (/whoknows, /leaderboard, /matches,
    /compat, /top), so a nickname given in one server (often a real name, meant for that server
    alone) was shown in all the others.
    """
    return getattr(user, "global_name", None) or user.name


#: `interaction.extras` key of the interaction's resolved `Asker`.
ASKER_KEY = "sonance_asker"


async def who(services: Services, interaction: discord.Interaction) -> Asker:
    """The member behind the interaction, resolved once per interaction (`AskerDirectory.resolve`:
    their row is created on first use and their membership of this guild recorded)."""
    asker = interaction.extras.get(ASKER_KEY)
    if not isinstance(asker, Asker):
        asker = await services.askers.resolve(interaction.user.id, member_name(interaction.user),
                                              interaction.guild_id)
        interaction.extras[ASKER_KEY] = asker
    return asker


async def who_and_whether_hidden(services: Services, interaction: discord.Interaction) -> tuple[Asker, bool]:
    """The asker (as `who`) and whether they hide their listening in this server, in one session.

    For commands that show the asker's own taste (/recommend, their own /top): someone hidden here
    gets it privately, the rule /compat, /matches and /playlist follow (`asker not in visible`,
    `UserRepository.visible_member_ids`, the one privacy rule). It must be known before the
    acknowledgement, whose visibility the answer inherits. Never hidden outside a server: a DM is
    private already.
    """
    known_asker = interaction.extras.get(ASKER_KEY)
    asker, hidden = await services.askers.resolve_and_whether_hidden(
        known_asker if isinstance(known_asker, Asker) else
        Caller(interaction.user.id, member_name(interaction.user), interaction.guild_id))
    interaction.extras[ASKER_KEY] = asker
    return asker, hidden


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

    async def who_and_whether_hidden(self, interaction: discord.Interaction) -> tuple[Asker, bool]:
        """The asker and whether they hide their listening in this server (module-level
        `who_and_whether_hidden`); a database read, so call it under an `Acknowledger`."""
        return await who_and_whether_hidden(self.services, interaction)

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
            await self.interaction.edit_original_response(content=SENT_PRIVATELY)
        await send(self.interaction, ephemeral=private, **kwargs)
