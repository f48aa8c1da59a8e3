"""/recommend, /similar, /tune and the persistent feedback buttons, end to end against the fake Discord.

World (tests/bot/world.py): alice plays electronic artists; erin has nothing linked. The model is
trained lazily by the service on the first request (the seeded world trains in about a second).
"""

from __future__ import annotations

import asyncio
import re

import pytest

from bot.views.feedback import RecommendationPages
from core.db.repositories import UserRepository
from core.db.repositories.recommendations import RecommendationRepository
from core.recommender.service import RecommendService
from core.services import Services
from tests.bot.driving import click, run
from tests.bot.world import CLUSTERS, MEMBERS
from tests.fakes.discord_limits import validate_message_payload
from tests.fakes.discord_payloads import FakeUser
from tests.fakes.discord_server import FakeDiscord, InteractionRecord, SentMessage
from tests.recommender_service.askers import asker_for

FB = re.compile(r"^sonance:fb:(\d+):(up|down)$")
WHY = re.compile(r"^sonance:why:(\d+)$")
EPHEMERAL = 64


def listed(message: SentMessage) -> list[str]:
    """Item names on the page, in order (the bold-numbered lines of the description)."""
    description = message.embeds[0]["description"]
    return [re.sub(r"^\[(.*)\]\(.*\)$", r"\1", m) for m in re.findall(r"\*\*\d+\.\*\* (.+)", description)]


def shown_ids(message: SentMessage) -> list[int]:
    ids = []
    for cid in message.custom_ids():
        m = FB.match(cid)
        if m and m.group(2) == "up":
            ids.append(int(m.group(1)))
    return ids


async def test_recommend_lists_new_artists_with_persistent_buttons(sonance: FakeDiscord) -> None:
    _, final = await run(sonance, "recommend", "alice", {"kind": "artists", "count": 8})
    assert not validate_message_payload(final.body)
    names = listed(final)
    assert len(names) == 5  # page 1 of 2
    assert not set(names) & set(MEMBERS["alice"].artists)
    ids = final.custom_ids()
    assert all(len(c) <= 100 for c in ids)
    fb = [c for c in ids if FB.match(c)]
    why = [c for c in ids if WHY.match(c)]
    assert len(fb) == 10 and len(why) == 5
    assert "Page 1/2" in final.embeds[0]["footer"]["text"]
    # Next works for the asker, and is refused to others
    nav = [c for c in ids if not c.startswith("sonance:")]
    assert len(nav) == 2
    turned = await click(sonance, nav[1], "alice", final)
    assert "Page 2/2" in turned.embeds[0]["footer"]["text"]
    assert not validate_message_payload(turned.body)
    refused = await click(sonance, nav[1], "bob", final)
    assert refused.ephemeral and "Only the person who asked" in (refused.content or "")


def live_page_timers() -> int:
    """discord.py's timeout tasks of live views (one per view it keeps until the view times out)."""
    return sum(1 for t in asyncio.all_tasks() if "timeout_task_impl" in getattr(t.get_coro(), "__qualname__", ""))


async def test_a_single_page_list_leaves_no_live_view_behind(sonance: FakeDiscord) -> None:
    """Its buttons are all persistent: nothing to time out, so nothing is kept (the soak's memory)."""
    before = live_page_timers()
    _, single = await run(sonance, "recommend", "alice", {"count": 5})
    assert "Page 1/1" in single.embeds[0]["footer"]["text"] and len(shown_ids(single)) == 5
    assert live_page_timers() == before
    _, paged = await run(sonance, "recommend", "alice", {"count": 8})
    assert "Page 1/2" in paged.embeds[0]["footer"]["text"]
    assert live_page_timers() == before + 1  # Prev/Next need their view until it times out


async def test_page_turning_buttons_are_disabled_when_the_pages_time_out(
        sonance: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RecommendationPages.__init__.__kwdefaults__, "timeout", 0.3)
    record, final = await run(sonance, "recommend", "alice", {"kind": "artists", "count": 8})
    edited = await record.wait_for(lambda r: r.followup_edits[-1] if r.followup_edits else None, timeout=10.0)
    buttons = [b for row in edited.components for b in row["components"]]
    nav = [b for b in buttons if not b["custom_id"].startswith("sonance:")]
    assert len(nav) == 2 and all(b.get("disabled") for b in nav)
    persistent = [b for b in buttons if b["custom_id"].startswith("sonance:")]
    assert len(persistent) == 15 and not any(b.get("disabled") for b in persistent)
    assert edited.message is not None and final.message is not None
    assert edited.message["id"] == final.message["id"]  # the answer itself, not a new message


