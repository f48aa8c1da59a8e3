"""End-to-end: a real discord.py bot logs in, syncs, and answers interactions via FakeDiscord."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import aiohttp
import discord
import pytest

from tests.discord_harness.sample_bot import SampleBot, SampleShardedBot
from tests.fakes.discord_limits import validate_command_payloads
from tests.fakes.discord_payloads import snowflake_for_shard
from tests.fakes.discord_server import (
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeUser,
    running_bot,
    use_fake_discord,
)

pytestmark = pytest.mark.timeout(30)


async def eventually(predicate: Callable[[], Any], timeout: float = 3.0) -> Any:  # noqa: ASYNC109 - per-call deadlines are the API
    """Poll a condition that depends on the bot's side (e.g. its error list)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return value


def _make_bot(fake: FakeDiscord, **kwargs: Any) -> SampleBot:
    return SampleBot(fake.default_guild.id, **kwargs)


async def test_login_sync_and_ready(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        assert bot.user is not None and bot.user.id == fake.bot_user.id
        assert bot.application_id == fake.application_id
        guild = bot.get_guild(fake.default_guild.id)
        assert guild is not None and guild.name == "Sonance Dev"
        assert guild.get_member(fake.user("alice").id) is not None  # members intent -> full member list
        assert guild.text_channels[0].name == "general"
        # The tree was synced to the dev guild only; nothing global.
        names = {c["name"] for c in fake.synced_commands(fake.default_guild)}
        assert {"recommend", "slow", "taste", "dm", "export"} <= names
        assert fake.synced_commands() == []
        assert [c.name for c in bot.synced] == [c["name"] for c in fake.synced_commands(fake.default_guild)]
        identify = fake.identifies[0]
        assert identify["token"] == fake.token and identify["intents"] & (1 << 1)
    fake.assert_clean()


async def test_synced_payload_passes_validator(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        payloads = fake.synced_payloads(fake.default_guild)
        assert payloads, "bot synced nothing"
        assert validate_command_payloads(payloads) == []
        # It is the same payload discord.py builds locally, so a unit test can validate without a fake.
        local = [c.to_dict(bot.tree) for c in bot.tree.get_commands(guild=bot.dev_guild)]
        assert sorted(p["name"] for p in local) == sorted(p["name"] for p in payloads)


async def test_slash_immediate_response_with_buttons(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        record = await fake.dispatch(fake.slash("recommend", options={"kind": "artists", "count": 2}))
        ack = await record.wait_ack()
        assert ack.type == 4 and ack.latency < 3.0
        final = await record.wait_final()
        assert final.kind == "callback"
        assert final.embeds[0]["title"] == "Your artists"
        assert final.embeds[0]["description"] == "Radiohead\nPortishead"
        assert final.custom_ids() == ["sonance:fb:42:up", "sonance:fb:42:down"]
        assert record.ack_latency is not None and record.ack_latency < 1.0
        # The original response is retrievable like on Discord.
        original = await bot.get_channel(fake.default_guild.text_channel().id).fetch_message(
            int(final.message["id"])
        )  # type: ignore[union-attr]
        assert original.embeds[0].title == "Your artists"
    fake.assert_clean()


async def test_slash_defer_then_followup_and_edit(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        slow = await fake.dispatch(fake.slash("slow"))
        edit = await fake.dispatch(fake.slash("edit"))
        assert (await slow.wait_ack()).type == 5
        final = await slow.wait_final()
        assert final.kind == "followup" and final.body["content"] == "Here are your slow recommendations"
        assert (await edit.wait_ack()).type == 5
        assert (await edit.wait_ack()).data == {"flags": 64}
        edited = await edit.wait_final()
        assert edited.kind == "edit_original" and edited.content == "edited original"
        assert edit.original_message is not None and edit.original_message["flags"] & 64


async def test_dynamic_item_button_click_after_restart(fake: FakeDiscord) -> None:
    """A click on a message the bot never saw in this process still routes through the DynamicItem."""
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        alice = fake.user("alice")
        click = await fake.dispatch(fake.button("sonance:fb:7:down", user=alice))
        final = await click.wait_final()
        assert final.body["content"] == "Thanks! Recorded down for #7."
        assert final.ephemeral
        assert bot.feedback == [(alice.id, 7, "down")]


async def test_button_on_recorded_message(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        rec = await fake.dispatch(fake.slash("recommend", options={"kind": "tracks"}))
        message = await rec.wait_final()
        click = await fake.dispatch(fake.button(message.custom_ids()[0], message=message))
        assert (await click.wait_final()).body["content"] == "Thanks! Recorded up for #42."
        with pytest.raises(LookupError):
            fake.button("sonance:fb:999:up", message=message)


async def test_dm_open_and_closed_user(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        alice, bob = fake.user("alice"), fake.user("bob")
        ok = await fake.dispatch(fake.slash("dm", options={"user": alice}))
        assert (await ok.wait_final()).body["content"] == "DM sent"
        closed = await fake.dispatch(fake.slash("dm", options={"user": bob}))
        assert (await closed.wait_final()).body["content"] == "Could not DM them (DMs closed)"
        assert bot.dm_results == ["sent", "forbidden:50007"]
        assert [(d.recipient_id, d.content) for d in fake.dms] == [
            (alice.id, "Your weekly Sonance mix is ready")
        ]
        assert len(fake.dm_failures) == 1
        # And straight from bot code, the exception carries Discord's JSON error.
        user = await bot.fetch_user(bob.id)
        with pytest.raises(discord.Forbidden) as excinfo:
            await user.send("hello")
        assert excinfo.value.code == 50007
        assert excinfo.value.text == "Cannot send messages to this user"
    fake.assert_clean()


async def test_file_uploads_are_recorded_with_bytes(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        record = await fake.dispatch(fake.slash("export"))
        ack = await record.wait_ack()
        assert ack.type == 4
        assert [(f.filename, f.data) for f in ack.files] == [
            ("playlist.csv", b"artist,track\nRadiohead,Reckoner\n")
        ]
        assert ack.files[0].field == "files[0]"
        assert ack.body["data"]["attachments"][0]["filename"] == "playlist.csv"
        followups = await record.wait_followups(1)
        assert [(f.filename, f.data) for f in followups[0].files] == [("cover.png", b"\x89PNG fake")]
        attachment = followups[0].message["attachments"][0]  # type: ignore[index]
        async with aiohttp.ClientSession() as session, session.get(attachment["url"]) as resp:
            assert await resp.read() == b"\x89PNG fake"


async def test_double_acknowledgement_is_40060(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        payload = fake.slash("once")
        record = await fake.dispatch(payload)
        await record.wait_ack()
        await fake.dispatch(payload)  # same interaction delivered to a second handler
        await record.wait_for(lambda r: len(r.callbacks) == 2)
        rejected = record.rejected_callbacks
        assert [(c.status, c.error_code) for c in rejected] == [(400, 40060)]
        error = await eventually(lambda: bot.errors)
        assert isinstance(error[0], discord.HTTPException) and error[0].code == 40060
        assert record.ack is record.callbacks[0]


async def test_double_acknowledgement_raw_http(fake: FakeDiscord) -> None:
    """Without a bot: the fake itself enforces one acknowledgement per interaction."""
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        record = await fake.dispatch(fake.slash("once"))
        await record.wait_ack()
    url = f"{fake.api_base}/interactions/{record.id}/{record.token}/callback"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"type": 4, "data": {"content": "again"}}) as resp:
            assert resp.status == 400
            assert resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {
                "message": "Interaction has already been acknowledged.",
                "code": 40060,
            }


async def test_ack_after_deadline_is_rejected() -> None:
    async with FakeDiscord(ack_deadline=0.2) as fake:
        bot = _make_bot(fake, slow_seconds=0.35)
        async with running_bot(bot, fake):
            record = await fake.dispatch(fake.slash("sleepy"))
            await record.wait_for(lambda r: r.callbacks)
            late = record.callbacks[0]
            assert not late.accepted and late.error_code == 10062 and late.latency > 0.2
            error = await eventually(lambda: bot.errors)
            assert isinstance(error[0], discord.NotFound) and error[0].code == 10062


async def test_autocomplete_subcommand_and_modal(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        bob = fake.user("bob")
        ac = await fake.dispatch(
            fake.autocomplete("taste", "artist", "b", options={"other": bob}, subcommand="compare")
        )
        await ac.wait_ack()
        assert ac.choices == [
            {"name": "Björk", "value": "Björk"},
            {"name": "Boards of Canada", "value": "Boards of Canada"},
        ]
        cmd = await fake.dispatch(
            fake.slash("taste", {"other": bob, "artist": "Björk"}, subcommand="compare")
        )
        assert (await cmd.wait_final()).body["content"] == "alice vs bob on Björk"
        form = await fake.dispatch(fake.slash("feedback"))
        modal = (await form.wait_ack()).data
        assert form.modal is modal and modal is not None and modal["custom_id"] == "sonance:modal:feedback"
        submit = await fake.dispatch(
            fake.modal_submit("sonance:modal:feedback", {"sonance:modal:comment": "more jazz"})
        )
        assert (await submit.wait_final()).body["content"] == "Got it: more jazz"


async def test_builder_rejects_what_discord_client_would_not_send(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        with pytest.raises(ValueError, match="choices"):
            fake.slash("recommend", options={"kind": "podcasts"})
        with pytest.raises(ValueError, match="required"):
            fake.slash("recommend")
        with pytest.raises(LookupError):
            fake.slash("nope")
        with pytest.raises(ValueError, match="subcommand"):
            fake.slash("taste")


async def test_unknown_routes_are_recorded(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        with pytest.raises(discord.NotFound):
            await bot.http.request(discord.http.Route("GET", "/voice/regions"))
    assert [(r.method, r.path) for r in fake.unmatched_requests] == [("GET", "/voice/regions")]


async def test_invalid_sync_is_rejected_like_discord(fake: FakeDiscord) -> None:
    """discord.py does not check the 8000-character budget; Discord (and the fake) reject the PUT."""
    with use_fake_discord(fake):
        client = discord.Client(intents=discord.Intents.none())
        tree = discord.app_commands.CommandTree(client)
        long = "x" * 100

        @tree.command(name="big", description=long)
        @discord.app_commands.choices(
            a=[
                discord.app_commands.Choice(name=f"{i:02d}{long[:98]}", value=f"{i:02d}{long[:98]}")
                for i in range(25)
            ],
            b=[
                discord.app_commands.Choice(name=f"{i:02d}{long[:98]}", value=f"{i:02d}{long[:98]}")
                for i in range(25)
            ],
        )
        async def big(interaction: discord.Interaction, a: str, b: str) -> None:
            raise AssertionError("never invoked")

        await client.login(fake.token)
        try:
            with pytest.raises(discord.HTTPException) as excinfo:
                await tree.sync()
        finally:
            await client.close()
    assert excinfo.value.status == 400 and excinfo.value.code == 50035
    assert "10107 combined characters" in excinfo.value.text
    assert fake.synced_commands() == []


async def test_reconnect_and_resume(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        await fake.request_reconnect()
        await eventually(lambda: fake.resumes)
        await fake.wait_until_ready()
        record = await fake.dispatch(fake.slash("recommend", options={"kind": "artists"}))
        assert (await record.wait_ack()).type == 4
        assert len(fake.identifies) == 1  # resumed, not re-identified


async def test_auto_sharded_bot() -> None:
    guilds = [
        FakeGuild(
            id=snowflake_for_shard(i, shard, 2),
            name=f"guild-{shard}",
            channels=[FakeChannel(id=900 + i, name="general")],
        )
        for i, shard in enumerate((0, 1))
    ]
    users = [FakeUser(id=1_300_000_000_000_000_201, username="carol")]
    async with FakeDiscord(guilds=guilds, users=users, shards=2) as fake:
        bot = SampleShardedBot([g.id for g in guilds])
        async with running_bot(bot, fake):
            assert bot.shard_count == 2
            assert sorted(i["shard"] for i in fake.identifies) == [[0, 2], [1, 2]]
            assert {g.id: g.shard_id for g in bot.guilds} == {guilds[0].id: 0, guilds[1].id: 1}
            record = await fake.dispatch(fake.slash("slow", guild=guilds[1]))
            assert (await record.wait_final()).content == "Here are your slow recommendations"
            click = await fake.dispatch(fake.button("sonance:fb:5:up", guild=guilds[0]))
            assert (await click.wait_final()).content == "Thanks! Recorded up for #5."
        assert fake.requests_to("GET", "/gateway/bot")
        fake.assert_clean()


class _PagerView(discord.ui.View):
    """Persistent view: "next" edits the message in place (type 7), "noop" defers the update (type 6)."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Next", custom_id="sonance:page:next")
    async def next_page(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="page 2")

    @discord.ui.select(custom_id="sonance:page:pick", options=[discord.SelectOption(label="A", value="a")])
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.defer()
        await interaction.followup.send(f"picked {select.values[0]}", ephemeral=True)


async def test_dm_command_component_update_and_select(fake: FakeDiscord) -> None:
    """Global command used in a bot DM; persistent view answering with types 7 and 6."""
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    tree = discord.app_commands.CommandTree(client)
    seen: list[tuple[str, str]] = []

    @tree.command(name="pager", description="Show pages")
    @discord.app_commands.allowed_contexts(guilds=True, dms=True)
    async def pager(interaction: discord.Interaction) -> None:
        seen.append((type(interaction.user).__name__, type(interaction.channel).__name__))
        await interaction.response.send_message("page 1", view=_PagerView())

    async def setup_hook() -> None:
        client.add_view(_PagerView())
        await tree.sync()

    client.setup_hook = setup_hook  # type: ignore[method-assign]
    async with running_bot(client, fake):
        assert fake.synced_commands()[0]["contexts"] == [0, 1]
        record = await fake.dispatch(fake.slash("pager", dm=True))
        first = await record.wait_final()
        assert seen == [("User", "DMChannel")]
        assert first.custom_ids() == ["sonance:page:next", "sonance:page:pick"]

        click = await fake.dispatch(fake.button("sonance:page:next", message=first, dm=True))
        ack = await click.wait_ack()
        assert ack.type == 7 and ack.data is not None and ack.data["content"] == "page 2"
        assert fake.messages[int(first.message["id"])]["content"] == "page 2"  # type: ignore[index]

        pick = await fake.dispatch(fake.select("sonance:page:pick", ["a"], message=first, dm=True))
        assert (await pick.wait_ack()).type == 6
        assert (await pick.wait_final()).content == "picked a"
    fake.assert_clean()


async def test_deleted_or_never_sent_messages_are_10008(fake: FakeDiscord) -> None:
    """Like Discord: editing, fetching or deleting a message that was deleted (also when named by its
    id) or never sent answers 404 10008, and the interaction's record counts it as a problem."""
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        record = await fake.dispatch(fake.slash("once"))
        await record.wait_ack()
    assert record.answer_problems() == []
    original_id = record.original_message["id"]  # type: ignore[index]
    base = f"{fake.api_base}/webhooks/{fake.application_id}/{record.token}/messages"
    headers = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.delete(f"{base}/@original") as resp:
            assert resp.status == 204
        for method, target in (("PATCH", "@original"), ("PATCH", original_id), ("GET", "@original"),
                               ("DELETE", original_id), ("PATCH", "123456789012345678")):
            async with session.request(method, f"{base}/{target}", json={"content": "late"}) as resp:
                assert resp.status == 404, (method, target)
                assert await resp.json() == {"message": "Unknown Message", "code": 10008}
    assert len(record.answer_problems()) == 5
    with pytest.raises(AssertionError, match="10008"):
        fake.assert_one_answer_per_interaction()


async def test_a_repeated_answer_or_an_error_after_the_answer_is_a_problem(fake: FakeDiscord) -> None:
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        record = await fake.dispatch(fake.slash("once"))
        await record.wait_ack()
    url = f"{fake.api_base}/webhooks/{fake.application_id}/{record.token}"
    answer = record.final().content  # type: ignore[union-attr]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as session:
        for content in (answer, "Sorry, something went wrong on my side."):
            async with session.post(url, json={"content": content}) as resp:
                assert resp.status == 204
    problems = record.answer_problems()
    assert any("sent twice" in p for p in problems) and any("error message after" in p for p in problems)


async def test_a_forgotten_interaction_leaves_no_record_and_its_token_is_unknown(fake: FakeDiscord) -> None:
    """Long runs prune answered interactions (the soak): every index lets go of the record, so the
    fake stops growing, and a late follow-up is refused as Discord refuses an expired token."""
    bot = _make_bot(fake)
    async with running_bot(bot, fake):
        record = await fake.dispatch(fake.slash("slow"))
        await record.wait_final()
    assert fake.forget_interaction(record.id) is record
    assert record.id not in fake.interactions and fake.forget_interaction(record.id) is None
    url = f"{fake.api_base}/webhooks/{fake.application_id}/{record.token}"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"content": "late"}) as resp:
            assert resp.status == 404
            assert (await resp.json())["code"] == 10015
    assert not [r for r in gc.get_referrers(record) if isinstance(r, dict) and record in r.values()]
