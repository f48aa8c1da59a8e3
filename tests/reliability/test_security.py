"""Security: secrets at rest, OAuth state, secrets in logs, and the web server's surface.

What this proves (beyond tests/bot/test_accounts.py, which covers the basic callback refusals):
- After linking through the real callback routes, no Last.fm session key or Spotify access/refresh
  token is stored in plaintext anywhere: every table is read raw (on SQLite the database *file* bytes,
  on PostgreSQL every row cast to text, where bytea shows as hex, so hex is searched too); the stored
  ciphertext decrypts to the token, and a rotated key list ("new,old") still reads it.
- OAuth state: every single-character mutation of a genuine state is refused; an expired state is
  refused; two simultaneous callbacks with one state link at most once.
- Across a full flow (link with tokens through both callbacks, a token refresh during Spotify sync,
  a Last.fm sync, /recommend + "Why?", refused and failing callbacks) neither the raw log records
  (caplog at DEBUG, before any scrubbing) nor the JSON lines written by `setup_logging` contain any
  secret: the Discord token, API keys/secrets, SONANCE_SECRET_KEY, session keys, access/refresh
  tokens, web-auth tokens, authorization codes or OAuth states.
- The web server answers only its routes (404), with the right methods (405), and refuses bodies
  over MAX_BODY_BYTES (413) and oversized request lines/headers (400).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from sqlalchemy import select, text

from bot.web import MAX_BODY_BYTES, build_web_app, start_web
from core.config import Settings
from core.crypto import TokenCipher
from core.db.models import Base, LinkedAccount
from core.db.repositories import AccountRepository
from core.errors import ConfigError
from core.logs import setup_logging
from core.services import Services
from core.sources.oauth_state import InMemoryNonceStore, OAuthStateError, OAuthStateSigner
from core.sync.engine import LastfmSync
from core.sync.spotify_sync import SpotifySync
from tests.conftest import TEST_SECRET, make_settings
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.lastfm_server import LastfmFake
from tests.fakes.oauth_browser import confirm
from tests.fakes.spotify_server import SpotifyFake
from tests.reliability import test_privacy as world
from tests.reliability.test_privacy import (
    PUBLIC_BASE,
    SPOTIFY_REDIRECT,
    WHY,
    buttons,
    click,
    link_accounts,
    run,
    whole_database_text,
    wid,
)

# the reliability world's fixtures (the Last.fm/Spotify fakes, settings and web server are redefined below)
fake, sonance, world_services = world.fake, world.sonance, world.world_services

LASTFM_KEY = "lfm-api-key-7d1e0c9b2a"
LASTFM_SECRET = "lfm-api-secret-4f8a6e2d1c"
SPOTIFY_SECRET = "spotify-client-secret-9b3c5d7e"
SPOTIFY_ID = "spotify-client-id-1a2b3c"
SECRET_KEY = "sonance-secret-key-for-the-security-suite"


@pytest.fixture
async def lastfm_fake() -> AsyncIterator[LastfmFake]:
    async with LastfmFake(api_key=LASTFM_KEY, api_secret=LASTFM_SECRET) as server:
        yield server


@pytest.fixture
async def spotify_fake() -> AsyncIterator[SpotifyFake]:
    async with SpotifyFake(client_id=SPOTIFY_ID, client_secret=SPOTIFY_SECRET, redirect_uri=SPOTIFY_REDIRECT) as server:
        yield server


@pytest.fixture
def bot_settings(database_url: str, tmp_path: Path, lastfm_fake: LastfmFake, spotify_fake: SpotifyFake,
                 fake: FakeDiscord) -> Settings:
    return make_settings(database_url, tmp_path, SONANCE_PUBLIC_BASE_URL=PUBLIC_BASE, DISCORD_TOKEN=fake.token,
                         SONANCE_SECRET_KEY=SECRET_KEY, SONANCE_LOG_LEVEL="DEBUG", SONANCE_LOG_JSON="true",
                         **lastfm_fake.settings_overrides(), **spotify_fake.settings_overrides())


@pytest.fixture
async def web(world_services: Services) -> AsyncIterator[aiohttp.ClientSession]:
    """The web server exactly as `sonance run` starts it (`start_web`: no access log, since URLs
    carry one-time codes), on a free port, with a client pointed at it."""
    runner = await start_web(build_web_app(world_services), "127.0.0.1", 0)
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        await runner.cleanup()


def state_of(url: str, *, nested: bool = False) -> str:
    query = parse_qs(urlsplit(url).query)
    if nested:  # Last.fm: the state sits in the callback URL passed as `cb`
        query = parse_qs(urlsplit(query["cb"][0]).query)
    return query["state"][0]


# ------------------------------------------------------------------------------------ at rest


async def raw_database(services: Services, settings: Settings) -> bytes:
    """What an attacker with a copy of the database sees."""
    if services.engine.dialect.name == "sqlite":
        await services.engine.dispose()  # checkpoint the WAL into the file
        path = Path(settings.async_database_url.split("///", 1)[1])
        files = sorted(path.parent.glob(path.name + "*"))  # the db plus any -wal / -journal left
        return b"".join([await asyncio.to_thread(f.read_bytes) for f in files])
    chunks = []
    async with services.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = await conn.execute(text(f'SELECT t::text FROM "{table.name}" t'))
            chunks.extend(r[0].encode() for r in rows)
    return b"\n".join(chunks)


async def test_tokens_and_session_keys_are_encrypted_at_rest(
        sonance: FakeDiscord, world_services: Services, web: aiohttp.ClientSession, lastfm_fake: LastfmFake,
        spotify_fake: SpotifyFake, bot_settings: Settings) -> None:
    services = world_services
    secrets = await link_accounts(sonance, services, web, lastfm_fake, spotify_fake, "alice")
    alice = wid(services, "alice")

    async with services.engine.connect() as conn:
        stored = {r.provider: r for r in (await conn.execute(
            select(LinkedAccount.__table__).where(LinkedAccount.user_id == alice))).all()}
    cipher = TokenCipher(SECRET_KEY)
    assert cipher.decrypt(stored["lastfm"].access_token_enc) == secrets["session_key"]
    assert cipher.decrypt(stored["spotify"].access_token_enc) == secrets["access_token"]
    assert cipher.decrypt(stored["spotify"].refresh_token_enc) == secrets["refresh_token"]

    text_dump = await whole_database_text(services)
    raw = await raw_database(services, bot_settings)
    assert raw, "nothing read"
    for name, secret in secrets.items():
        assert secret not in text_dump, name
        for form in (secret.encode(), secret.encode().hex().encode(), base64.b64encode(secret.encode())):
            assert form not in raw, f"{name} found in the raw database"

    # rotation: new key first, old key after it -> old ciphertext still reads; the new key alone cannot
    rotated = TokenCipher("a-brand-new-secret-key-2027," + SECRET_KEY)
    assert rotated.decrypt(stored["spotify"].refresh_token_enc) == secrets["refresh_token"]
    with pytest.raises(ConfigError, match="comma-separated"):
        TokenCipher("a-brand-new-secret-key-2027").decrypt(stored["spotify"].refresh_token_enc)


# ------------------------------------------------------------------------------------ OAuth state


async def test_every_mutation_of_a_state_is_refused_and_expiry_holds() -> None:
    now = [1_800_000_000.0]
    signer = OAuthStateSigner(SECRET_KEY, InMemoryNonceStore(), ttl_s=600, clock=lambda: now[0])
    genuine = signer.issue(4242, "spotify")
    alphabet = "ABCabc019-_."
    for i, ch in enumerate(genuine):
        replacement = next(c for c in alphabet if c != ch)
        for mutated in (genuine[:i] + replacement + genuine[i + 1:], genuine[:i] + genuine[i + 1:],
                        genuine[:i] + replacement + genuine[i:]):
            with pytest.raises(OAuthStateError):
                await signer.verify(mutated, "spotify")
    other = signer.issue(1, "spotify")  # someone else's body with this signature, and vice versa
    with pytest.raises(OAuthStateError):
        await signer.verify(other.split(".")[0] + "." + genuine.split(".")[1], "spotify")
    for junk in ("", ".", "..", "a.b", genuine + "." + genuine, "é." * 40, "\x00" * 64, "A" * 100_000):
        with pytest.raises(OAuthStateError):
            await signer.verify(junk, "spotify")

    now[0] += 601  # expired: refused, even though never used and correctly signed
    with pytest.raises(OAuthStateError, match="expired"):
        await signer.verify(genuine, "spotify")
    fresh = signer.issue(4242, "spotify")
    assert await signer.verify(fresh, "spotify") == 4242
    with pytest.raises(OAuthStateError, match="already used"):
        await signer.verify(fresh, "spotify")


async def test_simultaneous_callbacks_with_one_state_link_at_most_once(
        sonance: FakeDiscord, world_services: Services, web: aiohttp.ClientSession, spotify_fake: SpotifyFake) -> None:
    prompt = await run(sonance, "link", "bob", subcommand="spotify")
    state = state_of(buttons(prompt)[0]["url"])
    codes = [spotify_fake.issue_code(f"bob-spotify-{i}") for i in range(4)]
    responses = await asyncio.gather(*(web.get("/callback/spotify", params={"code": c, "state": state})
                                       for c in codes))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 400, 400, 400], statuses
    [page] = [await r.text() for r in responses if r.status == 200]
    # the confirmation page's single-use token: twenty simultaneous presses of its button link once
    confirmations = await asyncio.gather(*(confirm(web, page) for _ in range(20)))
    assert sorted(r.status for r in confirmations) == [200] + [400] * 19
    async with world_services.session() as s:
        accounts = await AccountRepository.without_cipher(s).for_user(wid(world_services, "bob"))
    assert [a.provider for a in accounts].count("spotify") == 1
    assert sum(1 for c in codes if c not in spotify_fake.codes) == 1  # only one code was ever exchanged


# ------------------------------------------------------------------------------------ logs


@pytest.fixture
def json_log(bot_settings: Settings, caplog: pytest.LogCaptureFixture,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """`setup_logging` as `sonance run` calls it (JSON lines, scrubber), writing to a buffer; caplog
    stays attached to the root logger and sees the raw records (before any scrubbing)."""
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("discord").level)
    monkeypatch.setattr(sys, "stderr", buffer)
    caplog.set_level(logging.DEBUG)
    setup_logging(bot_settings)
    root.addHandler(caplog.handler)
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]
    logging.getLogger("discord").setLevel(saved[2])


async def test_no_secret_reaches_the_logs_across_a_full_flow(
        json_log: io.StringIO, caplog: pytest.LogCaptureFixture, sonance: FakeDiscord,
        world_services: Services, web: aiohttp.ClientSession, lastfm_fake: LastfmFake, spotify_fake: SpotifyFake,
        bot_settings: Settings) -> None:
    services = world_services
    states: list[str] = []

    # link with tokens through both callbacks (web auth token, session key, code, access/refresh tokens)
    secrets = await link_accounts(sonance, services, web, lastfm_fake, spotify_fake, "alice")
    # callbacks that are refused or fail, with credentials in their query
    prompt = await run(sonance, "link", "carol", subcommand="spotify")
    states.append(state_of(buttons(prompt)[0]["url"]))
    failed = await web.get("/callback/spotify", params={"code": "bogus-code-5e1f0a9c7d", "state": states[-1]})
    assert failed.status in (400, 503)
    replay = await web.get("/callback/spotify", params={"code": spotify_fake.issue_code("x"), "state": states[-1]})
    assert replay.status == 400
    linked = await run(sonance, "link", "dave", {"username": "dave_fm"}, subcommand="lastfm")
    assert "couldn't find" in (linked.content or "")  # not on the fake: refused before any state is made
    lastfm_fake.add_user("dave_fm", scrobbles=[(1_700_000_000, "Slayer", "Reign in Blood", "Angel of Death")])
    lastfm_fake.fail_next("error", code=11, method="auth.getSession")  # Last.fm down at the exchange
    signer = services.accounts.signer()
    states.append(signer.issue(MEMBERS_DAVE, "lastfm"))
    down = await web.get("/callback/lastfm", params={"state": states[-1], "token": "unapproved-token-8c2d"})
    assert down.status in (400, 503)

    # sync: Last.fm (verified account) and Spotify with an expired access token (refresh path)
    alice = wid(services, "alice")
    async with services.session() as s:
        accounts = {a.provider: a.id for a in await AccountRepository.without_cipher(s).for_user(alice)}
    assert services.lastfm is not None
    await LastfmSync(services, services.lastfm).sync_account(accounts["lastfm"])
    spotify_fake.expire_access_tokens("alice-spotify")
    await SpotifySync(services).sync_account(accounts["spotify"])

    # recommend + "Why?"
    recs = await run(sonance, "recommend", "alice", {"count": 3})
    why = next(c for c in recs.custom_ids() if WHY.match(c))
    await click(sonance, why, "alice", recs)
    await services.accounts.wait_imports()

    settings_secrets = [LASTFM_KEY, LASTFM_SECRET, SPOTIFY_SECRET, SECRET_KEY, TEST_SECRET, sonance.token]
    minted = [*spotify_fake.access, *spotify_fake.refresh_tokens, *lastfm_fake.sessions]
    basic = base64.b64encode(f"{SPOTIFY_ID}:{SPOTIFY_SECRET}".encode()).decode()
    needles = {*settings_secrets, *minted, *secrets.values(), *states, basic, "bogus-code-5e1f0a9c7d",
               "unapproved-token-8c2d", "tok-alice"}
    assert len(minted) >= 3  # the refresh really happened and minted new tokens

    raw_records = caplog.text + "\n".join(repr(r.__dict__) for r in caplog.records)
    written = json_log.getvalue()
    assert written.strip(), "setup_logging wrote nothing"
    lines = [json.loads(line) for line in written.splitlines() if line.strip()]
    assert logging.getLogger().level == logging.DEBUG
    assert any("account_id" in line for line in lines) and any("user_id" in line for line in lines)
    for needle in needles:
        assert needle not in raw_records, f"a secret reached a log record: {needle[:6]}…"
        assert needle not in written, f"a secret reached the JSON logs: {needle[:6]}…"


MEMBERS_DAVE = 1_300_000_000_000_000_104


# ------------------------------------------------------------------------------------ web surface


async def test_web_server_answers_only_its_routes_with_size_limits(web: aiohttp.ClientSession) -> None:
    for path in ("/", "/admin", "/.env", "/metrics", "/healthz/", "/callback", "/callback/lastfm/x",
                 "/callback/spotify/../../etc/passwd", "/static/../core/config.py", "/%2e%2e/%2e%2e/etc/passwd"):
        resp = await web.get(path)
        assert resp.status == 404, path
        assert "Traceback" not in await resp.text()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/healthz", "/callback/lastfm", "/callback/spotify"):
            resp = await web.request(method, path, data=b"{}")
            assert resp.status == 405, (method, path)
    assert (await web.get("/healthz")).status == 200

    big = b"x" * (MAX_BODY_BYTES + 1)
    for path in ("/healthz", "/callback/spotify", "/callback/lastfm"):
        resp = await web.get(path, data=big)
        assert resp.status == 413, path

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"y" * (MAX_BODY_BYTES // 4)

    assert (await web.get("/healthz", data=chunks())).status == 413  # chunked, no Content-Length
    assert (await web.get("/healthz", data=b"small")).status == 200  # a small body is harmless
    assert (await web.get("/callback/spotify?state=" + "a" * 20_000)).status in (400, 414)
    assert (await web.get("/healthz", headers={"X-Pad": "b" * 20_000})).status in (400, 431)


async def test_callback_pages_are_not_cacheable_and_do_not_echo_input(web: aiohttp.ClientSession) -> None:
    evil = "<script>alert(1)</script>"
    started = time.monotonic()
    resp = await web.get("/callback/spotify", params={"state": evil, "code": evil})
    body = await resp.text()
    assert resp.status == 400 and evil not in body and "<script>" not in body
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Referrer-Policy"] == "no-referrer"
    assert time.monotonic() - started < 5
    declined = await web.get("/callback/lastfm", params={"error": evil})
    assert declined.status == 400 and "<script>" not in await declined.text()
