"""Wire-format builders for the fake Discord server.

Every function returns a JSON-ready ``dict`` shaped like what Discord really sends (API v10, as of
2026). They live apart from the server so tests can build odd payloads (a user with DMs closed, a
guild on another shard) without starting anything, and so the shapes are reviewed in one place:
discord.py indexes many keys with ``data['key']``, so a missing field is a ``KeyError`` deep inside
the gateway reader, which the library logs and swallows — the test then just times out. Keeping
these builders complete is cheaper than debugging that.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits used for realistic defaults (https://discord.com/developers/docs/topics/permissions).
PERM_ADD_REACTIONS = 1 << 6
PERM_VIEW_CHANNEL = 1 << 10
PERM_SEND_MESSAGES = 1 << 11
PERM_EMBED_LINKS = 1 << 14
PERM_ATTACH_FILES = 1 << 15
PERM_READ_MESSAGE_HISTORY = 1 << 16
PERM_USE_EXTERNAL_EMOJIS = 1 << 18
PERM_USE_APPLICATION_COMMANDS = 1 << 31
PERM_ADMINISTRATOR = 1 << 3

#: What a plain member typically holds in a text channel.
DEFAULT_MEMBER_PERMISSIONS = (
    PERM_ADD_REACTIONS
    | PERM_VIEW_CHANNEL
    | PERM_SEND_MESSAGES
    | PERM_EMBED_LINKS
    | PERM_ATTACH_FILES
    | PERM_READ_MESSAGE_HISTORY
    | PERM_USE_EXTERNAL_EMOJIS
    | PERM_USE_APPLICATION_COMMANDS
)
#: What the bot holds in a channel unless a test says otherwise (``app_permissions``).
DEFAULT_APP_PERMISSIONS = DEFAULT_MEMBER_PERMISSIONS

#: Discord's current default upload limit for bots (10 MiB); discord.py reads it from every interaction.
DEFAULT_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

# Channel types.
CHANNEL_GUILD_TEXT = 0
CHANNEL_DM = 1
CHANNEL_GUILD_VOICE = 2
CHANNEL_GUILD_CATEGORY = 4

# Interaction types.
INTERACTION_PING = 1
INTERACTION_APPLICATION_COMMAND = 2
INTERACTION_MESSAGE_COMPONENT = 3
INTERACTION_AUTOCOMPLETE = 4
INTERACTION_MODAL_SUBMIT = 5

# Application command option types.
OPT_SUB_COMMAND = 1
OPT_SUB_COMMAND_GROUP = 2
OPT_STRING = 3
OPT_INTEGER = 4
OPT_BOOLEAN = 5
OPT_USER = 6
OPT_CHANNEL = 7
OPT_ROLE = 8
OPT_MENTIONABLE = 9
OPT_NUMBER = 10
OPT_ATTACHMENT = 11


class SnowflakeFactory:
    """Generates increasing, well-formed snowflakes.

    Real-looking IDs matter: discord.py derives ``created_at`` from them, and shard routing uses
    ``(guild_id >> 22) % shard_count``, so an ID like ``1`` would silently land every guild on shard 0.
    """

    def __init__(self, worker: int = 1) -> None:
        self._counter = itertools.count(1)
        self._worker = worker & 0x1F
        self._last = 0

    def __call__(self) -> int:
        ms = max(int(time.time() * 1000) - DISCORD_EPOCH_MS, self._last)
        self._last = ms
        return (ms << 22) | (self._worker << 17) | (next(self._counter) & 0xFFF)


def snowflake_for_shard(index: int, shard_id: int, shard_count: int) -> int:
    """Return a stable guild-like ID that Discord would route to ``shard_id``.

    Handy for sharding tests, which need guilds spread over known shards.
    """
    base = (1_100_000_000_000 + index * shard_count + shard_id) << 22
    return base | index


def iso_now() -> str:
    """Discord timestamps are ISO-8601 with an offset; discord.py parses them with ``fromisoformat``."""
    return datetime.now(UTC).isoformat()


@dataclass
class FakeUser:
    """A Discord user known to the fake. ``dms_open=False`` makes DMs to them fail with 50007."""

    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    dms_open: bool = True
    locale: str = "en-US"

    def payload(self) -> dict[str, Any]:
        """The public user object (no email/flags a bot cannot see)."""
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "avatar_decoration_data": None,
            "banner": None,
            "accent_color": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "primary_guild": None,
            "collectibles": None,
        }


@dataclass
class FakeChannel:
    """A guild channel. ``type`` uses Discord's integers (0 text, 2 voice, 4 category)."""

    id: int
    name: str
    type: int = CHANNEL_GUILD_TEXT
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    nsfw: bool = False

    def payload(self, guild_id: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "flags": 0,
        }
        if self.type == CHANNEL_GUILD_TEXT:
            data.update(
                topic=self.topic,
                nsfw=self.nsfw,
                last_message_id=None,
                rate_limit_per_user=0,
                default_auto_archive_duration=1440,
                last_pin_timestamp=None,
            )
        elif self.type == CHANNEL_GUILD_VOICE:
            data.update(
                nsfw=self.nsfw,
                bitrate=64000,
                user_limit=0,
                rtc_region=None,
                video_quality_mode=1,
                last_message_id=None,
                rate_limit_per_user=0,
            )
        return data


