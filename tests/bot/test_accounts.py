"""Accounts & privacy end to end: real INTERACTION_CREATE payloads through the fake Discord, the real
bot and cog, the local Last.fm / Spotify fakes, the web callbacks, and the test database.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.interactions import APOLOGY, cooldown_message
from bot.render import accounts as render
from bot.web import build_web_app
from core.accounts import LASTFM_NOT_CONFIGURED, SPOTIFY_NOT_CONFIGURED, PrivacyResult
from core.asker import Asker
from core.config import Settings
from core.db.models import Base, LinkedAccount
from core.db.repositories import AccountRepository, ListenRepository, UserRepository
from core.services import Services
from core.sources.oauth_state import InMemoryNonceStore, OAuthStateSigner
from core.sync.engine import LastfmSync
from tests.bot.world import GUILD_ID, MEMBERS, OTHER_GUILD_ID
from tests.conftest import TEST_SECRET, make_settings
from tests.fakes.discord_payloads import DEFAULT_ATTACHMENT_SIZE_LIMIT
from tests.fakes.discord_server import FakeDiscord, SentMessage
from tests.fakes.lastfm_server import LastfmFake
from tests.fakes.oauth_browser import callback_and_confirm, confirm, confirmation_form
from tests.fakes.spotify_server import SpotifyFake

EPHEMERAL = 64
PUBLIC_BASE = "http://127.0.0.1:8080"
SPOTIFY_REDIRECT = f"{PUBLIC_BASE}/callback/spotify"


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
async def lastfm_fake() -> AsyncIterator[LastfmFake]:
    async with LastfmFake() as fake:
        yield fake


@pytest.fixture
async def spotify_fake() -> AsyncIterator[SpotifyFake]:
    async with SpotifyFake(redirect_uri=SPOTIFY_REDIRECT) as fake:
        yield fake


@pytest.fixture
def configured(request: pytest.FixtureRequest) -> bool:
    """Whether the bot gets Last.fm/Spotify settings; parametrize indirectly with False to drop them."""
    return bool(getattr(request, "param", True))


@pytest.fixture
def bot_settings(database_url: str, tmp_path: Path, lastfm_fake: LastfmFake, spotify_fake: SpotifyFake,
                 configured: bool) -> Settings:
    """The conftest settings plus the local Last.fm/Spotify fakes."""
    overrides: dict[str, Any] = {}
    if configured:
        overrides = {**lastfm_fake.settings_overrides(), **spotify_fake.settings_overrides()}
    return make_settings(database_url, tmp_path, DISCORD_DEV_GUILD_ID=str(GUILD_ID),
                         SONANCE_PUBLIC_BASE_URL=PUBLIC_BASE, **overrides)


@pytest.fixture
async def web(world_services: Services) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_web_app(world_services))) as client:
        yield client


def uid(services: Services, name: str) -> int:
    return int(services.extras["world_ids"][name])


def discord_id(name: str) -> int:
    return MEMBERS[name].fake.id


async def run(fake: FakeDiscord, name: str, options: dict[str, Any] | None = None, *, user: str,
              subcommand: str | None = None) -> SentMessage:
    record = await fake.dispatch(fake.slash(name, options or {}, subcommand=subcommand, user=user, guild=GUILD_ID))
    return await record.wait_final(timeout=10)


def buttons(message: SentMessage) -> list[dict[str, Any]]:
    return [c for row in message.components for c in row.get("components", [])]


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def rows_about(services: Services, user_id: int) -> dict[str, int]:
    """Rows referencing the user, found by walking the schema (like the repository tests do)."""
    found: dict[str, int] = {}
    async with services.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                refs_users = any(fk.column.table.name == "users" for fk in column.foreign_keys)
                if refs_users or (table.name == "users" and column.name == "id"):
                    n = len((await conn.execute(select(table).where(column == user_id))).all())
                    if n:
                        found[f"{table.name}.{column.name}"] = n
    return found


def plays(n: int, start: int = 1_700_000_000) -> list[tuple[int, str, str, str]]:
    artists = ["Radiohead", "Portishead", "Slowdive"]
    return [(start + 60 * i, artists[i % 3], f"{artists[i % 3]} album", f"Song {i}") for i in range(n)]


# ------------------------------------------------------------------------------------ /link lastfm


async def test_link_lastfm_links_offers_verification_and_imports_history(
        sonance: FakeDiscord, world_services: Services, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("ErinFM", scrobbles=plays(450))
    final = await run(sonance, "link", {"username": "erinfm"}, subcommand="lastfm", user="erin")

    assert final.body["flags"] & EPHEMERAL
    assert final.content.startswith("Linked Last.fm **ErinFM** (450 scrobbles on Last.fm).")
    assert "started importing your listening history in the background" in final.content
    [button] = buttons(final)
    assert button["style"] == 5 and button["label"] == "Verify with Last.fm"
    url = urlsplit(button["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{lastfm_fake.base_url}/api/auth/"
    cb = parse_qs(url.query)["cb"][0]
    assert cb.startswith(f"{PUBLIC_BASE}/callback/lastfm?state=")

    erin = uid(world_services, "erin")
    async with world_services.session() as s:
        account = await AccountRepository.without_cipher(s).get(erin, "lastfm")
        assert account is not None and account.external_id == "ErinFM" and account.verified is False

    async def imported() -> bool:  # listens commit before the sync records "ok": wait for both
        async with world_services.session() as s:
            account = await AccountRepository.without_cipher(s).get(erin, "lastfm")
            done = account is not None and account.history_complete
            return done and await ListenRepository(s).count_listens(erin) == 450

    assert await eventually(imported), "the background import did not store the listens"
    async with world_services.session() as s:
        account = await AccountRepository.without_cipher(s).get(erin, "lastfm")
        assert account is not None and account.history_complete and account.last_sync_status == "ok"

    shown = await run(sonance, "account", user="erin")
    assert shown.body["flags"] & EPHEMERAL
    [embed] = shown.embeds
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Last.fm"].startswith("**ErinFM** · not verified (public profile) · last sync <t:")
    assert "✅ Syncing normally." in fields["Last.fm"]
    assert fields["History"] == "450 listens · 3 artists"
    sonance.assert_clean()


async def test_account_shows_import_progress_while_it_runs(
        sonance: FakeDiscord, world_services: Services, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("bigfm", synthetic=3000)
    lastfm_fake.fail_next("slow", delay=0.0, method="user.getRecentTracks")  # the link's privacy probe
    lastfm_fake.fail_next("slow", delay=2.0, method="user.getRecentTracks")  # the import's first page
    await run(sonance, "link", {"username": "bigfm"}, subcommand="lastfm", user="erin")
    shown = await run(sonance, "account", user="erin")
    value = {f["name"]: f["value"] for f in shown.embeds[0]["fields"]}["Last.fm"]
    assert "⏳ Import running" in value

    erin = uid(world_services, "erin")

    async def imported() -> bool:
        async with world_services.session() as s:
            return await ListenRepository(s).count_listens(erin) == 3000

    assert await eventually(imported)


async def test_link_lastfm_unknown_user_is_a_clear_ephemeral_message(
        sonance: FakeDiscord, world_services: Services) -> None:
    final = await run(sonance, "link", {"username": "nobody_here"}, subcommand="lastfm", user="erin")
    assert final.body["flags"] & EPHEMERAL
    assert final.content == "I couldn't find a Last.fm user called 'nobody_here'."
    async with world_services.session() as s:
        assert await AccountRepository.without_cipher(s).get(uid(world_services, "erin"), "lastfm") is None


async def test_link_lastfm_private_profile_is_explained(
        sonance: FakeDiscord, world_services: Services, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("shy", scrobbles=plays(5), private=True)
    final = await run(sonance, "link", {"username": "shy"}, subcommand="lastfm", user="erin")
    assert final.body["flags"] & EPHEMERAL
    assert "hides its listening history" in final.content
    assert "Hide recent listening information" in final.content
    async with world_services.session() as s:
        assert await AccountRepository.without_cipher(s).get(uid(world_services, "erin"), "lastfm") is None


async def test_link_lastfm_has_a_cooldown(sonance: FakeDiscord, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("dup", scrobbles=plays(3))
    await run(sonance, "link", {"username": "dup"}, subcommand="lastfm", user="erin")
    again = await run(sonance, "link", {"username": "dup"}, subcommand="lastfm", user="erin")
    assert again.body["flags"] & EPHEMERAL
    assert again.content.startswith("Easy there! Try again in ")


@pytest.mark.parametrize("configured", [False], indirect=True)
async def test_link_without_lastfm_or_spotify_configured_says_so(sonance: FakeDiscord) -> None:
    lastfm = await run(sonance, "link", {"username": "someone"}, subcommand="lastfm", user="erin")
    assert lastfm.content == LASTFM_NOT_CONFIGURED and lastfm.body["flags"] & EPHEMERAL
    spotify = await run(sonance, "link", subcommand="spotify", user="dave")
    assert spotify.content == SPOTIFY_NOT_CONFIGURED and spotify.body["flags"] & EPHEMERAL
    assert spotify.content == "Spotify linking isn't enabled on this bot; Last.fm works without it."


# ------------------------------------------------------------------------------------ /account


async def test_account_shows_the_reason_of_a_failed_sync(
        sonance: FakeDiscord, world_services: Services, lastfm_fake: LastfmFake) -> None:
    lastfm_fake.add_user("alice_fm", scrobbles=plays(3), private=True)  # alice is linked to alice_fm
    assert world_services.lastfm is not None
    alice = uid(world_services, "alice")
    async with world_services.session() as s:
        account = await AccountRepository.without_cipher(s).get(alice, "lastfm")
        assert account is not None
    report = await LastfmSync(world_services, world_services.lastfm).sync_account(account.id)
    assert report.reason == "lastfm_private"

    shown = await run(sonance, "account", user="alice")
    assert shown.body["flags"] & EPHEMERAL
    [embed] = shown.embeds
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "**alice\\_fm** · not verified (public profile) · last sync <t:" in fields["Last.fm"]
    assert ":R>" in fields["Last.fm"]
    assert ("⚠️ Your Last.fm profile hides its recent listening. In Last.fm's privacy settings, untick "
            "'Hide recent listening information'") in fields["Last.fm"]
    assert fields["History"] == "36 listens · 4 artists"
    assert fields["Privacy"] == "visible in every server you use Sonance in; in this server you are **visible**."

    # an unknown user is explained differently
    lastfm_fake.users.pop("alice_fm")
    await LastfmSync(world_services, world_services.lastfm).sync_account(account.id)
    shown = await run(sonance, "account", user="alice")
    value = {f["name"]: f["value"] for f in shown.embeds[0]["fields"]}["Last.fm"]
    assert "Last.fm says this user no longer exists" in value


# ------------------------------------------------------------------------------------ /privacy


async def test_privacy_hides_a_member_from_this_server(sonance: FakeDiscord, world_services: Services) -> None:
    alice = uid(world_services, "alice")
    async with world_services.session() as s:
        assert alice in await UserRepository(s).visible_member_ids(GUILD_ID)

    final = await run(sonance, "privacy", {"visibility": "private", "scope": "guild"}, user="alice")
    assert final.body["flags"] & EPHEMERAL
    assert final.content == (  # the effect here first; the level for the other servers after it
        "In this server you are **hidden**: you don't appear on the leaderboards or matches.\n"
        "In other servers you are visible wherever you use Sonance, unless you hid yourself there.\n"
        "Your Discord name is shown to others.")
    async with world_services.session() as s:
        assert alice not in await UserRepository(s).visible_member_ids(GUILD_ID)
        assert uid(world_services, "bob") in await UserRepository(s).visible_member_ids(GUILD_ID)


async def test_privacy_everywhere_this_server_only_and_hidden_name(
        sonance: FakeDiscord, world_services: Services) -> None:
    carol = uid(world_services, "carol")
    async with world_services.session() as s:
        await UserRepository(s).ensure_membership(OTHER_GUILD_ID, carol)

    await run(sonance, "privacy", {"visibility": "public", "scope": "guild"}, user="carol")  # explicit opening
    final = await run(sonance, "privacy", {"visibility": "private", "scope": "everywhere"}, user="carol")
    assert final.content == (
        "In this server you are **hidden**: you don't appear on the leaderboards or matches.\n"
        "In other servers you are hidden, except where you opened your profile with /privacy.\n"
        "(Replaced your earlier per-server choice in 1 server.)\n"
        "Your Discord name is shown to others.")
    async with world_services.session() as s:
        users = UserRepository(s)
        assert (await users.settings(carol)).privacy_level == "private"
        assert carol not in await users.visible_member_ids(GUILD_ID)  # the older opening was replaced
        assert carol not in await users.visible_member_ids(OTHER_GUILD_ID)

    final = await run(sonance, "privacy", {"visibility": "guild", "hide_username": True}, user="carol")
    assert final.content.startswith(
        "In this server you **appear** on the leaderboards and matches.\n"
        "In other servers you are visible only where you opened your profile with /privacy.\n")
    assert "Your name is shown as 'a listener' to others." in final.content
    async with world_services.session() as s:
        users = UserRepository(s)
        assert (await users.settings(carol)).privacy_level == "guild"
        assert carol in await users.visible_member_ids(GUILD_ID)
        assert carol not in await users.visible_member_ids(OTHER_GUILD_ID)
        assert (await users.display_names([carol]))[carol] == "a listener"

    shown = await run(sonance, "privacy", user="carol")  # no options: current settings
    assert shown.content.startswith("Nothing changed; here are your current settings.")


async def private_deferral_then_answer(fake: FakeDiscord, name: str, options: dict[str, Any], *,
                                      user: str) -> SentMessage:
    """Run a command that does database work before it can answer: it must acknowledge first, with a
    private "thinking…" (its answer is personal), then answer in a private follow-up."""
    record = await fake.dispatch(fake.slash(name, options, user=user, guild=GUILD_ID))
    final = await record.wait_final(timeout=10)
    ack = record.ack
    assert ack is not None and ack.type == 5 and (ack.data or {}).get("flags", 0) & EPHEMERAL, ack
    assert ack.latency < 3.0 and not record.rejected_callbacks
    assert final.kind == "followup" and final.ephemeral
    assert len(record.visible_messages()) == 1
    return final


async def test_privacy_and_unlink_acknowledge_privately_before_their_database_work(
        sonance: FakeDiscord) -> None:
    """/privacy writes and clears cached boards, /unlink may wait for an import to stop: both defer
    (privately) before that work, so a slow database never makes them miss Discord's 3 s."""
    hidden = await private_deferral_then_answer(sonance, "privacy", {"visibility": "private"}, user="alice")
    assert hidden.content.startswith("In this server you are **hidden**")
    unlinked = await private_deferral_then_answer(sonance, "unlink", {"service": "lastfm"}, user="dave")
    assert unlinked.content.startswith("Unlinked Last.fm **dave\\_fm**")
    nothing = await private_deferral_then_answer(sonance, "unlink", {"service": "spotify"}, user="dave")
    assert nothing.content == "You have no Spotify account linked."
    sonance.assert_clean()


