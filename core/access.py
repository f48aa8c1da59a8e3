"""Who may see or act on what: the owner rule and the privacy rules on "the other member".

Every command that names another member (/compat, /playlist blend, /top) or acts on a stored row
(playlist export buttons, 👍/👎, "Why?") asks here, so each situation is decided by one rule and
answered with one wording. A rule copied into two services drifts, and this one had: /compat said
"no history" where /playlist said "hasn't used Sonance here" for the same member.

The rules read the database through repositories inside the caller's session, so a service checks
and then reads in one unit of work. Nothing here imports discord.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from core.asker import Asker
from core.db.repositories import ListenRepository, UserRepository
from core.errors import NotEnoughHistory, NotFound, NotInGuild, NotYours, PrivacyHidden

# --- the other member: one wording per situation, whatever the command ----------------------------
OTHER_UNKNOWN = "That member hasn't linked a music account with Sonance yet. They can start with /link."
OTHER_HIDDEN = "That member keeps their listening private, so I can't use it here."
OTHER_NO_HISTORY = ("That member doesn't have any listening history with Sonance yet. Once they link an "
                    "account and it syncs, try again!")
#: The asker themself has nothing to work with (compare, blend, a playlist for them).
OWN_NO_HISTORY = ("You don't have any listening history with Sonance yet. Link an account with "
                  "/link lastfm <username>, and try again once it has synced.")
#: /top shows a member's own listening, so it tells no situation apart (hidden, unknown, elsewhere).
NOT_SHOWN = "**{name}** keeps their listening private (or hasn't used Sonance in this server yet)."

# --- the owner rule: what was shown or built for one member is theirs alone -----------------------
PLAYLIST_NOT_YOURS = "Those buttons belong to someone else's playlist. Run /playlist for your own!"
RECOMMENDATIONS_NOT_YOURS = ("Those buttons belong to someone else's recommendations. Run /recommend for "
                             "your own!")
EXPLANATION_NOT_YOURS = "That explanation is about someone else's listening, so only they can see it."


def require_owner(owner_user_id: int | None, asker: Asker, refusal: str) -> None:
    """Refuse (`NotYours` with `refusal`) unless the stored row belongs to the asker.

    Buttons are persistent and visible to a whole channel, so anyone can press them: ownership is
    checked against the stored row, never against view state.
    """
    if owner_user_id is None or int(owner_user_id) != asker.user_id:
        raise NotYours(refusal)


class _Owned(Protocol):
    @property
    def user_id(self) -> int | None: ...


OwnedRow = TypeVar("OwnedRow", bound=_Owned)


def owned_row(row: OwnedRow | None, asker: Asker, missing: str, refusal: str) -> OwnedRow:
    """The stored row a button points at, if it still exists (else `NotFound` with `missing`) and
    belongs to the asker (else `NotYours` with `refusal`, see `require_owner`)."""
    if row is None:
        raise NotFound(missing)
    require_owner(row.user_id, asker, refusal)
    return row


async def require_history(session: AsyncSession, asker: Asker, message: str = OWN_NO_HISTORY) -> None:
    """Refuse (`NotEnoughHistory`) when the asker has no plays yet."""
    if not await ListenRepository(session).users_with_plays([asker.user_id]):
        raise NotEnoughHistory(message)


async def other_member(session: AsyncSession, guild_id: int, discord_id: int, visible_ids: list[int]) -> int:
    """The user id of another member the asker may compare or blend with, or the refusal.

    In this order, so the answer for a situation never depends on the command:
    1. never linked anything with Sonance -> `NotFound`;
    2. hidden in this guild (a member here who hides), or not public -> `PrivacyHidden`. Decided
       before anything about their listening is read, so the refusal says nothing about it;
    3. no listening history -> `NotEnoughHistory`;
    4. public, but never used Sonance in this guild -> `NotInGuild`.

    `visible_ids` is `UserRepository.visible_member_ids(guild_id)`, which callers already hold.
    """
    users = UserRepository(session)
    other = await users.by_discord_id(discord_id)
    if other is None:
        raise NotFound(OTHER_UNKNOWN)
    visible = other.id in visible_ids
    if not visible and (await users.is_member(guild_id, other.id) or await users.privacy_level(other.id) != "public"):
        raise PrivacyHidden(OTHER_HIDDEN)
    if not await ListenRepository(session).users_with_plays([other.id]):
        raise NotEnoughHistory(OTHER_NO_HISTORY)
    if not visible:
        raise NotInGuild()
    return int(other.id)


async def shown_member(session: AsyncSession, guild_id: int | None, asker: Asker, discord_id: int,
                       name: str) -> int:
    """The user id of a member whose own listening may be shown in this guild (/top), or one
    uniform `PrivacyHidden`: hidden, unknown, elsewhere and DMs all read the same, so the reply never
    tells them apart. The asker may always see themself."""
    users = UserRepository(session)
    member = await users.by_discord_id(discord_id)
    if member is not None and member.id == asker.user_id:
        return asker.user_id
    visible = await users.visible_member_ids(guild_id) if guild_id is not None else []
    if member is None or member.id not in visible:
        raise PrivacyHidden(NOT_SHOWN.format(name=name[:64]))
    return int(member.id)


__all__ = [
    "EXPLANATION_NOT_YOURS",
    "NOT_SHOWN",
    "OTHER_HIDDEN",
    "OTHER_NO_HISTORY",
    "OTHER_UNKNOWN",
    "OWN_NO_HISTORY",
    "PLAYLIST_NOT_YOURS",
    "RECOMMENDATIONS_NOT_YOURS",
    "other_member",
    "owned_row",
    "require_history",
    "require_owner",
    "shown_member",
]