@dataclass
class FakeRole:
    """A guild role. The ``@everyone`` role (id == guild id) is added automatically."""

    id: int
    name: str
    permissions: int = 0
    position: int = 1
    color: int = 0
    managed: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }


@dataclass
class FakeGuild:
    """A guild the bot is in.

    ``members`` lists user IDs (``None`` = every configured user); the bot itself is always a
    member. ``member_roles`` maps a user ID to role IDs; ``owner_id`` defaults to the first member.
    """

    id: int
    name: str
    channels: list[FakeChannel] = field(default_factory=list)
    roles: list[FakeRole] = field(default_factory=list)
    members: list[int] | None = None
    member_roles: dict[int, list[int]] = field(default_factory=dict)
    owner_id: int | None = None
    locale: str = "en-US"
    everyone_permissions: int = DEFAULT_MEMBER_PERMISSIONS
    features: list[str] = field(default_factory=list)

    def text_channel(self) -> FakeChannel:
        """The first text channel: where interactions happen unless a test picks another."""
        for channel in self.channels:
            if channel.type == CHANNEL_GUILD_TEXT:
                return channel
        raise ValueError(f"guild {self.id} has no text channel")

    def channel(self, channel_id: int) -> FakeChannel | None:
        return next((c for c in self.channels if c.id == channel_id), None)

    def all_roles(self) -> list[FakeRole]:
        everyone = FakeRole(id=self.id, name="@everyone", permissions=self.everyone_permissions, position=0)
        return [everyone, *self.roles]


def user_payload(user: FakeUser) -> dict[str, Any]:
    return user.payload()


def bot_user_payload(user: FakeUser) -> dict[str, Any]:
    """``GET /users/@me`` for a bot: the public shape plus the private fields of a ClientUser."""
    data = user.payload()
    data.update(verified=True, mfa_enabled=False, locale="en-US", email=None, flags=0, premium_type=0)
    return data


def member_payload(guild: FakeGuild, user: FakeUser, *, permissions: int | None = None) -> dict[str, Any]:
    """Guild member object; ``permissions`` is only present inside interactions (channel-resolved)."""
    data: dict[str, Any] = {
        "user": user.payload(),
        "nick": None,
        "avatar": None,
        "banner": None,
        "roles": [str(r) for r in guild.member_roles.get(user.id, [])],
        "joined_at": "2024-01-01T00:00:00.000000+00:00",
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
        "avatar_decoration_data": None,
    }
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def guild_payload(guild: FakeGuild, *, owner_id: int) -> dict[str, Any]:
    """The guild object as ``GET /guilds/{id}`` returns it (no members/channels)."""
    text = next((c for c in guild.channels if c.type == CHANNEL_GUILD_TEXT), None)
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "icon_hash": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": str(owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "widget_enabled": False,
        "widget_channel_id": None,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [r.payload() for r in guild.all_roles()],
        "emojis": [],
        "features": list(guild.features),
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": str(text.id) if text else None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "max_presences": None,
        "max_members": 500_000,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": guild.locale,
        "public_updates_channel_id": None,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "nsfw_level": 0,
        "stickers": [],
        "premium_progress_bar_enabled": False,
        "safety_alerts_channel_id": None,
        "incidents_data": None,
    }


def guild_create_payload(guild: FakeGuild, members: list[dict[str, Any]], *, owner_id: int) -> dict[str, Any]:
    """GUILD_CREATE: the guild object plus the gateway-only extras discord.py reads at startup.

    ``member_count`` equals ``len(members)`` on purpose: discord.py then considers the guild already
    chunked and does not send REQUEST_GUILD_MEMBERS (op 8). The fake still answers op 8.
    """
    data = guild_payload(guild, owner_id=owner_id)
    data.update(
        joined_at="2024-01-01T00:00:00.000000+00:00",
        large=False,
        unavailable=False,
        member_count=len(members),
        voice_states=[],
        members=members,
        channels=[c.payload(guild.id) for c in guild.channels],
        threads=[],
        presences=[],
        stage_instances=[],
        guild_scheduled_events=[],
        soundboard_sounds=[],
        lazy=True,
    )
    return data


def dm_channel_payload(channel_id: int, recipient: FakeUser) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": CHANNEL_DM,
        "last_message_id": None,
        "flags": 0,
        "recipients": [recipient.payload()],
    }


def attachment_payload(
    attachment_id: int, filename: str, data: bytes, content_type: str | None, base_url: str
) -> dict[str, Any]:
    return {
        "id": str(attachment_id),
        "filename": filename,
        "size": len(data),
        "url": f"{base_url}/attachments/{attachment_id}/{filename}",
        "proxy_url": f"{base_url}/attachments/{attachment_id}/{filename}",
        "content_type": content_type,
    }


def error_body(code: int, message: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """Discord's JSON error envelope; discord.py reads ``code``/``message`` into HTTPException."""
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return body
