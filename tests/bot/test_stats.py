"""/whoknows and /top end to end: the real bot against the fake Discord, asserting on the JSON sent."""

from __future__ import annotations

from typing import Any

from core.asker import Asker
from core.db.repositories import UserRepository
from core.services import Services
from core.stats import StatsService
from tests.bot.world import GUILD_ID, MEMBERS, NOW
from tests.fakes.discord_server import FakeDiscord, InteractionRecord


async def final_body(fake: FakeDiscord, payload: dict[str, Any]) -> dict[str, Any]:
    record = await fake.dispatch(payload)
    final = await record.wait_final()
    return final.body


async def test_whoknows_ranks_visible_members_by_plays(sonance: FakeDiscord) -> None:
    body = await final_body(sonance, sonance.slash("whoknows", {"artist": "Radiohead"}, user="alice", guild=GUILD_ID))
    embed = body["embeds"][0]
    assert embed["title"] == "Who knows Radiohead?"
    lines = embed["description"].split("\n")
    # alice and bob have 12 plays each: both first (listed by who joined first); carol is third
    assert lines == ["🥇 **Alice**: 12 plays", "🥇 **Bob**: 12 plays", "🥉 **Carol**: 6 plays"]
    assert "Dave" not in embed["description"]
    assert "3 listeners in Sonance Dev" in embed["footer"]["text"]
    assert not body.get("flags")  # public answer
    sonance.assert_clean()


async def test_whoknows_hides_private_members_and_hidden_names(sonance: FakeDiscord,
                                                               world_services: Services) -> None:
    ids = world_services.extras["world_ids"]
    async with world_services.session() as session:
        users = UserRepository(session)
        await users.set_guild_visibility(GUILD_ID, ids["bob"], False)
        await users.update_settings(ids["carol"], hide_username=True)
    body = await final_body(sonance, sonance.slash("whoknows", {"artist": "radiohead"}, user="dave", guild=GUILD_ID))
    description = body["embeds"][0]["description"]
    assert description.split("\n") == ["🥇 **Alice**: 12 plays", "🥈 **a listener**: 6 plays"]
    assert "Bob" not in description and "Carol" not in description
    sonance.assert_clean()


async def test_whoknows_unknown_artist_and_nobody(sonance: FakeDiscord) -> None:
    body = await final_body(sonance, sonance.slash("whoknows", {"artist": "Nonexistent Band"}, user="alice"))
    assert "don't know an artist called **Nonexistent Band**" in body["content"]
    assert body["flags"] & 64  # ephemeral refusal
    body = await final_body(sonance, sonance.slash("whoknows", {"artist": "Taylor Swift"}, user="alice"))
    assert "Nobody who shares their listening here has played **Taylor Swift** yet" in body["embeds"][0]["description"]
    sonance.assert_clean()


async def test_whoknows_with_only_hidden_listeners_does_not_say_nobody_played_it(
        sonance: FakeDiscord, world_services: Services) -> None:
    """Dave alone plays Metallica and hides himself: "Nobody here has played it" would be false."""
    ids = world_services.extras["world_ids"]
    async with world_services.session() as session:
        await UserRepository(session).set_guild_visibility(GUILD_ID, ids["dave"], False)
    body = await final_body(sonance, sonance.slash("whoknows", {"artist": "Metallica"}, user="alice", guild=GUILD_ID))
    embed = body["embeds"][0]
    assert embed["description"].startswith("Nobody who shares their listening here has played **Metallica** yet.")
    assert embed["footer"]["text"] == "Members who keep their listening private are not shown"
    sonance.assert_clean()


async def test_typed_names_are_echoed_literally_and_nobody_is_pinged(sonance: FakeDiscord) -> None:
    typed = "**x** @everyone <@123456789012345678> `y` | z"
    record = await sonance.dispatch(sonance.slash("whoknows", {"artist": typed}, user="alice"))
    body = (await record.wait_final()).body
    assert body["content"].startswith(
        "I don't know an artist called **\\*\\*x\\*\\* @\u200beveryone <@\u200b123456789012345678> \\`y\\` \\| z** yet.")
    assert body["allowed_mentions"] == {"parse": []}  # Discord's "ping nobody", on every message
    sonance.assert_clean()


async def test_top_of_a_bot_says_bots_have_no_listening(sonance: FakeDiscord) -> None:
    record = await sonance.dispatch(sonance.slash("top", {"period": "overall", "member": sonance.bot_user.id},
                                                  user="alice"))
    body = (await record.wait_final()).body
    assert body["content"] == "Bots don't keep a listening history, so they have no top artists. Pick a person!"
    assert body["flags"] & 64
    sonance.assert_clean()


async def test_whoknows_suggests_the_artist_a_typo_meant(sonance: FakeDiscord) -> None:
    body = await final_body(sonance, sonance.slash("whoknows", {"artist": "Radiohed"}, user="alice"))
    assert body["content"] == "I don't know an artist called **Radiohed** yet. Did you mean **Radiohead**?"
    record = await sonance.dispatch(sonance.autocomplete("whoknows", "artist", "portshead", user="alice"))
    await record.wait_ack()
    assert [c["name"] for c in record.choices or []][:1] == ["Portishead"]


