"""/compat and /playlist blend answer the same member situation with the same words.

Both name "the other member", so both go through `core.access.other_member`; before it existed the
two services had copies of the rule that drifted (erin, who never used Sonance in this server and
has no history, was "no history" for /compat and "hasn't used Sonance here" for /playlist).
Each situation below has its own asker, so no command cooldown is shared between cases.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from core.access import OTHER_HIDDEN, OTHER_NO_HISTORY, OTHER_UNKNOWN
from core.asker import Asker
from core.db.repositories import UserRepository
from core.errors import NotInGuild
from core.services import Services
from tests.bot.driving import run
from tests.bot.world import GUILD_ID, MEMBERS
from tests.fakes.discord_server import FakeDiscord


def did(name: str) -> int:
    return MEMBERS[name].fake.id


async def hide_carol(services: Services) -> None:
    async with services.session() as session:
        await UserRepository(session).set_guild_visibility(GUILD_ID, services.extras["world_ids"]["carol"], False)


async def dave_never_used_sonance_here(services: Services) -> None:
    async with services.session() as session:
        await UserRepository(session).remove_membership(GUILD_ID, services.extras["world_ids"]["dave"])


async def erin_forgotten(services: Services) -> None:
    await services.accounts.forget(Asker(services.extras["world_ids"]["erin"], did("erin"), GUILD_ID))


async def nothing(services: Services) -> None:
    return None


@pytest.mark.parametrize(("situation", "asker", "other", "expected"), [
    (hide_carol, "alice", "carol", OTHER_HIDDEN),  # hidden in this guild
    (nothing, "bob", "erin", OTHER_NO_HISTORY),  # public, not recorded here, no history
    (dave_never_used_sonance_here, "carol", "dave", NotInGuild.user_message),  # public, history, not here
    (erin_forgotten, "dave", "erin", OTHER_UNKNOWN),  # nothing stored about them
], ids=["hidden", "no-history", "not-in-guild", "unknown"])
async def test_compat_and_blend_word_a_member_situation_alike(
        sonance: FakeDiscord, world_services: Services, situation: Callable[[Services], Awaitable[None]],
        asker: str, other: str, expected: str) -> None:
    await situation(world_services)
    _, compat = await run(sonance, "compat", asker, {"member": did(other)})
    _, blend = await run(sonance, "playlist", asker, {"mode": "blend", "member": did(other)})
    assert compat.ephemeral and blend.ephemeral
    assert compat.content == blend.content == expected
    assert not compat.embeds and not blend.embeds
    sonance.assert_clean()