def test_privacy_from_a_dm_words_the_level_alone() -> None:
    """Outside a server there is no "here": the reply is the level that applies everywhere."""
    result = PrivacyResult("private", True, guild_visible=None, visible_here=None, changed=True)
    assert render.privacy_message(result) == (
        "Your profile is hidden everywhere (except servers you opened explicitly).\n"
        "Your name is shown as 'a listener' to others.")


# ------------------------------------------------------------------------------------ /unlink


async def test_unlink_removes_the_account_and_keeps_listens(sonance: FakeDiscord, world_services: Services) -> None:
    dave = uid(world_services, "dave")
    final = await run(sonance, "unlink", {"service": "lastfm"}, user="dave")
    assert final.body["flags"] & EPHEMERAL
    assert final.content == ("Unlinked Last.fm **dave\\_fm**; its tokens are deleted. The 30 listens already "
                             "imported stay, so recommendations keep working; use /forget to delete everything.")
    async with world_services.session() as s:
        assert await AccountRepository.without_cipher(s).for_user(dave) == []
        assert await ListenRepository(s).count_listens(dave) == 30
    again = await run(sonance, "unlink", {"service": "spotify"}, user="dave")
    assert again.content == "You have no Spotify account linked."


# ------------------------------------------------------------------------------------ /forget