async def test_thumbs_down_removes_an_item_for_good(sonance: FakeDiscord, world_services: Services) -> None:
    _, first = await run(sonance, "recommend", "alice", {"count": 5})
    target_name = listed(first)[0]
    target_id = shown_ids(first)[0]
    reply = await click(sonance, f"sonance:fb:{target_id}:down", "alice", first)
    assert reply.ephemeral and "no more" in (reply.content or "")
    async with world_services.session() as session:
        votes = await RecommendationRepository(session).feedback(world_services.extras["world_ids"]["alice"], "artist")
    assert -1 in votes.values()
    world_services.settings.repeat_window_days = 0  # let everything else come back
    for _ in range(2):
        _, again = await run(sonance, "recommend", "alice", {"count": 10})
        assert target_name not in listed(again)


async def test_thumbs_up_changes_the_next_results(sonance: FakeDiscord, world_services: Services) -> None:
    """The 👍 reply promises "I'll lean towards things like it": the next list brings in artists of
    the liked one's scene. (Whether the liked item itself moves up is not promised: its listen lifts
    its neighbours through every model, and near-ties that vary between trainings decide whether
    they pass it.)"""
    world_services.settings.repeat_window_days = 0
    _, before = await run(sonance, "recommend", "alice", {"count": 5, "discovery": "familiar"})
    names, ids = listed(before), shown_ids(before)
    own = set(CLUSTERS[MEMBERS["alice"].taste])
    pick = max((i for i, name in enumerate(names) if name not in own), default=len(names) - 1)
    liked = names[pick]
    await click(sonance, f"sonance:fb:{ids[pick]}:up", "alice", before)
    _, after = await run(sonance, "recommend", "alice", {"count": 5, "discovery": "familiar"})
    assert listed(after) != names, names
    scene = {a for members in CLUSTERS.values() if liked in members for a in members} - {liked}
    entered = set(listed(after)) - set(names)
    assert entered & scene, (liked, names, listed(after))


async def test_buttons_from_a_previous_process_still_work(sonance: FakeDiscord, world_services: Services) -> None:
    service = RecommendService.of(world_services)
    alice = await asker_for(world_services, MEMBERS["alice"].fake.id)
    result = await service.recommend(alice, count=2)  # as if sent before a restart
    shown = result.items[0]
    reply = await click(sonance, f"sonance:fb:{shown.shown_id}:down", "alice")  # no message in this process
    assert reply.ephemeral and shown.rec.name in (reply.content or "")
    why = await click(sonance, f"sonance:why:{shown.shown_id}", "alice")
    assert why.ephemeral and why.content
    other = await click(sonance, f"sonance:fb:{shown.shown_id}:up", "bob")
    assert other.ephemeral and "someone else" in (other.content or "")


async def test_why_explains_ephemerally(sonance: FakeDiscord) -> None:
    _, final = await run(sonance, "recommend", "alice", {"count": 3})
    why = next(c for c in final.custom_ids() if WHY.match(c))
    reply = await click(sonance, why, "alice", final)
    assert reply.ephemeral and len(reply.content or "") > 20


async def test_erin_without_links_gets_a_clear_message(sonance: FakeDiscord) -> None:
    _, final = await run(sonance, "recommend", "erin")
    assert "/link" in (final.content or "")
    assert not final.embeds
    assert final.ephemeral, "a refusal after a public deferral is still private"
    assert any(r.method == "DELETE" and r.path.endswith("/messages/@original") for r in sonance.requests), \
        "the public 'thinking…' message is removed"


async def test_albums_from_synced_listens(sonance: FakeDiscord) -> None:
    _, final = await run(sonance, "recommend", "alice", {"kind": "albums", "count": 3})
    assert final.embeds and " — " in final.embeds[0]["description"]


async def test_similar_with_autocomplete(sonance: FakeDiscord) -> None:
    record = await sonance.dispatch(sonance.autocomplete("similar", "artist", "slo", user=sonance.user("carol")))
    await record.wait_ack()
    assert [c["name"] for c in record.choices or []] == ["Slowdive"]
    _, final = await run(sonance, "similar", "carol", {"artist": "Slowdive"})
    description = final.embeds[0]["description"]
    assert "Artists like Slowdive" == final.embeds[0]["title"]
    assert "My Bloody Valentine" in description or "Ride" in description or "Cocteau Twins" in description
    _, missing = await run(sonance, "similar", "carol", {"artist": "Nobody At All"})
    assert missing.content == "I don't know an artist called “Nobody At All”."


async def test_a_misspelt_artist_gets_a_suggestion_and_typo_tolerant_autocomplete(sonance: FakeDiscord) -> None:
    _, missing = await run(sonance, "similar", "carol", {"artist": "slowdvie"})
    assert missing.ephemeral
    assert missing.content == "I don't know an artist called “slowdvie”. Did you mean **Slowdive**?"
    record = await sonance.dispatch(sonance.autocomplete("similar", "artist", "metalica", user=sonance.user("dave")))
    await record.wait_ack()
    assert [c["name"] for c in record.choices or []][:1] == ["Metallica"]
    record = await sonance.dispatch(sonance.autocomplete("recommend", "tag", "shoegze", user=sonance.user("alice")))
    await record.wait_ack()
    assert [c["value"] for c in record.choices or []][:1] == ["shoegaze"]