async def test_whoknows_autocomplete_is_bounded_and_prefix_matched(sonance: FakeDiscord) -> None:
    record = await sonance.dispatch(sonance.autocomplete("whoknows", "artist", "", user="alice"))
    await record.wait_ack()
    choices = record.choices
    assert choices is not None and 0 < len(choices) <= 25
    record = await sonance.dispatch(sonance.autocomplete("whoknows", "artist", "the radio", user="alice"))
    await record.wait_ack()
    assert record.choices == [{"name": "Radiohead", "value": "Radiohead"}]
    assert record.ack_latency is not None and record.ack_latency < 3.0
    record = await sonance.dispatch(sonance.autocomplete("whoknows", "artist", "s", user="alice"))
    await record.wait_ack()
    assert [c["value"] for c in record.choices or []] == ["Slayer", "Slowdive"]
    sonance.assert_clean()


async def test_top_for_the_asker(sonance: FakeDiscord) -> None:
    body = await final_body(sonance, sonance.slash("top", {"period": "overall"}, user="carol"))
    embed = body["embeds"][0]
    assert embed["title"] == "Your top artists · all time"
    names = [line.split("**")[1] for line in embed["description"].split("\n")]
    assert names == list(MEMBERS["carol"].artists)  # seeded with decreasing plays
    assert embed["description"].split("\n")[0] == "🥇 **Slowdive**: 12 plays"
    sonance.assert_clean()


async def test_top_for_a_visible_member_and_a_hidden_one(sonance: FakeDiscord, world_services: Services) -> None:
    body = await final_body(sonance, sonance.slash("top", {"period": "overall", "member": "dave"}, user="alice"))
    embed = body["embeds"][0]
    assert embed["title"] == "Dave's top artists · all time"
    assert embed["description"].startswith("🥇 **Metallica**: 12 plays")

    ids = world_services.extras["world_ids"]
    async with world_services.session() as session:
        await UserRepository(session).set_guild_visibility(GUILD_ID, ids["dave"], False)
    body = await final_body(sonance, sonance.slash("top", {"period": "overall", "member": "dave"}, user="alice"))
    assert "keeps their listening private" in body["content"]
    assert "Metallica" not in str(body) and not body.get("embeds")
    assert body["flags"] & 64
    # erin never used Sonance here: the same answer, so nothing tells hidden and unknown apart
    body = await final_body(sonance, sonance.slash("top", {"period": "overall", "member": "erin"}, user="alice"))
    assert "keeps their listening private" in body["content"]
    sonance.assert_clean()


async def test_top_period_counts_only_listens_since_then(world_services: Services) -> None:
    """With the clock at the world's NOW, 7 days hold 7 Radiohead, 4 Portishead and 1 Massive Attack plays."""
    ids = world_services.extras["world_ids"]
    stats = StatsService(world_services)
    alice = Asker(ids["alice"], MEMBERS["alice"].fake.id, GUILD_ID)
    week = await stats.top_artists(alice, "7day", now=NOW)
    assert week.artists == (("Radiohead", 7), ("Portishead", 4), ("Massive Attack", 1))
    overall = await stats.top_artists(alice, "overall", now=NOW)
    assert overall.artists[0] == ("Radiohead", 12) and len(overall.artists) == 4


def deferred_ephemerally(record: InteractionRecord) -> bool:
    ack = record.ack
    assert ack is not None and ack.type == 5, ack  # a "thinking…" deferral
    return bool((ack.data or {}).get("flags", 0) & 64)


async def test_top_of_a_hidden_member_is_shown_to_them_alone(sonance: FakeDiscord) -> None:
    """Your own /top is your taste: hidden in this server (/privacy, scope left empty), you see it
    alone, also when you name yourself; another member's /top reveals nothing of yours and stays
    public, and so does a visible member's own."""
    record = await sonance.dispatch(sonance.slash("privacy", {"visibility": "private"}, user="carol"))
    assert "hidden" in ((await record.wait_final()).content or "")

    for options in ({"period": "overall"}, {"period": "overall", "member": "carol"}):
        record = await sonance.dispatch(sonance.slash("top", options, user="carol"))
        own = await record.wait_final()
        assert own.embeds and "Slowdive" in own.embeds[0]["description"]
        assert deferred_ephemerally(record) and own.ephemeral
        assert len(record.visible_messages()) == 1

    record = await sonance.dispatch(sonance.slash("top", {"period": "overall", "member": "dave"}, user="carol"))
    other = await record.wait_final()
    assert other.embeds and not deferred_ephemerally(record) and not other.ephemeral
    record = await sonance.dispatch(sonance.slash("top", {"period": "overall"}, user="alice"))
    public = await record.wait_final()
    assert public.embeds and not deferred_ephemerally(record) and not public.ephemeral
    sonance.assert_clean()