async def test_forget_confirm_deletes_every_row_about_the_user(sonance: FakeDiscord, world_services: Services) -> None:
    alice, bob = uid(world_services, "alice"), uid(world_services, "bob")
    await world_services.cache.set("recs", f"u{alice}:artists", ["x"])
    await world_services.cache.set("recs", f"u{bob}:artists", ["y"])
    budget = world_services.explainer.budget if world_services.explainer else None
    assert budget is not None
    for user in (alice, alice, bob):  # model calls counted today (the explanation budget)
        await budget.try_spend(user)
    assert (await budget.spent_today(alice), await budget.spent_today(bob)) == (2, 1)
    assert await rows_about(world_services, alice)

    prompt = await run(sonance, "forget", user="alice")
    assert prompt.body["flags"] & EPHEMERAL
    assert prompt.content.startswith("This deletes **everything** Sonance stores about you")
    assert prompt.custom_ids() == ["sonance:forget:yes", "sonance:forget:no"]

    intruder = await sonance.dispatch(sonance.button("sonance:forget:yes", message=prompt, user="bob"))
    refused = await intruder.wait_final()
    assert refused.content == "Only the person who ran /forget can answer this." and refused.ephemeral
    assert await rows_about(world_services, alice)

    click = await sonance.dispatch(sonance.button("sonance:forget:yes", message=prompt, user="alice"))
    edit = await click.wait_for(lambda r: r.original_edits[-1] if r.original_edits else None, timeout=10)
    assert click.ack is not None and click.ack.type == 6
    assert edit.content.startswith("Done. Deleted ")
    assert "listens: 36" in edit.content and "linked accounts: 1" in edit.content and "users: 1" in edit.content
    assert re.search(r"and [1-9]\d* cached entries", edit.content)  # Redis db may hold other tests' keys
    assert all(b["disabled"] for b in buttons(edit))

    assert await rows_about(world_services, alice) == {}
    assert await rows_about(world_services, bob)
    assert await world_services.cache.get("recs", f"u{alice}:artists") is None
    assert await world_services.cache.get("recs", f"u{bob}:artists") == ["y"]
    assert (await budget.spent_today(alice), await budget.spent_today(bob)) == (0, 1), \
        "the explanation-budget key is gone with the user (in-process cache or Redis)"
    sonance.assert_clean()