async def test_tag_autocomplete_and_filter(sonance: FakeDiscord) -> None:
    record = await sonance.dispatch(sonance.autocomplete("recommend", "tag", "shoe", user=sonance.user("alice")))
    await record.wait_ack()
    assert "shoegaze" in [c["value"] for c in record.choices or []]
    _, final = await run(sonance, "recommend", "alice", {"tag": "shoegaze", "count": 3})
    assert set(listed(final)) <= {"Slowdive", "My Bloody Valentine", "Cocteau Twins", "Ride"}


async def test_tune_stores_preferences(sonance: FakeDiscord, world_services: Services) -> None:
    _, final = await run(sonance, "tune", "carol", {"text": "less metal, more 90s shoegaze"})
    assert final.ephemeral and "less metal" in (final.content or "")
    from core.db.repositories import UserRepository

    async with world_services.session() as session:
        settings = await UserRepository(session).settings(world_services.extras["world_ids"]["carol"])
    assert "metal" in settings.preferences["avoid_tags"] and "shoegaze" in settings.preferences["boost_tags"]
    assert settings.preferences["era"] == [1990, 1999]


async def test_a_stranger_pressing_the_buttons_is_refused_and_stored_nowhere(
        sonance: FakeDiscord, world_services: Services) -> None:
    """Anyone in the channel may press 👍/👎 or "Why?": someone Sonance has never seen is refused with
    the buttons' wording, and the press creates no row about them."""
    _, final = await run(sonance, "recommend", "alice", {"count": 3})
    stranger = FakeUser(id=1_300_000_000_000_000_199, username="stranger", global_name="Stranger")
    for custom_id, words in ((f"sonance:fb:{shown_ids(final)[0]}:up", "someone else's recommendations"),
                             (f"sonance:why:{shown_ids(final)[0]}", "someone else's listening")):
        record = await sonance.dispatch(sonance.button(custom_id, message=final, user=stranger))
        reply = await record.wait_final(timeout=30.0)
        assert reply.ephemeral and words in (reply.content or ""), reply.content
    async with world_services.session() as session:
        assert await UserRepository(session).by_discord_id(stranger.id) is None


async def test_recommend_allows_three_lists_per_30_seconds_per_member(sonance: FakeDiscord) -> None:
    """The cooldown (bot.interactions.per_user): the fourth /recommend within 30 s is refused with
    the retry time, privately; another member is not affected."""
    for _ in range(3):
        _, answer = await run(sonance, "recommend", "alice", {"count": 3})
        assert answer.embeds
    _, limited = await run(sonance, "recommend", "alice", {"count": 3})
    assert limited.ephemeral and re.match(r"^Easy there! Try again in \d+ s\.$", limited.content or "")
    _, other = await run(sonance, "recommend", "bob", {"count": 3})
    assert other.embeds


async def test_a_stored_member_costs_no_write_before_the_list(sonance: FakeDiscord, world_services: Services) -> None:
    """The asker lookup tells whether the membership is stored (tests/bot/world.py stores alice's):
    then /recommend writes nothing but the shown rows, even on the process's first command."""
    from sqlalchemy import event

    await run(sonance, "recommend", "bob", {"count": 3})  # the world's model is trained on first use
    writes: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement.split("(")[0].strip())

    event.listen(world_services.engine.sync_engine, "before_cursor_execute", note)
    try:
        _, answer = await run(sonance, "recommend", "alice", {"count": 3})
    finally:
        event.remove(world_services.engine.sync_engine, "before_cursor_execute", note)
    assert answer.embeds
    assert writes == ["INSERT INTO recommendations_shown"]


def deferred_ephemerally(record: InteractionRecord) -> bool:
    """The acknowledgement was a "thinking…" deferral with the ephemeral flag. Its first follow-up
    replaces that message, so it takes the same visibility (Discord's rule)."""
    ack = record.ack
    assert ack is not None and ack.type == 5, ack
    return bool((ack.data or {}).get("flags", 0) & EPHEMERAL)


async def test_a_hidden_member_gets_their_recommendations_privately(sonance: FakeDiscord) -> None:
    """/recommend shows the asker's taste: someone hidden in this server sees it alone (as /compat,
    /matches and /playlist answer them); a visible member's list stays public."""
    _, hidden = await run(sonance, "privacy", "carol", {"visibility": "private"})  # scope: this server
    assert "hidden" in (hidden.content or "")

    record, picks = await run(sonance, "recommend", "carol", {"count": 5})
    assert picks.embeds and deferred_ephemerally(record)
    assert record.followups[0] is picks  # the message that replaces the private "thinking…"
    assert len(record.visible_messages()) == 1  # nothing public besides

    record, public = await run(sonance, "recommend", "alice", {"count": 5})
    assert public.embeds and not deferred_ephemerally(record) and not public.ephemeral
