"""A local fake Discord (REST + gateway) that the real discord.py client runs against.

Why: dpytest has no interactions support and mocks skip the parts that break in production
(payload parsing, acknowledgement rules, multipart uploads, 50007 on closed DMs). This fake speaks
Discord's wire format on 127.0.0.1 so ``Client.start()`` runs unmodified: login, command sync,
gateway IDENTIFY/READY/GUILD_CREATE, INTERACTION_CREATE, callbacks, webhooks and DMs. It also
enforces the Discord rules a fake *can* check (one acknowledgement, the 3 s deadline, message and
command limits) so tests fail the way production would.

Typical use::

    async with FakeDiscord() as fake, running_bot(make_bot(), fake) as bot:
        record = await fake.dispatch(fake.slash("recommend", options={"kind": "artists"}))
        final = await record.wait_final()
        assert "artists" in final.content

Everything runs on the test's event loop; nothing here is thread-safe or meant to be.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import discord
from aiohttp import WSMsgType, web

from bot.discord_endpoints import apply_discord_endpoints
from tests.fakes.discord_limits import (
    validate_command_payloads,
    validate_message_payload,
    validate_modal_payload,
)
from tests.fakes.discord_payloads import (
    CHANNEL_DM,
    DEFAULT_APP_PERMISSIONS,
    DEFAULT_ATTACHMENT_SIZE_LIMIT,
    INTERACTION_APPLICATION_COMMAND,
    INTERACTION_AUTOCOMPLETE,
    INTERACTION_MESSAGE_COMPONENT,
    INTERACTION_MODAL_SUBMIT,
    OPT_BOOLEAN,
    OPT_CHANNEL,
    OPT_INTEGER,
    OPT_MENTIONABLE,
    OPT_NUMBER,
    OPT_ROLE,
    OPT_STRING,
    OPT_SUB_COMMAND,
    OPT_SUB_COMMAND_GROUP,
    OPT_USER,
    PERM_ADMINISTRATOR,
    FakeChannel,
    FakeGuild,
    FakeRole,
    FakeUser,
    SnowflakeFactory,
    attachment_payload,
    bot_user_payload,
    dm_channel_payload,
    error_body,
    guild_create_payload,
    guild_payload,
    iso_now,
    member_payload,
)

__all__ = [
    "CallbackRecord",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeRole",
    "FakeUser",
    "FileRecord",
    "InteractionRecord",
    "RequestRecord",
    "SentMessage",
    "custom_ids",
    "running_bot",
    "use_fake_discord",
]

_log = logging.getLogger(__name__)

#: The request being handled; set by the middleware so route handlers get the decoded body.
_CURRENT_RECORD: contextvars.ContextVar[RequestRecord] = contextvars.ContextVar("fake_discord_request")

API_PREFIX = "/api/v10"
ACK_DEADLINE_S = 3.0
TOKEN_LIFETIME_S = 15 * 60

#: Texts that mark an error message from the bot's one error policy (bot.interactions.handle_error):
#: the apology, the cooldown and the check-failure answers.
ERROR_MARKS = ("Sorry, something went wrong", "Easy there! Try again", "You can't use that here.")

# Gateway opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_VOICE_STATE_UPDATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

# Interaction callback types.
CB_PONG = 1
CB_CHANNEL_MESSAGE = 4
CB_DEFERRED_CHANNEL_MESSAGE = 5
CB_DEFERRED_UPDATE_MESSAGE = 6
CB_UPDATE_MESSAGE = 7
CB_AUTOCOMPLETE_RESULT = 8
CB_MODAL = 9

# Privileged intents: GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT.
INTENT_GUILD_MEMBERS = 1 << 1
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)

MSG_FLAG_EPHEMERAL = 1 << 6
MSG_FLAG_LOADING = 1 << 7


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------


@dataclass
class FileRecord:
    """One uploaded file from a multipart request (``files[n]`` part)."""

    field: str
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class RequestRecord:
    """One HTTP request the bot made, as received (body decoded from JSON or ``payload_json``)."""

    method: str
    path: str  # path below /api/v10, e.g. "/users/@me"
    query: dict[str, str]
    json: Any
    files: list[FileRecord]
    at: float
    status: int = 0
    #: Which bot process made it, when each process uses its own ``client_api_base(tag)``.
    client: str | None = None


def custom_ids(body: Mapping[str, Any] | None) -> list[str]:
    """All ``custom_id`` values in a message/modal body's components, depth first, in order."""
    found: list[str] = []

    def walk(items: Any) -> None:
        for item in items or []:
            if not isinstance(item, Mapping):
                continue
            if isinstance(item.get("custom_id"), str):
                found.append(item["custom_id"])
            walk(item.get("components"))
            for key in ("component", "accessory"):
                if isinstance(item.get(key), Mapping):
                    walk([item[key]])

    walk((body or {}).get("components"))
    return found


@dataclass
class SentMessage:
    """A message the bot produced: the exact JSON it sent plus the message object the fake stored.

    ``kind`` is one of ``callback`` (type 4/7 response), ``followup``, ``edit_original``,
    ``edit_followup``, ``dm``, ``channel``. ``message`` is the full message as Discord would return
    it (with ``id``), which you can hand to :meth:`FakeDiscord.button` to click one of its buttons.
    """

    kind: str
    body: dict[str, Any]
    files: list[FileRecord]
    message: dict[str, Any] | None
    at: float
    channel_id: int | None = None
    recipient_id: int | None = None

    @property
    def content(self) -> str | None:
        return self.body.get("content")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.body.get("embeds") or [])

    @property
    def components(self) -> list[dict[str, Any]]:
        return list(self.body.get("components") or [])

    @property
    def ephemeral(self) -> bool:
        return bool((self.body.get("flags") or 0) & MSG_FLAG_EPHEMERAL)

    def custom_ids(self) -> list[str]:
        return custom_ids(self.body)


@dataclass
class CallbackRecord:
    """One ``POST /interactions/{id}/{token}/callback`` attempt, accepted or not."""

    type: int
    data: dict[str, Any] | None
    body: dict[str, Any]
    files: list[FileRecord]
    at: float
    latency: float  # seconds since the INTERACTION_CREATE was written to the gateway
    accepted: bool
    status: int
    error_code: int | None = None
    client: str | None = None  # the bot process that sent it (see ``FakeDiscord.client_api_base``)


class InteractionRecord:
    """Everything the bot did in response to one dispatched interaction.

    Why a record instead of return values: discord.py answers asynchronously over REST, possibly
    several times (defer, follow-ups, edits), so tests wait on conditions over this record.
    """

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.dispatched_at: float | None = None
        #: (shard id, client tag) of every gateway session the INTERACTION_CREATE was written to.
        self.delivered_to: list[tuple[int, str | None]] = []
        self.callbacks: list[CallbackRecord] = []
        self.followups: list[SentMessage] = []
        self.original_edits: list[SentMessage] = []
        self.followup_edits: list[SentMessage] = []
        self.events: list[CallbackRecord | SentMessage] = []
        self.original_message: dict[str, Any] | None = None
        self.original_deleted = False
        self.deleted_followups: list[int] = []
        #: Webhook requests (get/edit/delete) for a message that was deleted or never sent: 10008.
        self.unknown_message_hits: list[str] = []
        self._cond = asyncio.Condition()

    # --- derived views ------------------------------------------------------------------------
    @property
    def ack(self) -> CallbackRecord | None:
        """The accepted acknowledgement, if any."""
        return next((c for c in self.callbacks if c.accepted), None)

    @property
    def ack_latency(self) -> float | None:
        """Seconds from dispatch to the accepted acknowledgement (Discord allows 3 s)."""
        ack = self.ack
        return ack.latency if ack else None

    @property
    def rejected_callbacks(self) -> list[CallbackRecord]:
        return [c for c in self.callbacks if not c.accepted]

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        """Autocomplete choices from a type-8 acknowledgement."""
        ack = self.ack
        if ack is None or ack.type != CB_AUTOCOMPLETE_RESULT:
            return None
        return list((ack.data or {}).get("choices") or [])

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal (type 9 data) the bot opened, if any."""
        ack = self.ack
        return ack.data if ack is not None and ack.type == CB_MODAL else None

    def visible_messages(self) -> list[SentMessage]:
        """Every message the user was shown, in order: type 4/7 responses, follow-ups, and @original
        edits that carry something to read."""
        shown = []
        for event in self.events:
            if isinstance(event, SentMessage) and event.kind in ("callback", "followup", "edit_original"):
                body = event.body
                if (event.kind == "callback"
                        or any(body.get(k) for k in ("content", "embeds", "components", "attachments"))
                        or event.files):
                    shown.append(event)
        return shown

    def answer_problems(self) -> list[str]:
        """Why this interaction did not get exactly one clean answer (empty when it did).

        Discord refuses a second initial response (40060) and any touch of a message that was deleted
        or never sent (10008); a user must also never see the same message twice, nor an error after
        the answer (a refusal sent by a second error handler, or an apology for a failure after the
        answer was delivered).
        """
        problems = [f"initial response rejected with {c.status}/{c.error_code}" for c in self.rejected_callbacks]
        problems += [f"touched a deleted or never-sent message ({hit}): 10008" for hit in self.unknown_message_hits]
        shown = self.visible_messages()
        seen: set[str] = set()
        for message in shown:
            key = json.dumps({k: message.body.get(k) for k in ("content", "embeds")}, sort_keys=True, default=str)
            if key in seen:
                problems.append(f"the same message was sent twice: {message.content!r}")
            seen.add(key)
        for message in shown[1:]:
            if any(mark in (message.content or "") for mark in ERROR_MARKS):
                problems.append(f"an error message after the answer: {message.content!r}")
        return problems

    def final(self) -> SentMessage | None:
        """The first visible answer: a type 4/7 response, a follow-up, or an @original edit with content."""
        for event in self.events:
            if isinstance(event, SentMessage) and event.kind in ("callback", "followup", "edit_original"):
                body = event.body
                if (
                    event.kind == "callback"
                    or any(body.get(k) for k in ("content", "embeds", "components", "attachments"))
                    or event.files
                ):
                    return event
        return None

    # --- waiting ------------------------------------------------------------------------------
    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def wait_for(self, predicate: Callable[[InteractionRecord], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109 - per-call deadlines are the API
        """Wait until ``predicate(self)`` is truthy and return its value."""

        async def waiter() -> Any:
            async with self._cond:
                while not (value := predicate(self)):
                    await self._cond.wait()
                return value

        try:
            return await asyncio.wait_for(waiter(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"interaction {self.id} (type {self.type}): condition not met within {timeout}s; events={self.events!r}"
            ) from None

    async def wait_ack(self, timeout: float = ACK_DEADLINE_S + 0.5) -> CallbackRecord:  # noqa: ASYNC109 - per-call deadlines are the API
        """Wait for the accepted acknowledgement (any callback type)."""
        return await self.wait_for(lambda r: r.ack, timeout)

    async def wait_final(self, timeout: float = 5.0) -> SentMessage:  # noqa: ASYNC109 - per-call deadlines are the API
        """Wait for the first visible answer (see :meth:`final`)."""
        return await self.wait_for(lambda r: r.final(), timeout)

    async def wait_followups(self, count: int, timeout: float = 5.0) -> list[SentMessage]:  # noqa: ASYNC109 - per-call deadlines are the API
        return await self.wait_for(lambda r: r.followups if len(r.followups) >= count else None, timeout)


@dataclass
class _Session:
    """Gateway session state, kept across a RESUME."""

    session_id: str
    shard_id: int
    shard_count: int
    intents: int
    seq: int = 0
    ws: web.WebSocketResponse | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    client: str | None = None  # the tag of the gateway URL it connected to (``client_gateway_url``)


@dataclass
class _Route:
    method: str
    pattern: str
    handler: Callable[..., Awaitable[web.StreamResponse]]
    auth: bool = True


class _HTTPError(Exception):
    """Raised by handlers to answer with Discord's JSON error envelope."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