async def test_forget_cancel_deletes_nothing(sonance: FakeDiscord, world_services: Services) -> None:
    alice = uid(world_services, "alice")
    before = await rows_about(world_services, alice)
    prompt = await run(sonance, "forget", user="alice")
    click = await sonance.dispatch(sonance.button("sonance:forget:no", message=prompt, user="alice"))
    answer = await click.wait_final()
    assert click.ack is not None and click.ack.type == 7
    assert answer.content == "Cancelled; nothing was deleted."
    assert all(b["disabled"] for b in buttons(answer))
    assert await rows_about(world_services, alice) == before


async def test_forget_confirmation_times_out_and_disables_buttons(
        sonance: FakeDiscord, world_services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    # discord.py loads extensions itself (sys.modules only, no attribute on the `cogs` package)
    monkeypatch.setattr(sys.modules["cogs.accounts"], "FORGET_CONFIRM_TIMEOUT_S", 0.2)
    record = await sonance.dispatch(sonance.slash("forget", user="alice", guild=GUILD_ID))
    await record.wait_final()
    edit = await record.wait_for(lambda r: r.original_edits[-1] if r.original_edits else None, timeout=5)
    assert edit.content.startswith("This confirmation expired; nothing was deleted.")
    assert all(b["disabled"] for b in buttons(edit))
    assert await rows_about(world_services, uid(world_services, "alice"))


async def test_commands_about_stored_data_store_nothing_for_a_stranger(
        sonance: FakeDiscord, world_services: Services) -> None:
    """/export, /unlink and /forget from someone Sonance stores nothing about answer "nothing" and
    leave nothing behind: asking what is stored must not itself create a row or a membership."""
    erin = Asker(uid(world_services, "erin"), discord_id("erin"), GUILD_ID)
    await world_services.accounts.forget(erin)  # now a stranger to Sonance

    export = await run(sonance, "export", user="erin")
    assert export.content == "Sonance has nothing stored about you." and not export.files
    unlink = await run(sonance, "unlink", {"service": "lastfm"}, user="erin")
    assert unlink.content == "You have no Last.fm account linked."
    prompt = await run(sonance, "forget", user="erin")
    click = await sonance.dispatch(sonance.button("sonance:forget:yes", message=prompt, user="erin"))
    done = await click.wait_for(lambda r: r.original_edits[-1] if r.original_edits else None, timeout=10)
    assert done.content == "Sonance had nothing stored about you; there was nothing to delete."
    async with world_services.session() as s:
        assert await UserRepository(s).by_discord_id(discord_id("erin")) is None
    sonance.assert_clean()


# ------------------------------------------------------------------------------------ /export


async def test_export_attaches_json_with_only_the_askers_rows(sonance: FakeDiscord, world_services: Services) -> None:
    alice = uid(world_services, "alice")
    final = await run(sonance, "export", user="alice")
    assert final.body["flags"] & EPHEMERAL
    assert final.content.startswith("Everything Sonance stores about you (")
    [file] = final.files
    assert file.filename == f"sonance-export-{discord_id('alice')}.json"
    assert final.body["attachments"][0]["filename"] == file.filename
    document = json.loads(file.data)
    tables = document["tables"]
    assert document["discord_id"] == str(discord_id("alice"))
    assert [r["id"] for r in tables["users"]] == [alice]
    assert len(tables["listens"]) == 36
    assert {"users", "listens", "linked_accounts", "guild_memberships", "artist_plays"} <= set(tables)
    for name, rows in tables.items():
        for row in rows:
            if "user_id" in row:
                assert row["user_id"] == alice, f"{name} has someone else's row"

    again = await run(sonance, "export", user="alice")
    assert again.content.startswith("Easy there!")


async def test_export_for_a_stranger_is_empty(sonance: FakeDiscord) -> None:
    # erin has a users row (seeded) but nothing else; an unknown Discord user would get "nothing"
    final = await run(sonance, "export", user="erin")
    assert final.body["flags"] & EPHEMERAL
    document = json.loads(final.files[0].data)
    assert set(document["tables"]) == {"users"}


async def test_export_fits_the_upload_limit_discord_gives_the_interaction(sonance: FakeDiscord) -> None:
    """Discord tells each interaction how large an upload may be (`attachment_size_limit`; a boosted
    server allows more). Here it is 4 KiB, which alice's plain JSON exceeds: the export arrives
    gzipped instead of Discord refusing the upload (413) and the member getting an apology."""
    sonance.attachment_size_limit = 4 * 1024
    final = await run(sonance, "export", user="alice")
    assert final.content.startswith("Everything Sonance stores about you (") and final.ephemeral
    [file] = final.files
    assert file.filename == f"sonance-export-{discord_id('alice')}.json.gz"
    plain = gzip.decompress(file.data)
    assert len(plain) > sonance.attachment_size_limit  # the plain JSON would not have fitted
    assert json.loads(plain)["discord_id"] == str(discord_id("alice"))


async def test_a_failed_export_gives_its_cooldown_back(sonance: FakeDiscord) -> None:
    """The apology for a failure says "please try again in a moment", so the failed attempt must not
    spend the 5-minute cooldown; a successful one does. The failure is Discord's: the server's upload
    limit dropped (a boost ran out) between the interaction and the upload, so it refuses the file
    with 413 although the interaction allowed it."""
    payload = sonance.slash("export", {}, user="alice", guild=GUILD_ID)  # allows Discord's default 10 MiB
    sonance.attachment_size_limit = 1024  # what Discord now accepts
    record = await sonance.dispatch(payload)
    failed = await record.wait_final(timeout=10)
    assert failed.ephemeral and failed.content == APOLOGY and not failed.files

    sonance.attachment_size_limit = DEFAULT_ATTACHMENT_SIZE_LIMIT
    again = await run(sonance, "export", user="alice")
    assert again.content.startswith("Everything Sonance stores about you (") and len(again.files) == 1
    spent = await run(sonance, "export", user="alice")
    assert spent.ephemeral and spent.content == "Easy there! Try again in 300 s."


@pytest.mark.parametrize(("retry_after", "words"), [
    (0.2, "1 s"), (0.5, "1 s"), (1.0, "1 s"), (1.01, "2 s"), (29.4, "30 s"), (299.99, "300 s")])
def test_a_cooldown_never_says_try_again_in_0_s(retry_after: float, words: str) -> None:
    """The wait is rounded up, at least 1 s: "Try again in 0 s" was wrong (and rude) when under half
    a second was left."""
    assert cooldown_message(retry_after) == f"Easy there! Try again in {words}."


# ------------------------------------------------------------------------------------ OAuth


def state_from_lastfm_button(message: SentMessage) -> str:
    [button] = buttons(message)
    cb = parse_qs(urlsplit(button["url"]).query)["cb"][0]
    return parse_qs(urlsplit(cb).query)["state"][0]


async def raw_account_rows(services: Services) -> str:
    async with services.engine.connect() as conn:
        rows = (await conn.execute(select(LinkedAccount.__table__))).all()
    return repr(rows)


async def test_lastfm_web_auth_stores_the_session_key_encrypted_once(
        sonance: FakeDiscord, world_services: Services, lastfm_fake: LastfmFake, web: TestClient,
        bot_settings: Settings) -> None:
    lastfm_fake.add_user("ErinFM", scrobbles=plays(20))
    final = await run(sonance, "link", {"username": "ErinFM"}, subcommand="lastfm", user="erin")
    state = state_from_lastfm_button(final)
    lastfm_fake.authorise_token("web-token-1", "ErinFM")

    resp = await web.get("/callback/lastfm", params={"state": state, "token": "web-token-1"})
    page = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "Link Last.fm <b>ErinFM</b> to Discord user <b>@" in page  # nothing linked before the POST
    [session_key] = lastfm_fake.sessions
    erin = uid(world_services, "erin")
    async with world_services.session() as s:
        claim = await AccountRepository.without_cipher(s).get(erin, "lastfm")
        assert claim is not None and not claim.verified  # still the /link claim: the page stored nothing
    assert session_key not in page  # the form carries it encrypted only
    resp = await confirm(web, page)
    assert resp.status == 200
    assert "Your Last.fm account ErinFM is now linked to Sonance and verified." in await resp.text()
    async with world_services.session() as s:
        accounts = AccountRepository(s, world_services.cipher)
        account = await accounts.get(erin, "lastfm")
        assert account is not None and account.verified and account.external_id == "ErinFM"
        assert accounts.tokens(account) == (session_key, None)
    assert session_key not in await raw_account_rows(world_services)
    if world_services.engine.dialect.name == "sqlite":
        await world_services.engine.dispose()  # flush the WAL into the file before reading its bytes
        path = Path(bot_settings.async_database_url.split("///", 1)[1])
        assert session_key.encode() not in await asyncio.to_thread(path.read_bytes)

    lastfm_fake.authorise_token("web-token-2", "ErinFM")
    replay = await web.get("/callback/lastfm", params={"state": state, "token": "web-token-2"})
    assert replay.status == 400
    assert "That link has expired or was already used. Please run /link again." in await replay.text()
    assert "web-token-2" in lastfm_fake.tokens  # refused before any exchange


async def test_callbacks_refuse_forged_expired_and_cross_provider_states(
        world_services: Services, web: TestClient, lastfm_fake: LastfmFake, spotify_fake: SpotifyFake) -> None:
    lastfm_fake.authorise_token("tok", "someone")
    expired = OAuthStateSigner(TEST_SECRET, InMemoryNonceStore(), clock=lambda: time.time() - 3600)
    forged = OAuthStateSigner("not-the-bots-secret-key-at-all!!", InMemoryNonceStore())
    genuine = OAuthStateSigner(TEST_SECRET, InMemoryNonceStore())
    good = genuine.issue(discord_id("erin"), "lastfm")
    _body, _, mac = good.partition(".")
    tampered = genuine.issue(discord_id("bob"), "lastfm").split(".")[0] + "." + mac
    for state in (expired.issue(discord_id("erin"), "lastfm"), forged.issue(discord_id("erin"), "lastfm"),
                  tampered, genuine.issue(discord_id("erin"), "spotify"), "", "garbage"):
        resp = await web.get("/callback/lastfm", params={"state": state, "token": "tok"})
        assert resp.status == 400, state
        assert "That link has expired or was already used." in await resp.text()
    code = spotify_fake.issue_code("sp-user")
    resp = await web.get("/callback/spotify", params={"state": good, "code": code})  # a Last.fm state
    assert resp.status == 400
    assert "tok" in lastfm_fake.tokens and code in spotify_fake.codes  # nothing was exchanged
    async with world_services.session() as s:
        assert await AccountRepository.without_cipher(s).get(uid(world_services, "erin"), "lastfm") is None


async def test_spotify_oauth_links_with_encrypted_tokens_and_refuses_replay(
        sonance: FakeDiscord, world_services: Services, spotify_fake: SpotifyFake, web: TestClient) -> None:
    final = await run(sonance, "link", subcommand="spotify", user="bob")
    assert final.body["flags"] & EPHEMERAL
    [button] = buttons(final)
    assert button["style"] == 5 and button["label"] == "Connect Spotify"
    url = urlsplit(button["url"])
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{spotify_fake.base_url}/authorize"
    assert query["redirect_uri"] == [SPOTIFY_REDIRECT] and query["client_id"] == [spotify_fake.client_id]
    state = query["state"][0]

    code = spotify_fake.issue_code("bob-spotify", scope="user-read-recently-played user-top-read")
    resp = await callback_and_confirm(web, "/callback/spotify", {"code": code, "state": state})
    assert resp.status == 200, await resp.text()
    assert "Your Spotify account bob-spotify is now linked" in await resp.text()
    [access] = list(spotify_fake.access)
    [refresh] = list(spotify_fake.refresh_tokens)
    bob = uid(world_services, "bob")
    async with world_services.session() as s:
        accounts = AccountRepository(s, world_services.cipher)
        account = await accounts.get(bob, "spotify")
        assert account is not None and account.external_id == "bob-spotify" and account.verified
        assert accounts.tokens(account) == (access, refresh)
        assert account.scope == "user-read-recently-played user-top-read"
    raw = await raw_account_rows(world_services)
    assert access not in raw and refresh not in raw

    replay = await web.get("/callback/spotify", params={"code": spotify_fake.issue_code("bob-spotify"),
                                                         "state": state})
    assert replay.status == 400 and "already used" in await replay.text()

    declined = await web.get("/callback/spotify", params={"error": "access_denied", "state": state})
    assert declined.status == 400 and "You declined the request" in await declined.text()


async def test_spotify_dev_mode_403_is_a_clear_page(
        sonance: FakeDiscord, world_services: Services, spotify_fake: SpotifyFake, web: TestClient) -> None:
    final = await run(sonance, "link", subcommand="spotify", user="carol")
    state = parse_qs(urlsplit(buttons(final)[0]["url"]).query)["state"][0]
    spotify_fake.add_user("not-approved", allowlisted=False)
    code = spotify_fake.issue_code("not-approved")
    resp = await web.get("/callback/spotify", params={"code": code, "state": state})
    assert resp.status == 400
    assert "limited to a few approved users" in await resp.text()
    async with world_services.session() as s:
        assert await AccountRepository.without_cipher(s).get(uid(world_services, "carol"), "spotify") is None


async def test_unknown_web_routes_are_404(web: TestClient) -> None:
    for path in ("/callback", "/callback/other", "/oauth/spotify", "/admin"):
        resp = await web.get(path)
        assert resp.status == 404, path
    assert (await web.post("/callback/lastfm")).status == 405
    assert (await web.get("/healthz")).status == 200


# ------------------------------------------------------------------------------------ forwarded links


async def test_a_forwarded_link_names_the_sender_and_links_only_when_confirmed(
        sonance: FakeDiscord, world_services: Services, spotify_fake: SpotifyFake, web: TestClient) -> None:
    """alice forwards her /link spotify button; whoever opens it sees that it links to @alice."""
    final = await run(sonance, "link", subcommand="spotify", user="alice")
    state = parse_qs(urlsplit(buttons(final)[0]["url"]).query)["state"][0]
    alice = uid(world_services, "alice")
    async with world_services.session() as s:  # markup in a display name must reach the page escaped
        user = await UserRepository(s).by_discord_id(discord_id("alice"))
        assert user is not None
        user.display_name = "alice<img src=x>"

    landed = await web.get("/callback/spotify", params={"code": spotify_fake.issue_code("victimsp"),
                                                        "state": state})
    page = await landed.text()
    assert landed.status == 200, page
    assert "Link Spotify <b>victimsp</b> to Discord user <b>@alice&lt;img src=x&gt;</b>?" in page
    assert "<img" not in page and str(discord_id("alice")) in page
    assert landed.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in \
        landed.headers["Content-Security-Policy"]  # the confirm button cannot be clickjacked

    async def linked() -> str | None:
        async with world_services.session() as s:
            account = await AccountRepository.without_cipher(s).get(alice, "spotify")
            return account.external_id if account is not None else None

    assert await linked() is None, "opening the link must not link anything"
    action, token = confirmation_form(page)
    for forged in ("", "garbage", token[:-4] + "AAAA", token[::-1]):
        resp = await web.post(action, data={"token": forged})
        assert resp.status == 400 and "expired or was already used" in await resp.text()
    assert (await web.get(action)).status == 405
    assert await linked() is None

    done = await confirm(web, page)
    assert done.status == 200 and "Your Spotify account victimsp is now linked" in await done.text()
    assert await linked() == "victimsp"
    again = await confirm(web, page)
    assert again.status == 400 and "already used" in await again.text()

    shown = await run(sonance, "account", user="alice")  # the member sees which Spotify account it is
    fields = {f["name"]: f["value"] for f in shown.embeds[0]["fields"]}
    assert fields["Spotify"].startswith("**victimsp**")


async def test_a_failed_token_exchange_leaves_the_link_usable_until_it_succeeds(
        sonance: FakeDiscord, world_services: Services, spotify_fake: SpotifyFake, lastfm_fake: LastfmFake,
        web: TestClient) -> None:
    final = await run(sonance, "link", subcommand="spotify", user="bob")
    state = parse_qs(urlsplit(buttons(final)[0]["url"]).query)["state"][0]
    spotify_fake.fail_next("http", status=503, path="/api/token", count=4)  # every retry of the exchange
    down = await web.get("/callback/spotify", params={"code": spotify_fake.issue_code("bob-spotify"),
                                                      "state": state})
    assert down.status == 503 and "works again" in await down.text()
    retry = await callback_and_confirm(web, "/callback/spotify", {"code": spotify_fake.issue_code("bob-spotify"),
                                                                  "state": state})
    assert retry.status == 200 and "bob-spotify is now linked" in await retry.text()
    replay = await web.get("/callback/spotify", params={"code": spotify_fake.issue_code("bob-spotify"),
                                                        "state": state})
    assert replay.status == 400 and "already used" in await replay.text()

    lastfm_fake.add_user("ErinFM", scrobbles=plays(5))
    linked = await run(sonance, "link", {"username": "ErinFM"}, subcommand="lastfm", user="erin")
    state = state_from_lastfm_button(linked)
    lastfm_fake.authorise_token("web-token-9", "ErinFM")
    lastfm_fake.fail_next("error", code=11, method="auth.getSession", count=4)  # Last.fm offline
    down = await web.get("/callback/lastfm", params={"state": state, "token": "web-token-9"})
    assert down.status == 503
    landed = await web.get("/callback/lastfm", params={"state": state, "token": "web-token-9"})
    page = await landed.text()
    assert landed.status == 200 and "Link Last.fm <b>ErinFM</b> to Discord user <b>@" in page
    assert (await confirm(web, page)).status == 200
    await world_services.accounts.wait_imports()
    async with world_services.session() as s:
        account = await AccountRepository.without_cipher(s).get(uid(world_services, "erin"), "lastfm")
        assert account is not None and account.verified


async def test_link_spotify_says_plainly_when_development_mode_is_full(
        sonance: FakeDiscord, world_services: Services) -> None:
    """Spotify's development mode admits 5 users (SPOTIFY_USER_LIMIT): the sixth member is told so
    before any OAuth round trip, and pointed at Last.fm; a member already linked may relink."""
    async with world_services.session() as s:
        users = UserRepository(s)
        for n in range(5):
            user = await users.get_or_create_discord(1_400_000_000_000_000_000 + n, f"listener{n}")
            await AccountRepository(s, world_services.cipher).link(user.id, "spotify", f"spotify-user-{n}")
    full = await run(sonance, "link", subcommand="spotify", user="carol")
    assert full.ephemeral and not full.components
    assert full.content == ("Spotify linking is full: this bot's Spotify app is in Spotify's development mode, "
                            "which allows only 5 users, and all 5 places are taken. Spotify is optional: "
                            "/link lastfm gives Sonance everything it needs.")
    async with world_services.session() as s:
        await AccountRepository(s, world_services.cipher).link(uid(world_services, "dave"), "spotify", "dave-sp")
    relink = await run(sonance, "link", subcommand="spotify", user="dave")
    assert relink.ephemeral and buttons(relink), "a linked member can link again"
