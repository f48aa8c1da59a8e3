"""How members are named and worded: /compat and /playlist blend answer the same member situation
with the same words, and the name Sonance stores for a member is never a server's nickname.

Both name "the other member", so both go through `core.access.other_member`; before it existed the
two services had copies of the rule that drifted (erin, who never used Sonance in this server and
has no history, was "no history" for /compat and "hasn't used Sonance here" for /playlist).
Each situation below has its own asker, so no command cooldown is shared between cases.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from core.access import OTHER_HIDDEN, OTHER_NO_HISTORY, OTHER_UNKNOWN
from core.asker import Asker
from core.config import Settings
from core.db.repositories import UserRepository
from core.errors import NotInGuild
from core.services import Services
from tests.bot.driving import check_acknowledged, run
from tests.bot.world import GUILD_ID, MEMBERS, OTHER_GUILD_ID
from tests.conftest import make_settings
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


NICKNAME = "Alice Realname-Smith"


class TestNicknames:
    """In both servers of the world, so commands sync globally (no dev guild) for these tests only."""

    @pytest.fixture
    def bot_settings(self, database_url: str, tmp_path: Path) -> Settings:
        return make_settings(database_url, tmp_path, SONANCE_PUBLIC_BASE_URL="http://127.0.0.1:8080")

    @pytest.mark.parametrize("command", [("account", {}), ("recommend", {"count": 5})], ids=["account", "recommend"])
    async def test_a_server_nickname_never_shows_in_another_server(
            self, sonance: FakeDiscord, world_services: Services, command: tuple[str, dict[str, object]]) -> None:
        """alice (global name "Alice") is "Alice Realname-Smith" in the other server only. After she
        uses Sonance there, this server's boards still call her "Alice": the stored name is the one
        Discord shows everywhere, never one server's nickname. Both ways an asker is resolved are
        covered: `who` (/account) and `who_and_whether_hidden` (/recommend, which also reads whether
        the asker hides their listening there)."""
        name, options = command
        payload = sonance.slash(name, options=options, user=sonance.user("alice"), guild=OTHER_GUILD_ID)
        payload["member"]["nick"] = NICKNAME  # where Discord puts a server nickname
        record = await sonance.dispatch(payload)
        await record.wait_final(timeout=60.0)
        check_acknowledged(record)
        mark = len(sonance.requests)

        _, who = await run(sonance, "whoknows", "bob", {"artist": "Radiohead"})
        _, board = await run(sonance, "leaderboard", "bob")
        assert "**Alice**" in who.embeds[0]["description"]
        assert "Alice" in json.dumps(board.embeds)
        sent_here = json.dumps([r.json for r in sonance.requests[mark:]], default=str, ensure_ascii=False)
        assert "Realname" not in sent_here
        alice = world_services.extras["world_ids"]["alice"]
        async with world_services.session() as session:
            stored = await UserRepository(session).display_names([alice])
        assert stored[alice] == MEMBERS["alice"].fake.global_name
        sonance.assert_clean()