def _split_client(path: str) -> tuple[str | None, str]:
    """``/c/<tag>/rest`` -> (tag, ``/rest``); any other path -> (None, path)."""
    if path.startswith("/c/"):
        tag, _, rest = path[3:].partition("/")
        return tag, "/" + rest
    return None, path


def _rate_limited(retry_after: float, is_global: bool) -> web.Response:
    """A 429 as Discord sends it: JSON body with ``retry_after`` and ``global``, ``Retry-After`` and the
    scope headers, and ``Via`` (discord.py takes a 429 without it for a Cloudflare ban)."""
    headers = {"Content-Type": "application/json", "Via": "1.1 google", "Retry-After": str(max(1, round(retry_after))),
               "X-RateLimit-Scope": "global" if is_global else "user"}
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
    return web.Response(status=429, body=json.dumps(body).encode(), headers=headers)


def _json(data: Any, status: int = 200) -> web.Response:
    """JSON response with Content-Type exactly ``application/json``.

    discord.py's ``json_or_text`` compares the header with ``==``; aiohttp's ``json_response`` adds
    ``; charset=utf-8`` and discord.py would then hand the handlers a *string*.
    """
    return web.Response(
        status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json"}
    )


def _form_errors(problems: list[str]) -> dict[str, Any]:
    """Discord's nested ``errors`` tree; discord.py flattens it into ``HTTPException.text``
    as ``In body: <messages>``. (Real Discord keys by field path; one bucket keeps it readable.)"""
    return {"body": {"_errors": [{"code": "BASE_TYPE_INVALID", "message": p} for p in problems]}}


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------


class FakeDiscord:
    """Fake Discord API v10 + gateway on 127.0.0.1 with a random port.

    Parameters are the world the bot sees. ``guilds``/``users`` default to one guild ("Sonance
    Dev") with a ``#general`` text channel and two users, alice (DMs open) and bob (DMs closed).
    ``shards`` is what ``GET /gateway/bot`` recommends. ``ack_deadline`` is Discord's 3 s; callbacks
    after it get 404 10062 like the real thing. ``validate`` runs the limit checks of
    ``tests.fakes.discord_limits`` on syncs and message bodies and answers 400 50035 on violations.
    """

    def __init__(
        self,
        *,
        guilds: list[FakeGuild] | None = None,
        users: list[FakeUser] | None = None,
        bot_user: FakeUser | None = None,
        application_id: int | None = None,
        token: str = "fake-bot-token",
        shards: int = 1,
        ack_deadline: float = ACK_DEADLINE_S,
        heartbeat_interval_ms: int = 41_250,
        application_flags: int = (1 << 15)
        | (1 << 19),  # GATEWAY_GUILD_MEMBERS_LIMITED | MESSAGE_CONTENT_LIMITED
        allowed_intents: int | None = None,
        attachment_size_limit: int = DEFAULT_ATTACHMENT_SIZE_LIMIT,
        validate: bool = True,
        max_guilds_per_shard: int = 2500,
    ) -> None:
        self.snowflake = SnowflakeFactory()
        self.bot_user = bot_user or FakeUser(
            id=application_id or 1_300_000_000_000_000_001, username="Sonance", bot=True
        )
        self.application_id = application_id or self.bot_user.id
        self.owner = FakeUser(id=1_300_000_000_000_000_099, username="sonance-owner")
        self.users: dict[int, FakeUser] = {}
        for user in users or [
            FakeUser(id=1_300_000_000_000_000_101, username="alice", global_name="Alice"),
            FakeUser(id=1_300_000_000_000_000_102, username="bob", global_name="Bob", dms_open=False),
        ]:
            self.users[user.id] = user
        self.users[self.bot_user.id] = self.bot_user
        self.guilds: dict[int, FakeGuild] = {}
        for guild in guilds or [
            FakeGuild(
                id=1_300_000_000_000_001_000,
                name="Sonance Dev",
                channels=[FakeChannel(id=1_300_000_000_000_001_001, name="general")],
            )
        ]:
            self.guilds[guild.id] = guild
        self.token = token
        self.shards = shards
        self.ack_deadline = ack_deadline
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.application_flags = application_flags
        self.allowed_intents = allowed_intents
        self.attachment_size_limit = attachment_size_limit
        self.validate = validate
        self.max_guilds_per_shard = max_guilds_per_shard
        #: When set, ``GET /users/@me`` (the login) waits for this event: a login in progress.
        self.login_gate: asyncio.Event | None = None

        # Records.
        self.requests: list[RequestRecord] = []
        self.unmatched_requests: list[RequestRecord] = []
        self.internal_errors: list[tuple[RequestRecord, BaseException]] = []
        self.interactions: dict[int, InteractionRecord] = {}
        #: The same records by interaction token: every webhook request (follow-up, edit) names its
        #: interaction by token, and a scan of all interactions made each one O(n) in a long bench.
        self._interactions_by_token: dict[str, InteractionRecord] = {}
        self.dms: list[SentMessage] = []
        self.dm_failures: list[RequestRecord] = []
        #: While True, GET /guilds/{guild}/members/{user} answers 500 (an outage of that endpoint).
        self.member_lookup_outage = False
        #: While set, that endpoint answers 429 with (retry_after seconds, whether the limit is global).
        self.member_lookup_rate_limit: tuple[float, bool] | None = None
        self.channel_messages: list[SentMessage] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.identifies: list[dict[str, Any]] = []
        #: (close code, reason) of every gateway connection the fake closed for a protocol error.
        self.gateway_closes: list[tuple[int, str]] = []
        #: (shard id, clients) whenever a shard gained a second live session (two processes claiming
        #: one shard: Discord accepts it and both get the shard's events, so both may answer).
        self.duplicate_shard_sessions: list[tuple[int, list[str | None]]] = []
        self.resumes: list[dict[str, Any]] = []
        self.presence_updates: list[dict[str, Any]] = []
        self.gateway_received: list[dict[str, Any]] = []
        self.sync_bodies: dict[int | None, list[list[dict[str, Any]]]] = {}
        self.reactions: list[tuple[int, int, str]] = []

        self._commands: dict[int | None, list[dict[str, Any]]] = {}
        self._dm_channels: dict[int, int] = {}  # channel id -> user id
        self._sessions: dict[str, _Session] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes: list[_Route] = []
        self._register_routes()

    # ----------------------------------------------------------------------------------------------
    # lifecycle
    # ----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gw", self._gateway)
        app.router.add_get("/c/{client}/gw", self._gateway)
        app.router.add_get("/attachments/{id}/{filename}", self._attachment)
        app.router.add_route("*", "/{tail:.*}", self._dispatch_http)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def close(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gw"

    def client_api_base(self, client: str) -> str:
        """REST base for one bot process: requests through it are recorded with ``client`` (the
        path prefix is stripped, so routes and payloads are Discord's). Lets a test with several
        processes tell which one answered."""
        return f"{self.base_url}/c/{client}{API_PREFIX}"

    def client_gateway_url(self, client: str) -> str:
        """Gateway URL for one bot process; its sessions are recorded with ``client``."""
        return f"ws://127.0.0.1:{self._port}/c/{client}/gw"

    # ----------------------------------------------------------------------------------------------
    # public query helpers
    # ----------------------------------------------------------------------------------------------
    def synced_commands(self, guild: int | FakeGuild | None = None) -> list[dict[str, Any]]:
        """Commands as stored after the last sync for that scope (with ids), global when ``guild`` is None."""
        return list(self._commands.get(self._gid(guild), []))

    def synced_payloads(self, guild: int | FakeGuild | None = None) -> list[dict[str, Any]]:
        """The exact body of the last bulk-overwrite PUT for that scope (what to feed the validator)."""
        bodies = self.sync_bodies.get(self._gid(guild)) or [[]]
        return bodies[-1]

    def assert_clean(self, *, allow_rejected_callbacks: bool = False) -> None:
        """Fail if the bot hit a route the fake does not know, crashed a handler, or had an
        acknowledgement rejected (40060 / 10062): the things that are silent in production logs."""
        assert not self.unmatched_requests, (
            f"unexpected requests: {[(r.method, r.path) for r in self.unmatched_requests]}"
        )
        assert not self.internal_errors, f"FakeDiscord handler errors: {self.internal_errors}"
        if not allow_rejected_callbacks:
            rejected = [
                (i.payload.get("data"), c.error_code)
                for i in self.interactions.values()
                for c in i.rejected_callbacks
            ]
            assert not rejected, f"rejected interaction callbacks: {rejected}"

    def assert_one_answer_per_interaction(self) -> None:
        """Fail unless every interaction got exactly one clean answer (see
        :meth:`InteractionRecord.answer_problems`); the bot tests run this after every test."""
        problems = {
            f"{i.id} {(i.payload.get('data') or {}).get('name') or (i.payload.get('data') or {}).get('custom_id')}":
                p
            for i in self.interactions.values() if (p := i.answer_problems())
        }
        assert not problems, f"interactions without exactly one clean answer: {problems}"

    def requests_to(self, method: str, path_prefix: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def user(self, key: int | str) -> FakeUser:
        """Look a configured user up by id or username."""
        for user in self.users.values():
            if user.id == key or user.username == key:
                return user
        raise KeyError(key)

    @property
    def default_user(self) -> FakeUser:
        return next(u for u in self.users.values() if not u.bot)

    @property
    def default_guild(self) -> FakeGuild:
        return next(iter(self.guilds.values()))

    async def wait_until_ready(self, shards: int | None = None, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - per-call deadlines are the API
        """Wait until ``shards`` gateway sessions (default: all expected) have been sent READY."""

        async def waiter() -> None:
            async with self._changed:
                while sum(1 for s in self._sessions.values() if s.ready.is_set() and s.ws is not None) < (
                    shards or 1
                ):
                    await self._changed.wait()

        await asyncio.wait_for(waiter(), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ----------------------------------------------------------------------------------------------
    # HTTP plumbing
    # ----------------------------------------------------------------------------------------------
    def _route(
        self,
        method: str,
        pattern: str,
        handler: Callable[..., Awaitable[web.StreamResponse]],
        *,
        auth: bool = True,
    ) -> None:
        self._routes.append(_Route(method, pattern, handler, auth))

    def _register_routes(self) -> None:
        r = self._route
        r("GET", "/users/@me", self._get_me)
        r("GET", "/users/{user_id}", self._get_user)
        r("GET", "/oauth2/applications/@me", self._get_application)
        r("GET", "/applications/@me", self._get_application)
        r("GET", "/gateway", self._get_gateway, auth=False)
        r("GET", "/gateway/bot", self._get_gateway_bot)
        for scope in ("/applications/{app_id}/commands", "/applications/{app_id}/guilds/{guild_id}/commands"):
            r("PUT", scope, self._put_commands)
            r("GET", scope, self._get_commands)
            r("POST", scope, self._post_command)
            r("GET", scope + "/{command_id}", self._get_command)
            r("PATCH", scope + "/{command_id}", self._patch_command)
            r("DELETE", scope + "/{command_id}", self._delete_command)
        r("POST", "/interactions/{interaction_id}/{token}/callback", self._callback, auth=False)
        r("POST", "/webhooks/{app_id}/{token}", self._webhook_execute, auth=False)
        r("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_get, auth=False)
        r("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_edit, auth=False)
        r("DELETE", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_delete, auth=False)
        r("POST", "/users/@me/channels", self._create_dm)
        r("GET", "/channels/{channel_id}", self._get_channel)
        r("POST", "/channels/{channel_id}/messages", self._post_message)
        r("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message)
        r("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message)
        r("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message)
        r("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self._add_reaction)
        r("POST", "/channels/{channel_id}/typing", self._no_content)
        r("GET", "/guilds/{guild_id}", self._get_guild)
        r("GET", "/guilds/{guild_id}/channels", self._get_guild_channels)
        r("GET", "/guilds/{guild_id}/roles", self._get_guild_roles)
        r("GET", "/guilds/{guild_id}/members", self._list_members)
        r("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member)

    @staticmethod
    def _match(pattern: str, path: str) -> dict[str, str] | None:
        p_parts, parts = pattern.strip("/").split("/"), path.strip("/").split("/")
        if len(p_parts) != len(parts):
            return None
        params: dict[str, str] = {}
        for p, actual in zip(p_parts, parts, strict=True):
            if p.startswith("{") and p.endswith("}"):
                params[p[1:-1]] = actual
            elif p != actual:
                return None
        return params

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Decode bodies once (JSON or multipart ``payload_json`` + ``files[n]``) and record requests."""
        client, plain_path = _split_client(request.path)
        if plain_path == "/gw":
            return await handler(request)
        body: Any = None
        files: list[FileRecord] = []
        ctype = request.content_type
        if ctype == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                else:
                    data = bytes(await part.read())
                    files.append(
                        FileRecord(
                            part.name or "", part.filename or "", part.headers.get("Content-Type"), data
                        )
                    )
        elif request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
        path = plain_path[len(API_PREFIX) :] if plain_path.startswith(API_PREFIX) else plain_path
        record = RequestRecord(
            request.method, path, dict(request.query), body, files, asyncio.get_running_loop().time(),
            client=client,
        )
        self.requests.append(record)
        token = _CURRENT_RECORD.set(record)
        try:
            response = await handler(request)
        except _HTTPError as exc:
            response = _json(error_body(exc.code, exc.message, exc.errors), exc.status)
        except web.HTTPException:
            raise
        except Exception as exc:
            # A bug in the fake (or a payload shape it does not expect). Answer 400, not 500:
            # discord.py retries 5xx with back-off, which would turn a clear failure into a
            # slow, confusing timeout. Tests can assert ``fake.internal_errors == []``.
            _log.exception("FakeDiscord: handler crashed on %s %s", request.method, request.path)
            self.internal_errors.append((record, exc))
            response = _json(error_body(0, f"FakeDiscord internal error: {exc!r}"), 400)
        finally:
            _CURRENT_RECORD.reset(token)
        record.status = response.status
        return response

    async def _dispatch_http(self, request: web.Request) -> web.StreamResponse:
        record = _CURRENT_RECORD.get()
        if _split_client(request.path)[1].startswith(API_PREFIX):
            for route in self._routes:
                if route.method != request.method:
                    continue
                params = self._match(route.pattern, record.path)
                if params is None:
                    continue
                if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
                    raise _HTTPError(401, 0, "401: Unauthorized")
                return await route.handler(request, record, **params)
        self.unmatched_requests.append(record)
        _log.warning("FakeDiscord: unmatched request %s %s", request.method, request.path)
        raise _HTTPError(
            404, 0, f"404: Not Found ({request.method} {record.path} is not implemented by FakeDiscord)"
        )

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        attachment_id = int(request.match_info["id"])
        for message in self.messages.values():
            for attachment in message.get("attachments", []):
                if int(attachment["id"]) == attachment_id and "_data" in attachment:
                    return web.Response(body=attachment["_data"])
        raise _HTTPError(404, 0, "404: Not Found")

    # ----------------------------------------------------------------------------------------------
    # small helpers
    # ----------------------------------------------------------------------------------------------
    def _gid(self, guild: int | FakeGuild | str | None) -> int | None:
        if guild is None:
            return None
        return guild.id if isinstance(guild, FakeGuild) else int(guild)

    def _check_app(self, app_id: str) -> None:
        if int(app_id) != self.application_id:
            raise _HTTPError(403, 50001, "Missing Access")

    def _guild_or_404(self, guild_id: str | int) -> FakeGuild:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise _HTTPError(404, 10004, "Unknown Guild")
        return guild

    def _guild_members(self, guild: FakeGuild) -> list[FakeUser]:
        ids = (
            guild.members
            if guild.members is not None
            else [u.id for u in self.users.values() if u is not self.bot_user]
        )
        members = [self.users[i] for i in ids if i in self.users]
        if self.bot_user not in members:
            members.append(self.bot_user)
        return members

    def _owner_id(self, guild: FakeGuild) -> int:
        if guild.owner_id is not None:
            return guild.owner_id
        # Lazily, without building the member list: this runs for every interaction, and a bench
        # guild has hundreds of members.
        ids = guild.members if guild.members is not None else self.users.keys()
        for user_id in ids:
            user = self.users.get(user_id)
            if user is not None and not user.bot:
                return user.id
        return self.owner.id

    def _member_permissions(self, guild: FakeGuild, user: FakeUser) -> int:
        if user.id == self._owner_id(guild):
            return (1 << 50) - 1 | PERM_ADMINISTRATOR
        perms = guild.everyone_permissions
        role_ids = set(guild.member_roles.get(user.id, []))
        for role in guild.roles:
            if role.id in role_ids:
                perms |= role.permissions
        return perms

    def _validate_body(self, body: Mapping[str, Any] | None) -> None:
        if not self.validate or not body:
            return
        problems = validate_message_payload(body)
        if problems:
            raise _HTTPError(400, 50035, "Invalid Form Body", _form_errors(problems))

    def _check_upload_size(self, files: list[FileRecord]) -> None:
        if sum(len(f.data) for f in files) > self.attachment_size_limit:
            raise _HTTPError(413, 40005, "Request entity too large")

    def _attachments_from(
        self, body: Mapping[str, Any] | None, files: list[FileRecord]
    ) -> list[dict[str, Any]]:
        """Turn uploaded files into attachment objects, keeping the bytes for the /attachments route."""
        described = {
            str(a.get("id")): a for a in (body or {}).get("attachments") or [] if isinstance(a, Mapping)
        }
        result = []
        for index, upload in enumerate(files):
            meta = described.get(str(index), {})
            filename = meta.get("filename") or upload.filename
            attachment = attachment_payload(
                self.snowflake(), filename, upload.data, upload.content_type, self.base_url
            )
            if meta.get("description"):
                attachment["description"] = meta["description"]
            attachment["_data"] = upload.data
            result.append(attachment)
        return result

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        """Strip fake-internal keys (attachment bytes) from a stored message before returning it."""
        out = dict(message)
        out["attachments"] = [
            {k: v for k, v in a.items() if k != "_data"} for a in message.get("attachments", [])
        ]
        return out

    def _new_message(
        self,
        body: Mapping[str, Any] | None,
        files: list[FileRecord],
        *,
        channel_id: int,
        guild_id: int | None,
        message_type: int = 0,
        interaction: InteractionRecord | None = None,
        extra_flags: int = 0,
    ) -> dict[str, Any]:
        body = body or {}
        message_id = self.snowflake()
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": self.bot_user.payload(),
            "content": body.get("content") or "",
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": self._attachments_from(body, files),
            "embeds": list(body.get("embeds") or []),
            "pinned": False,
            "type": message_type,
            "flags": (body.get("flags") or 0) | extra_flags,
            "components": list(body.get("components") or []),
        }
        if guild_id is not None:
            message["guild_id"] = str(guild_id)
        if interaction is not None:
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
            user = interaction.payload.get("member", {}).get("user") or interaction.payload.get("user")
            message["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": user,
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
        self.messages[message_id] = message
        return message

    def _apply_edit(
        self, message: dict[str, Any], body: Mapping[str, Any] | None, files: list[FileRecord]
    ) -> dict[str, Any]:
        """PATCH semantics: only keys present change; ``attachments`` lists which old ones to keep."""
        body = body or {}
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        if "attachments" in body or files:
            keep_ids = {str(a.get("id")) for a in body.get("attachments") or []}
            kept = (
                [a for a in message.get("attachments", []) if a["id"] in keep_ids]
                if "attachments" in body
                else list(message.get("attachments", []))
            )
            message["attachments"] = kept + self._attachments_from(body, files)
        message["edited_timestamp"] = iso_now()
        # A deferred response stops "thinking" once edited.
        message["flags"] = (message.get("flags") or 0) & ~MSG_FLAG_LOADING
        return message

    async def _no_content(self, request: web.Request, record: RequestRecord, **_: str) -> web.Response:
        return web.Response(status=204)

    # ----------------------------------------------------------------------------------------------
    # REST: identity, gateway discovery
    # ----------------------------------------------------------------------------------------------
    async def _get_me(self, request: web.Request, record: RequestRecord) -> web.Response:
        if self.login_gate is not None:  # a slow Discord: the login waits until the test opens the gate
            await self.login_gate.wait()
        return _json(bot_user_payload(self.bot_user))

    async def _get_user(self, request: web.Request, record: RequestRecord, user_id: str) -> web.Response:
        user = self.users.get(int(user_id)) if user_id.isdigit() else None
        if user is None:
            raise _HTTPError(404, 10013, "Unknown User")
        return _json(user.payload())

    async def _get_application(self, request: web.Request, record: RequestRecord) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": self.bot_user.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": self.bot_user.payload(),
                "owner": self.owner.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": self.application_flags,
                "hook": True,
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "role_connections_verification_url": None,
                "tags": [],
                "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
                "integration_types_config": {"0": {}},
                "approximate_guild_count": len(self.guilds),
                "approximate_user_install_count": 0,
            }
        )

    async def _get_gateway(self, request: web.Request, record: RequestRecord) -> web.Response:
        return _json({"url": self._gateway_for(record)})

    def _gateway_for(self, record: RequestRecord) -> str:
        return self.client_gateway_url(record.client) if record.client else self.gateway_url

    async def _get_gateway_bot(self, request: web.Request, record: RequestRecord) -> web.Response:
        return _json(
            {
                "url": self._gateway_for(record),
                "shards": self.shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    # ----------------------------------------------------------------------------------------------
    # REST: application commands
    # ----------------------------------------------------------------------------------------------
    def _store_command(
        self, scope: int | None, payload: Mapping[str, Any], existing: list[dict[str, Any]]
    ) -> dict[str, Any]:
        command_type = payload.get("type", 1)
        old = next(
            (c for c in existing if c["name"] == payload.get("name") and c["type"] == command_type), None
        )
        stored: dict[str, Any] = {
            "id": old["id"] if old else str(self.snowflake()),
            "application_id": str(self.application_id),
            "version": str(self.snowflake()),
            "type": command_type,
            "name": payload.get("name"),
            "name_localizations": payload.get("name_localizations"),
            "description": payload.get("description", ""),
            "description_localizations": payload.get("description_localizations"),
            "options": list(payload.get("options") or []),
            "default_member_permissions": payload.get("default_member_permissions"),
            "nsfw": bool(payload.get("nsfw", False)),
        }
        if scope is not None:
            stored["guild_id"] = str(scope)
        else:
            stored["dm_permission"] = payload.get("dm_permission", True)
            stored["contexts"] = payload.get("contexts")
            stored["integration_types"] = payload.get("integration_types") or [0]
        return stored

    def _scope(self, app_id: str, guild_id: str | None) -> int | None:
        self._check_app(app_id)
        if guild_id is None:
            return None
        self._guild_or_404(guild_id)
        return int(guild_id)

    async def _put_commands(
        self, request: web.Request, record: RequestRecord, app_id: str, guild_id: str | None = None
    ) -> web.Response:
        scope = self._scope(app_id, guild_id)
        body = record.json if isinstance(record.json, list) else []
        if self.validate:
            problems = validate_command_payloads(body, scope="global" if scope is None else f"guild {scope}")
            if problems:
                raise _HTTPError(400, 50035, "Invalid Form Body", _form_errors(problems))
        existing = self._commands.get(scope, [])
        self._commands[scope] = [self._store_command(scope, p, existing) for p in body]
        self.sync_bodies.setdefault(scope, []).append(body)
        return _json(self._commands[scope])

    async def _get_commands(
        self, request: web.Request, record: RequestRecord, app_id: str, guild_id: str | None = None
    ) -> web.Response:
        return _json(self._commands.get(self._scope(app_id, guild_id), []))

    async def _post_command(
        self, request: web.Request, record: RequestRecord, app_id: str, guild_id: str | None = None
    ) -> web.Response:
        scope = self._scope(app_id, guild_id)
        existing = self._commands.setdefault(scope, [])
        body = record.json or {}
        if self.validate and (problems := validate_command_payloads([body])):
            raise _HTTPError(400, 50035, "Invalid Form Body", _form_errors(problems))
        stored = self._store_command(scope, body, existing)
        existing[:] = [c for c in existing if c["id"] != stored["id"]] + [stored]
        return _json(stored, 200 if any(c["id"] == stored["id"] for c in existing[:-1]) else 201)

    def _find_command(self, scope: int | None, command_id: str) -> dict[str, Any]:
        for command in self._commands.get(scope, []):
            if command["id"] == command_id:
                return command
        raise _HTTPError(404, 10063, "Unknown application command")

    async def _get_command(
        self,
        request: web.Request,
        record: RequestRecord,
        app_id: str,
        command_id: str,
        guild_id: str | None = None,
    ) -> web.Response:
        return _json(self._find_command(self._scope(app_id, guild_id), command_id))

    async def _patch_command(
        self,
        request: web.Request,
        record: RequestRecord,
        app_id: str,
        command_id: str,
        guild_id: str | None = None,
    ) -> web.Response:
        command = self._find_command(self._scope(app_id, guild_id), command_id)
        command.update({k: v for k, v in (record.json or {}).items() if k not in ("id", "application_id")})
        return _json(command)

    async def _delete_command(
        self,
        request: web.Request,
        record: RequestRecord,
        app_id: str,
        command_id: str,
        guild_id: str | None = None,
    ) -> web.Response:
        scope = self._scope(app_id, guild_id)
        command = self._find_command(scope, command_id)
        self._commands[scope].remove(command)
        return web.Response(status=204)

    # ----------------------------------------------------------------------------------------------
    # REST: interactions and webhooks
    # ----------------------------------------------------------------------------------------------
    def _interaction_or_404(self, interaction_id: str, token: str) -> InteractionRecord:
        interaction = self.interactions.get(int(interaction_id)) if interaction_id.isdigit() else None
        if interaction is None or interaction.token != token:
            raise _HTTPError(404, 10062, "Unknown interaction")
        return interaction

    async def _callback(
        self, request: web.Request, record: RequestRecord, interaction_id: str, token: str
    ) -> web.Response:
        interaction = self._interaction_or_404(interaction_id, token)
        loop_now = record.at
        latency = loop_now - (interaction.dispatched_at or loop_now)
        body = record.json if isinstance(record.json, dict) else {}
        cb_type = int(body.get("type", 0))
        data = body.get("data")
        callback = CallbackRecord(
            cb_type, data, body, record.files, loop_now, latency, accepted=False, status=0, client=record.client
        )
        interaction.callbacks.append(callback)
        interaction.events.append(callback)
        try:
            if interaction.ack is not None and interaction.ack is not callback:
                raise _HTTPError(400, 40060, "Interaction has already been acknowledged.")
            if latency > self.ack_deadline:
                raise _HTTPError(404, 10062, "Unknown interaction")
            response = self._accept_callback(interaction, callback, record)
        except _HTTPError as exc:
            callback.status, callback.error_code = exc.status, exc.code
            await interaction._notify()
            raise
        callback.accepted, callback.status = True, response.status
        await interaction._notify()
        return response

    def _accept_callback(
        self, interaction: InteractionRecord, callback: CallbackRecord, record: RequestRecord
    ) -> web.Response:
        payload = interaction.payload
        data = callback.data or {}
        channel_id = int(payload.get("channel_id") or 0)
        guild_id = int(payload["guild_id"]) if payload.get("guild_id") else None
        message: dict[str, Any] | None = None
        message_type = 20 if interaction.type == INTERACTION_APPLICATION_COMMAND else 0
        if callback.type in (CB_CHANNEL_MESSAGE, CB_UPDATE_MESSAGE):
            self._validate_body(data)
            self._check_upload_size(record.files)
        if callback.type == CB_CHANNEL_MESSAGE:
            message = self._new_message(
                data,
                record.files,
                channel_id=channel_id,
                guild_id=guild_id,
                message_type=message_type,
                interaction=interaction,
            )
        elif callback.type == CB_DEFERRED_CHANNEL_MESSAGE:
            message = self._new_message(
                {"flags": data.get("flags", 0)},
                [],
                channel_id=channel_id,
                guild_id=guild_id,
                message_type=message_type,
                interaction=interaction,
                extra_flags=MSG_FLAG_LOADING,
            )
        elif callback.type in (CB_DEFERRED_UPDATE_MESSAGE, CB_UPDATE_MESSAGE):
            if (
                interaction.type not in (INTERACTION_MESSAGE_COMPONENT, INTERACTION_MODAL_SUBMIT)
                or "message" not in payload
            ):
                raise _HTTPError(400, 40004, "Interaction response type is not valid for this interaction")
            source = payload["message"]
            message = self.messages.setdefault(int(source["id"]), dict(source))
            if callback.type == CB_UPDATE_MESSAGE:
                self._apply_edit(message, data, record.files)
        elif callback.type == CB_AUTOCOMPLETE_RESULT:
            if interaction.type != INTERACTION_AUTOCOMPLETE:
                raise _HTTPError(400, 40004, "Interaction response type is not valid for this interaction")
            if len(data.get("choices") or []) > 25:
                raise _HTTPError(
                    400, 50035, "Invalid Form Body", _form_errors(["more than 25 autocomplete choices"])
                )
        elif callback.type == CB_MODAL:
            if interaction.type in (INTERACTION_AUTOCOMPLETE, INTERACTION_MODAL_SUBMIT):
                raise _HTTPError(400, 40004, "Interaction response type is not valid for this interaction")
            if self.validate and (problems := validate_modal_payload(data)):
                raise _HTTPError(400, 50035, "Invalid Form Body", _form_errors(problems))
        elif callback.type == CB_PONG:
            pass
        else:
            raise _HTTPError(
                400, 50035, "Invalid Form Body", _form_errors([f"unsupported callback type {callback.type}"])
            )

        if message is not None:
            interaction.original_message = message
        if callback.type in (CB_CHANNEL_MESSAGE, CB_UPDATE_MESSAGE):
            sent = SentMessage(
                "callback",
                data,
                record.files,
                self._public(message) if message else None,
                record.at,
                channel_id=channel_id,
            )
            interaction.events.append(sent)
        if record.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        result: dict[str, Any] = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_id": message["id"] if message else None,
                "response_message_loading": callback.type == CB_DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool((data.get("flags") or 0) & MSG_FLAG_EPHEMERAL),
            }
        }
        if message is not None:
            result["resource"] = {"type": callback.type, "message": self._public(message)}
        return _json(result)

    def forget_interaction(self, interaction_id: int) -> InteractionRecord | None:
        """Drop one interaction's records (both indexes), as a long run prunes answered ones; its
        token then answers 404 10015, as an expired one does on Discord."""
        record = self.interactions.pop(interaction_id, None)
        if record is not None and self._interactions_by_token.get(record.token) is record:
            del self._interactions_by_token[record.token]
        return record

    def _webhook_interaction(self, app_id: str, token: str) -> InteractionRecord:
        if int(app_id) != self.application_id:
            raise _HTTPError(404, 10015, "Unknown Webhook")
        interaction = self._interactions_by_token.get(token)
        if interaction is None:
            raise _HTTPError(404, 10015, "Unknown Webhook")
        now = asyncio.get_running_loop().time()
        if interaction.dispatched_at is not None and now - interaction.dispatched_at > TOKEN_LIFETIME_S:
            raise _HTTPError(401, 50027, "Invalid Webhook Token")
        if interaction.ack is None:
            # Discord only opens the webhook once the interaction has been acknowledged.
            raise _HTTPError(404, 10015, "Unknown Webhook")
        return interaction

    def _webhook_message(self, interaction: InteractionRecord, message_id: str) -> dict[str, Any]:
        """The message a webhook request names; 404 10008 "Unknown Message" (as Discord answers) when
        it was deleted or never sent, also when the deleted original is named by its id."""
        original = interaction.original_message
        if message_id == "@original" or (original is not None and original["id"] == message_id):
            if original is not None and not interaction.original_deleted:
                return original
        else:
            for sent in interaction.followups:
                if (
                    sent.message
                    and sent.message["id"] == message_id
                    and int(message_id) not in interaction.deleted_followups
                ):
                    return self.messages[int(message_id)]
        interaction.unknown_message_hits.append(message_id)
        raise _HTTPError(404, 10008, "Unknown Message")

    async def _webhook_execute(
        self, request: web.Request, record: RequestRecord, app_id: str, token: str
    ) -> web.Response:
        interaction = self._webhook_interaction(app_id, token)
        body = record.json if isinstance(record.json, dict) else {}
        self._validate_body(body)
        self._check_upload_size(record.files)
        if not (
            body.get("content")
            or body.get("embeds")
            or body.get("components")
            or body.get("poll")
            or record.files
        ):
            raise _HTTPError(400, 50006, "Cannot send an empty message")
        payload = interaction.payload
        guild_id = int(payload["guild_id"]) if payload.get("guild_id") else None
        message = self._new_message(
            body,
            record.files,
            channel_id=int(payload.get("channel_id") or 0),
            guild_id=guild_id,
            message_type=0,
            interaction=interaction,
        )
        sent = SentMessage(
            "followup",
            body,
            record.files,
            self._public(message),
            record.at,
            channel_id=int(payload.get("channel_id") or 0),
        )
        interaction.followups.append(sent)
        interaction.events.append(sent)
        await interaction._notify()
        if record.query.get("wait") in ("true", "1", "True"):
            return _json(self._public(message))
        return web.Response(status=204)

    async def _webhook_get(
        self, request: web.Request, record: RequestRecord, app_id: str, token: str, message_id: str
    ) -> web.Response:
        interaction = self._webhook_interaction(app_id, token)
        return _json(self._public(self._webhook_message(interaction, message_id)))

    async def _webhook_edit(
        self, request: web.Request, record: RequestRecord, app_id: str, token: str, message_id: str
    ) -> web.Response:
        interaction = self._webhook_interaction(app_id, token)
        message = self._webhook_message(interaction, message_id)
        body = record.json if isinstance(record.json, dict) else {}
        self._validate_body(body)
        self._check_upload_size(record.files)
        self._apply_edit(message, body, record.files)
        is_original = message is interaction.original_message
        sent = SentMessage(
            "edit_original" if is_original else "edit_followup",
            body,
            record.files,
            self._public(message),
            record.at,
            channel_id=int(message["channel_id"]),
        )
        (interaction.original_edits if is_original else interaction.followup_edits).append(sent)
        interaction.events.append(sent)
        await interaction._notify()
        return _json(self._public(message))

    async def _webhook_delete(
        self, request: web.Request, record: RequestRecord, app_id: str, token: str, message_id: str
    ) -> web.Response:
        interaction = self._webhook_interaction(app_id, token)
        message = self._webhook_message(interaction, message_id)
        if message is interaction.original_message:
            interaction.original_deleted = True
        else:
            interaction.deleted_followups.append(int(message["id"]))
        await interaction._notify()
        return web.Response(status=204)

    # ----------------------------------------------------------------------------------------------
    # REST: channels, DMs, guilds
    # ----------------------------------------------------------------------------------------------
    def _find_guild_channel(self, channel_id: int) -> tuple[FakeGuild, FakeChannel] | None:
        for guild in self.guilds.values():
            channel = guild.channel(channel_id)
            if channel is not None:
                return guild, channel
        return None

    async def _create_dm(self, request: web.Request, record: RequestRecord) -> web.Response:
        recipient = str((record.json or {}).get("recipient_id", ""))
        user = self.users.get(int(recipient)) if recipient.isdigit() else None
        if user is None:
            raise _HTTPError(400, 50033, "Invalid Recipient(s)")
        channel_id = next((c for c, u in self._dm_channels.items() if u == user.id), None)
        if channel_id is None:
            channel_id = self.snowflake()
            self._dm_channels[channel_id] = user.id
        return _json(dm_channel_payload(channel_id, user))

    async def _get_channel(
        self, request: web.Request, record: RequestRecord, channel_id: str
    ) -> web.Response:
        cid = int(channel_id) if channel_id.isdigit() else 0
        if cid in self._dm_channels:
            return _json(dm_channel_payload(cid, self.users[self._dm_channels[cid]]))
        found = self._find_guild_channel(cid)
        if found is None:
            raise _HTTPError(404, 10003, "Unknown Channel")
        guild, channel = found
        return _json(channel.payload(guild.id))

    async def _post_message(
        self, request: web.Request, record: RequestRecord, channel_id: str
    ) -> web.Response:
        cid = int(channel_id) if channel_id.isdigit() else 0
        body = record.json if isinstance(record.json, dict) else {}
        if cid in self._dm_channels:
            user = self.users[self._dm_channels[cid]]
            if not user.dms_open:
                self.dm_failures.append(record)
                raise _HTTPError(403, 50007, "Cannot send messages to this user")
            guild_id = None
        else:
            found = self._find_guild_channel(cid)
            if found is None:
                raise _HTTPError(404, 10003, "Unknown Channel")
            guild_id = found[0].id
            user = None
        self._validate_body(body)
        self._check_upload_size(record.files)
        if not (
            body.get("content")
            or body.get("embeds")
            or body.get("components")
            or body.get("sticker_ids")
            or body.get("poll")
            or record.files
        ):
            raise _HTTPError(400, 50006, "Cannot send an empty message")
        message = self._new_message(body, record.files, channel_id=cid, guild_id=guild_id)
        sent = SentMessage(
            "dm" if user else "channel",
            body,
            record.files,
            self._public(message),
            record.at,
            channel_id=cid,
            recipient_id=user.id if user else None,
        )
        (self.dms if user else self.channel_messages).append(sent)
        await self._notify()
        return _json(self._public(message))

    def _channel_message(self, channel_id: str, message_id: str) -> dict[str, Any]:
        message = self.messages.get(int(message_id)) if message_id.isdigit() else None
        if message is None or message["channel_id"] != channel_id:
            raise _HTTPError(404, 10008, "Unknown Message")
        return message

    async def _get_message(
        self, request: web.Request, record: RequestRecord, channel_id: str, message_id: str
    ) -> web.Response:
        return _json(self._public(self._channel_message(channel_id, message_id)))

    async def _edit_message(
        self, request: web.Request, record: RequestRecord, channel_id: str, message_id: str
    ) -> web.Response:
        message = self._channel_message(channel_id, message_id)
        body = record.json if isinstance(record.json, dict) else {}
        self._validate_body(body)
        return _json(self._public(self._apply_edit(message, body, record.files)))

    async def _delete_message(
        self, request: web.Request, record: RequestRecord, channel_id: str, message_id: str
    ) -> web.Response:
        self._channel_message(channel_id, message_id)
        del self.messages[int(message_id)]
        return web.Response(status=204)

    async def _add_reaction(
        self, request: web.Request, record: RequestRecord, channel_id: str, message_id: str, emoji: str
    ) -> web.Response:
        self._channel_message(channel_id, message_id)
        self.reactions.append((int(channel_id), int(message_id), emoji))
        return web.Response(status=204)

    async def _get_guild(self, request: web.Request, record: RequestRecord, guild_id: str) -> web.Response:
        guild = self._guild_or_404(guild_id)
        data = guild_payload(guild, owner_id=self._owner_id(guild))
        if record.query.get("with_counts") in ("1", "true", "True"):
            data["approximate_member_count"] = len(self._guild_members(guild))
            data["approximate_presence_count"] = 0
        return _json(data)

    async def _get_guild_channels(
        self, request: web.Request, record: RequestRecord, guild_id: str
    ) -> web.Response:
        guild = self._guild_or_404(guild_id)
        return _json([c.payload(guild.id) for c in guild.channels])

    async def _get_guild_roles(
        self, request: web.Request, record: RequestRecord, guild_id: str
    ) -> web.Response:
        guild = self._guild_or_404(guild_id)
        return _json([r.payload() for r in guild.all_roles()])

    async def _list_members(self, request: web.Request, record: RequestRecord, guild_id: str) -> web.Response:
        guild = self._guild_or_404(guild_id)
        limit = int(record.query.get("limit", "1"))
        after = int(record.query.get("after", "0"))
        members = sorted((u for u in self._guild_members(guild) if u.id > after), key=lambda u: u.id)[:limit]
        return _json([member_payload(guild, u) for u in members])

    async def _get_member(
        self, request: web.Request, record: RequestRecord, guild_id: str, user_id: str
    ) -> web.Response:
        if self.member_lookup_outage:  # Discord's own 5xx: discord.py retries it with back-off
            raise _HTTPError(500, 0, "500: Internal Server Error")
        if self.member_lookup_rate_limit is not None:
            return _rate_limited(*self.member_lookup_rate_limit)
        guild = self._guild_or_404(guild_id)
        user = next((u for u in self._guild_members(guild) if str(u.id) == user_id), None)
        if user is None:
            raise _HTTPError(404, 10007, "Unknown Member")
        return _json(member_payload(guild, user))

    # ----------------------------------------------------------------------------------------------
    # Gateway
    # ----------------------------------------------------------------------------------------------
    def _shard_of(self, guild_id: int, shard_count: int) -> int:
        return (guild_id >> 22) % shard_count

    async def _send(self, session: _Session, op: int, data: Any, event: str | None = None) -> None:
        if session.ws is None or session.ws.closed:
            raise RuntimeError(f"shard {session.shard_id} is not connected")
        frame: dict[str, Any] = {"op": op, "d": data, "s": None, "t": None}
        if op == OP_DISPATCH:
            session.seq += 1
            frame["s"], frame["t"] = session.seq, event
        await session.ws.send_str(json.dumps(frame))

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        client = request.match_info.get("client")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        session: _Session | None = None
        try:
            await ws.send_str(
                json.dumps(
                    {
                        "op": OP_HELLO,
                        "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                        "s": None,
                        "t": None,
                    }
                )
            )
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self.gateway_received.append(frame)
                op, data = frame.get("op"), frame.get("d")
                if op == OP_HEARTBEAT:
                    await ws.send_str(json.dumps({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None}))
                elif op == OP_IDENTIFY:
                    if session is not None:  # one IDENTIFY per connection, as Discord enforces
                        await self._close(ws, 4005, "Already authenticated.")
                        break
                    session = await self._on_identify(ws, data, client)
                elif op == OP_RESUME:
                    session = await self._on_resume(ws, data)
                elif session is None:  # anything but a heartbeat before IDENTIFY/RESUME
                    await self._close(ws, 4003, "Not authenticated.")
                    break
                elif op == OP_REQUEST_GUILD_MEMBERS and session is not None:
                    await self._on_request_members(session, data)
                elif op == OP_PRESENCE_UPDATE:
                    self.presence_updates.append(data)
        finally:
            self._sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
            await self._notify()
        return ws

    async def _close(self, ws: web.WebSocketResponse, code: int, reason: str) -> None:
        self.gateway_closes.append((code, reason))
        await ws.close(code=code, message=reason.encode())

    async def _on_identify(
        self, ws: web.WebSocketResponse, data: dict[str, Any], client: str | None = None
    ) -> _Session | None:
        self.identifies.append(data)
        if data.get("token") != self.token:
            await self._close(ws, 4004, "Authentication failed.")
            return None
        shard = data.get("shard") or [0, 1]
        valid = (isinstance(shard, list) and len(shard) == 2 and all(type(v) is int for v in shard)
                 and shard[1] >= 1 and 0 <= shard[0] < shard[1])
        if not valid:
            await self._close(ws, 4010, "Invalid shard.")
            return None
        shard_id, shard_count = shard
        intents = int(data.get("intents", 0))
        if self.allowed_intents is not None and intents & PRIVILEGED_INTENTS & ~self.allowed_intents:
            await self._close(ws, 4014, "Disallowed intent(s).")
            return None
        guilds = [g for g in self.guilds.values() if self._shard_of(g.id, shard_count) == shard_id]
        if len(guilds) > self.max_guilds_per_shard:
            await self._close(ws, 4011, "Sharding required.")
            return None
        already = [s for s in self._live_sessions() if s.shard_id == shard_id and s.shard_count == shard_count]
        session = _Session(
            session_id=uuid.uuid4().hex, shard_id=shard_id, shard_count=shard_count, intents=intents, ws=ws,
            client=client,
        )
        if already:
            self.duplicate_shard_sessions.append((shard_id, [s.client for s in already] + [client]))
        self._sessions[session.session_id] = session
        ready = {
            "v": 10,
            "user": bot_user_payload(self.bot_user),
            "user_settings": {},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.client_gateway_url(client) if client else self.gateway_url,
            "shard": [shard_id, shard_count],
            "application": {"id": str(self.application_id), "flags": self.application_flags},
            "private_channels": [],
            "presences": [],
            "relationships": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake"],
            "auth": {},
            "_trace": ['["fake-discord",{"micros":0}]'],
        }
        await self._send(session, OP_DISPATCH, ready, "READY")
        for guild in guilds:
            members = self._guild_members(guild)
            if not intents & INTENT_GUILD_MEMBERS:
                # Without GUILD_MEMBERS Discord only includes the bot itself (and voice members).
                shown = [self.bot_user]
            else:
                shown = members
            payload = guild_create_payload(
                guild, [member_payload(guild, u) for u in shown], owner_id=self._owner_id(guild)
            )
            payload["member_count"] = len(members)
            await self._send(session, OP_DISPATCH, payload, "GUILD_CREATE")
        session.ready.set()
        await self._notify()
        return session

    async def _on_resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> _Session | None:
        self.resumes.append(data)
        session = self._sessions.get(data.get("session_id", ""))
        if session is None or data.get("token") != self.token:
            await ws.send_str(json.dumps({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None}))
            return None
        session.ws = ws
        await self._send(session, OP_DISPATCH, {"_trace": ['["fake-discord",{"micros":0}]']}, "RESUMED")
        await self._notify()
        return session

    async def _on_request_members(self, session: _Session, data: dict[str, Any]) -> None:
        guild = self.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        members = self._guild_members(guild)
        wanted = data.get("user_ids")
        if wanted:
            wanted_ids = {int(u) for u in (wanted if isinstance(wanted, list) else [wanted])}
            members = [u for u in members if u.id in wanted_ids]
        elif data.get("query"):
            members = [u for u in members if u.username.lower().startswith(str(data["query"]).lower())]
        chunk = {
            "guild_id": str(guild.id),
            "members": [member_payload(guild, u) for u in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            "presences": [],
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self._send(session, OP_DISPATCH, chunk, "GUILD_MEMBERS_CHUNK")

    def _live_sessions(self) -> list[_Session]:
        return [s for s in self._sessions.values() if s.ws is not None and not s.ws.closed and s.ready.is_set()]

    def sessions_by_client(self) -> dict[str | None, list[int]]:
        """Live gateway sessions: client tag -> shard ids (for tests with several bot processes)."""
        found: dict[str | None, list[int]] = {}
        for session in self._live_sessions():
            found.setdefault(session.client, []).append(session.shard_id)
        return {client: sorted(ids) for client, ids in found.items()}

    def _live_session(self, shard_id: int | None) -> _Session:
        live = self._live_sessions()
        if not live:
            raise RuntimeError("no gateway session is connected; start the bot first (see running_bot)")
        if shard_id is None:
            return live[0]
        for session in live:
            if session.shard_id == shard_id:
                return session
        raise RuntimeError(f"shard {shard_id} is not connected")

    def _session_for_guild(self, guild_id: int | None) -> _Session:
        any_session = self._live_session(None)
        if guild_id is None:
            return self._live_session(0)  # DMs arrive on shard 0 only
        return self._live_session(self._shard_of(guild_id, any_session.shard_count))

    async def send_event(
        self, event: str, data: dict[str, Any], *, guild_id: int | None = None, shard_id: int | None = None
    ) -> None:
        """Dispatch any gateway event (e.g. ``GUILD_MEMBER_ADD``) on the shard that owns ``guild_id``."""
        session = self._live_session(shard_id) if shard_id is not None else self._session_for_guild(guild_id)
        await self._send(session, OP_DISPATCH, data, event)

    async def member_leaves(self, guild_id: int, user_id: int) -> None:
        """A member leaves (or is kicked from) a guild. Discord sends GUILD_MEMBER_REMOVE only to a
        session that asked for the privileged GUILD_MEMBERS intent; later REST lookups of the member
        answer 404 Unknown Member either way."""
        guild = self.guilds[guild_id]
        if guild.members is None:
            guild.members = [u.id for u in self.users.values() if u is not self.bot_user]
        guild.members = [m for m in guild.members if m != user_id]
        session = self._session_for_guild(guild_id)
        if session.intents & INTENT_GUILD_MEMBERS:
            user = self.users[user_id]
            await self._send(session, OP_DISPATCH, {"guild_id": str(guild_id), "user": user.payload()},
                             "GUILD_MEMBER_REMOVE")

    async def remove_bot_from_guild(self, guild_id: int) -> None:
        """The bot was kicked (or the guild deleted): GUILD_DELETE without ``unavailable`` on the
        guild's shard, as Discord sends it, and the guild is gone for every later request."""
        await self.send_event("GUILD_DELETE", {"id": str(guild_id)}, guild_id=guild_id)
        self.guilds.pop(guild_id, None)

    async def request_reconnect(self, shard_id: int = 0) -> None:
        """Send op 7 RECONNECT: the client must reconnect and RESUME (tests session resumption)."""
        await self._send(self._live_session(shard_id), OP_RECONNECT, None)

    async def dispatch(self, payload: dict[str, Any]) -> InteractionRecord:
        """Send an INTERACTION_CREATE and return its record; the 3 s clock starts now.

        Dispatching the same payload twice reuses the record, which is how a test simulates Discord
        delivering one interaction to two handlers (the second acknowledgement gets 40060).
        """
        interaction_id = int(payload["id"])
        record = self.interactions.get(interaction_id)
        if record is None:
            record = InteractionRecord(payload)
            self.interactions[interaction_id] = record
            self._interactions_by_token.setdefault(record.token, record)
        session = self._session_for_guild(int(payload["guild_id"]) if payload.get("guild_id") else None)
        if record.dispatched_at is None:
            record.dispatched_at = asyncio.get_running_loop().time()
        # Every live session of that shard gets it (two processes claiming one shard both receive
        # the shard's events on Discord); the first acknowledgement wins, the second gets 40060.
        for target in [s for s in self._live_sessions() if (s.shard_id, s.shard_count) ==
                       (session.shard_id, session.shard_count)]:
            record.delivered_to.append((target.shard_id, target.client))
            await self._send(target, OP_DISPATCH, payload, "INTERACTION_CREATE")
        return record

    # ----------------------------------------------------------------------------------------------
    # Interaction payload builders
    # ----------------------------------------------------------------------------------------------
    def _resolve_user(self, user: FakeUser | int | str | None) -> FakeUser:
        if user is None:
            return self.default_user
        return user if isinstance(user, FakeUser) else self.user(user)

    def _resolve_guild(self, guild: FakeGuild | int | None) -> FakeGuild:
        if guild is None:
            return self.default_guild
        return guild if isinstance(guild, FakeGuild) else self._guild_or_404_plain(int(guild))

    def _guild_or_404_plain(self, guild_id: int) -> FakeGuild:
        if guild_id not in self.guilds:
            raise KeyError(f"guild {guild_id} is not configured in FakeDiscord")
        return self.guilds[guild_id]

    def interaction_base(
        self,
        interaction_type: int,
        *,
        user: FakeUser | int | str | None = None,
        guild: FakeGuild | int | None = None,
        channel: FakeChannel | int | None = None,
        dm: bool = False,
        locale: str | None = None,
        app_permissions: int = DEFAULT_APP_PERMISSIONS,
    ) -> dict[str, Any]:
        """Fields every interaction carries (Discord API v10, 2026), for guild or bot-DM context."""
        actor = self._resolve_user(user)
        payload: dict[str, Any] = {
            "id": str(self.snowflake()),
            "application_id": str(self.application_id),
            "type": interaction_type,
            "token": f"itok-{uuid.uuid4().hex}{uuid.uuid4().hex}",
            "version": 1,
            "locale": locale or actor.locale,
            "app_permissions": str(app_permissions),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if dm:
            dm_channel = next((c for c, u in self._dm_channels.items() if u == actor.id), None)
            if dm_channel is None:
                dm_channel = self.snowflake()
                self._dm_channels[dm_channel] = actor.id
            payload.update(
                user=actor.payload(),
                channel_id=str(dm_channel),
                channel={
                    "id": str(dm_channel),
                    "type": CHANNEL_DM,
                    "last_message_id": None,
                    "flags": 0,
                    "recipients": [actor.payload()],
                },
                context=1,
                authorizing_integration_owners={"0": "0"},
            )
            return payload
        g = self._resolve_guild(guild)
        if isinstance(channel, FakeChannel):
            ch = channel
        elif channel is not None:
            found = g.channel(int(channel))
            if found is None:
                raise KeyError(f"channel {channel} is not in guild {g.id}")
            ch = found
        else:
            ch = g.text_channel()
        channel_payload = ch.payload(g.id)
        channel_payload["permissions"] = str(self._member_permissions(g, actor))
        payload.update(
            guild_id=str(g.id),
            guild={"id": str(g.id), "locale": g.locale, "features": list(g.features)},
            guild_locale=g.locale,
            channel_id=str(ch.id),
            channel=channel_payload,
            member=member_payload(g, actor, permissions=self._member_permissions(g, actor)),
            context=0,
            authorizing_integration_owners={"0": str(g.id)},
        )
        return payload

    def _find_synced(self, name: str, guild_id: int | None, command_type: int = 1) -> dict[str, Any]:
        scopes = ([guild_id] if guild_id is not None else []) + [None]
        for scope in scopes:
            for command in self._commands.get(scope, []):
                if command["name"] == name and command["type"] == command_type:
                    return command
        where = f"guild {guild_id} or globally" if guild_id is not None else "globally"
        raise LookupError(
            f"the bot has not synced a command named {name!r} {where}; synced: {self._commands!r}"
        )

    def _walk_subcommand(
        self, command: dict[str, Any], subcommand: str | tuple[str, ...] | list[str] | None
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Return (schema options of the leaf, path of subcommand names)."""
        path = subcommand.split() if isinstance(subcommand, str) else list(subcommand or [])
        schema = command.get("options") or []
        for name in path:
            node = next(
                (
                    o
                    for o in schema
                    if o["name"] == name and o["type"] in (OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP)
                ),
                None,
            )
            if node is None:
                raise LookupError(f"/{command['name']} has no subcommand {name!r}")
            schema = node.get("options") or []
        if any(o["type"] in (OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP) for o in schema):
            raise ValueError(
                f"/{command['name']} {' '.join(path)} needs a subcommand (Discord cannot invoke a group)"
            )
        return schema, path

    def _wrap_path(
        self, command: dict[str, Any], path: list[str], leaf_options: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        options = leaf_options
        schema = command.get("options") or []
        nodes = []
        for name in path:
            node = next(o for o in schema if o["name"] == name)
            nodes.append(node)
            schema = node.get("options") or []
        for node in reversed(nodes):
            options = [{"name": node["name"], "type": node["type"], "options": options}]
        return options

    def _option_value(
        self, schema: dict[str, Any], value: Any, guild: FakeGuild | None, resolved: dict[str, dict[str, Any]]
    ) -> Any:
        option_type = schema["type"]
        if option_type == OPT_STRING:
            return str(value)
        if option_type == OPT_INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"option {schema['name']!r} is an integer option; got {value!r}")
            return value
        if option_type == OPT_NUMBER:
            return float(value)
        if option_type == OPT_BOOLEAN:
            return bool(value)
        if option_type in (OPT_USER, OPT_MENTIONABLE) and not isinstance(value, FakeRole):
            user = self._resolve_user(value)
            resolved.setdefault("users", {})[str(user.id)] = user.payload()
            if guild is not None:
                member = member_payload(guild, user, permissions=self._member_permissions(guild, user))
                member.pop("user")
                resolved.setdefault("members", {})[str(user.id)] = member
            return str(user.id)
        if option_type in (OPT_ROLE, OPT_MENTIONABLE):
            role = (
                value
                if isinstance(value, FakeRole)
                else next(r for r in (guild.all_roles() if guild else []) if r.id == int(value))
            )
            resolved.setdefault("roles", {})[str(role.id)] = role.payload()
            return str(role.id)
        if option_type == OPT_CHANNEL:
            ch = value if isinstance(value, FakeChannel) else (guild.channel(int(value)) if guild else None)
            if ch is None or guild is None:
                raise KeyError(f"channel option {schema['name']!r}: unknown channel {value!r}")
            data = ch.payload(guild.id)
            data["permissions"] = str(DEFAULT_APP_PERMISSIONS)
            resolved.setdefault("channels", {})[str(ch.id)] = data
            return str(ch.id)
        raise NotImplementedError(f"option type {option_type} is not supported by FakeDiscord builders")

    def _build_options(
        self,
        command: dict[str, Any],
        schema: list[dict[str, Any]],
        values: Mapping[str, Any],
        guild: FakeGuild | None,
        *,
        focused: str | None = None,
        check_required: bool = True,
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        by_name = {o["name"]: o for o in schema}
        resolved: dict[str, dict[str, Any]] = {}
        out: list[dict[str, Any]] = []
        for name, value in values.items():
            option = by_name.get(name)
            if option is None:
                raise LookupError(f"/{command['name']} has no option {name!r}; options: {sorted(by_name)}")
            if name == focused:
                out.append({"name": name, "type": option["type"], "value": str(value), "focused": True})
                continue
            wire = self._option_value(option, value, guild, resolved)
            choices = option.get("choices")
            if choices and wire not in [c["value"] for c in choices]:
                raise ValueError(
                    f"/{command['name']} {name}: {wire!r} is not one of the choices {[c['value'] for c in choices]}"
                )
            out.append({"name": name, "type": option["type"], "value": wire})
        if check_required:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
            if missing:
                raise ValueError(
                    f"/{command['name']}: required option(s) missing: {missing} (the Discord client would not send this)"
                )
        return out, resolved

    def slash(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        subcommand: str | tuple[str, ...] | list[str] | None = None,
        user: FakeUser | int | str | None = None,
        guild: FakeGuild | int | None = None,
        channel: FakeChannel | int | None = None,
        dm: bool = False,
        locale: str | None = None,
        app_permissions: int = DEFAULT_APP_PERMISSIONS,
    ) -> dict[str, Any]:
        """Build an APPLICATION_COMMAND (type 2) interaction for a command the bot has synced.

        ``subcommand`` is ``"group sub"`` or ``("group", "sub")``. Option values are checked against
        the synced schema (names, choices, required) because the Discord client would never send
        anything else; user/role/channel options get a realistic ``resolved`` block.
        """
        base = self.interaction_base(
            INTERACTION_APPLICATION_COMMAND,
            user=user,
            guild=guild,
            channel=channel,
            dm=dm,
            locale=locale,
            app_permissions=app_permissions,
        )
        guild_obj = None if dm else self._resolve_guild(guild)
        command = self._find_synced(name, None if dm else guild_obj.id if guild_obj else None)
        schema, path = self._walk_subcommand(command, subcommand)
        leaf, resolved = self._build_options(command, schema, options or {}, guild_obj)
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": self._wrap_path(command, path, leaf),
        }
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        base["data"] = data
        return base

    def autocomplete(
        self,
        name: str,
        focused: str,
        value: str,
        options: Mapping[str, Any] | None = None,
        *,
        subcommand: str | tuple[str, ...] | list[str] | None = None,
        user: FakeUser | int | str | None = None,
        guild: FakeGuild | int | None = None,
        channel: FakeChannel | int | None = None,
        dm: bool = False,
    ) -> dict[str, Any]:
        """Build an APPLICATION_COMMAND_AUTOCOMPLETE (type 4) interaction; ``value`` is the partial text."""
        base = self.interaction_base(INTERACTION_AUTOCOMPLETE, user=user, guild=guild, channel=channel, dm=dm)
        guild_obj = None if dm else self._resolve_guild(guild)
        command = self._find_synced(name, guild_obj.id if guild_obj else None)
        schema, path = self._walk_subcommand(command, subcommand)
        if not any(o["name"] == focused and o.get("autocomplete") for o in schema):
            raise LookupError(f"/{name}: option {focused!r} does not have autocomplete enabled")
        values = dict(options or {})
        values[focused] = value
        leaf, resolved = self._build_options(
            command, schema, values, guild_obj, focused=focused, check_required=False
        )
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": self._wrap_path(command, path, leaf),
        }
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        base["data"] = data
        return base

    def _component_message(
        self,
        custom_id: str,
        message: SentMessage | Mapping[str, Any] | None,
        base: dict[str, Any],
        component_type: int,
    ) -> dict[str, Any]:
        if isinstance(message, SentMessage):
            if message.message is None:
                raise ValueError("this SentMessage has no stored message")
            return dict(message.message)
        if message is not None:
            return dict(message)
        # A message from before a restart: only a persistent/dynamic item can handle it.
        component: dict[str, Any] = {"type": component_type, "custom_id": custom_id}
        if component_type == 2:
            component.update(style=1, label="button")
        else:
            component.update(options=[{"label": "x", "value": "x"}], min_values=1, max_values=1)
        stored = self._new_message(
            {
                "content": "(message sent before the test started)",
                "components": [{"type": 1, "components": [component]}],
            },
            [],
            channel_id=int(base["channel_id"]),
            guild_id=int(base["guild_id"]) if base.get("guild_id") else None,
        )
        return self._public(stored)

    def button(
        self,
        custom_id: str,
        *,
        message: SentMessage | Mapping[str, Any] | None = None,
        user: FakeUser | int | str | None = None,
        guild: FakeGuild | int | None = None,
        channel: FakeChannel | int | None = None,
        dm: bool = False,
        component_type: int = 2,
        values: list[str] | None = None,
    ) -> dict[str, Any]:
        """Build a MESSAGE_COMPONENT (type 3) click on ``custom_id``.

        ``message`` is the message carrying the component (a :class:`SentMessage` or message dict);
        without it the fake invents an old bot message, as if the button predates a restart. For
        selects pass ``component_type=3`` and ``values``. The custom_id must exist on the message.
        """
        base = self.interaction_base(
            INTERACTION_MESSAGE_COMPONENT, user=user, guild=guild, channel=channel, dm=dm
        )
        msg = self._component_message(custom_id, message, base, component_type)
        if custom_id not in custom_ids(msg):
            raise LookupError(
                f"custom_id {custom_id!r} is not on message {msg.get('id')}; it has {custom_ids(msg)}"
            )
        if dm:
            msg.pop("guild_id", None)
        base["channel_id"] = msg.get("channel_id", base["channel_id"])
        base["message"] = msg
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if component_type != 2:
            data["values"] = list(values or [])
        base["data"] = data
        return base

    def select(self, custom_id: str, values: list[str], **kwargs: Any) -> dict[str, Any]:
        """A string-select choice; same keywords as :meth:`button`."""
        return self.button(custom_id, component_type=3, values=values, **kwargs)

    def modal_submit(
        self,
        custom_id: str,
        values: Mapping[str, str],
        *,
        user: FakeUser | int | str | None = None,
        guild: FakeGuild | int | None = None,
        channel: FakeChannel | int | None = None,
        dm: bool = False,
        message: SentMessage | Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Build a MODAL_SUBMIT (type 5); ``values`` maps text-input custom_id -> typed text.

        Uses action rows of text inputs (the classic shape, still accepted by discord.py 2.7's
        ``Modal._refresh`` next to Label components).
        """
        base = self.interaction_base(INTERACTION_MODAL_SUBMIT, user=user, guild=guild, channel=channel, dm=dm)
        base["data"] = {
            "custom_id": custom_id,
            "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
                for k, v in values.items()
            ],
        }
        if message is not None:
            base["message"] = (
                dict(message.message or {}) if isinstance(message, SentMessage) else dict(message)
            )
        return base


# --------------------------------------------------------------------------------------------------
# Pointing discord.py at the fake
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def use_fake_discord(fake: FakeDiscord) -> Iterator[FakeDiscord]:
    """Redirect discord.py's REST base and gateway to ``fake`` and restore them afterwards."""
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    apply_discord_endpoints(fake.api_base, fake.gateway_url)
    try:
        yield fake
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


@contextlib.asynccontextmanager
async def running_bot(
    client: discord.Client,
    fake: FakeDiscord,
    *,
    timeout: float = 60.0,  # noqa: ASYNC109 - startup deadline: cold imports of the cogs take 5-15 s on a busy machine
) -> AsyncIterator[discord.Client]:
    """Start ``client`` against ``fake``, wait for ``on_ready``, and close it cleanly on exit.

    Why a task plus a race: ``Client.start`` never returns while connected, and if login fails
    (bad payload, 401) we want that exception, not a silent ``wait_until_ready`` timeout.
    """
    with use_fake_discord(fake):
        start = asyncio.create_task(client.start(fake.token), name="fake-discord-bot")
        ready = asyncio.create_task(client.wait_until_ready(), name="fake-discord-ready")
        try:
            done, _ = await asyncio.wait({start, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if start in done:
                start.result()  # raises the login/connect error
                raise RuntimeError("client.start() returned before the bot became ready")
            if ready not in done:
                raise TimeoutError(
                    f"bot not ready after {timeout}s; requests={[(r.method, r.path, r.status) for r in fake.requests]}"
                )
            yield client
        finally:
            ready.cancel()
            if not client.is_closed():
                await client.close()
            try:
                await asyncio.wait_for(start, timeout=5.0)
            except (asyncio.CancelledError, Exception):
                if not start.done():
                    start.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
