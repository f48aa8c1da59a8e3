"""The fake Discord gateway shards as Discord does (the basis of the multi-process tests).

Raw WebSocket clients stand in for bot processes so that every rule is checked on the wire:
IDENTIFY with ``shard: [id, count]``, a guild's events only on shard ``(guild_id >> 22) % count``,
DMs on shard 0, close 4010 for an invalid shard, 4005 for a second IDENTIFY on one connection,
4003 for a payload before IDENTIFY, 4011 when a shard would hold too many guilds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from bot.client import shard_ids_of
from core.errors import ConfigError
from tests.fakes.discord_payloads import FakeChannel, FakeGuild
from tests.fakes.discord_server import OP_IDENTIFY, OP_REQUEST_GUILD_MEMBERS, FakeDiscord

EPOCH_MS = 1_300_000_000_000  # divisible by 4: guild_on(k) lands on shard k of 4 and k % 2 of 2


def guild_on(shard: int, n: int = 0) -> FakeGuild:
    gid = ((EPOCH_MS + shard + 4 * n) << 22) | 1
    return FakeGuild(id=gid, name=f"shard {shard} #{n}", channels=[FakeChannel(id=gid + 1, name="general")])


class Shard:
    """One raw gateway connection."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.closed_with: int | None = None
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.events.append(json.loads(msg.data))
        self.closed_with = self.ws.close_code

    async def send(self, op: int, data: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": data}))

    async def identify(self, fake: FakeDiscord, shard: list[int] | None) -> None:
        await self.send(OP_IDENTIFY, {"token": fake.token, "intents": 1, "properties": {},
                                      **({"shard": shard} if shard is not None else {})})

    def dispatched(self, event: str) -> list[dict[str, Any]]:
        return [e["d"] for e in self.events if e.get("t") == event]

    async def wait_closed(self) -> int | None:
        await asyncio.wait_for(self._reader, 5)
        return self.closed_with


@asynccontextmanager
async def connect(fake: FakeDiscord, client: str | None = None) -> AsyncIterator[Shard]:
    url = fake.client_gateway_url(client) if client else fake.gateway_url
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        shard = Shard(ws)
        try:
            yield shard
        finally:
            shard._reader.cancel()


async def _until(predicate: Any, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a test helper's deadline
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polls a list another task fills
            await asyncio.sleep(0.01)


async def test_guild_events_and_interactions_go_to_the_owning_shard_only() -> None:
    guilds = [guild_on(k) for k in range(4)] + [guild_on(1, n=1)]
    async with FakeDiscord(guilds=guilds, shards=2) as fake, \
            connect(fake, "p0") as s0, connect(fake, "p1") as s1:
        await s0.identify(fake, [0, 2])
        await s1.identify(fake, [1, 2])
        await fake.wait_until_ready(shards=2)
        assert fake.sessions_by_client() == {"p0": [0], "p1": [1]}
        assert s0.dispatched("READY")[0]["shard"] == [0, 2]
        assert {int(g["id"]) for g in s0.dispatched("GUILD_CREATE")} == {guilds[0].id, guilds[2].id}
        assert {int(g["id"]) for g in s1.dispatched("GUILD_CREATE")} == {guilds[1].id, guilds[3].id, guilds[4].id}

        for guild in guilds:
            record = await fake.dispatch(fake.button("x:y", guild=guild))
            owner = (guild.id >> 22) % 2
            assert record.delivered_to == [(owner, f"p{owner}")]
        dm = await fake.dispatch(fake.button("x:y", dm=True))
        assert dm.delivered_to == [(0, "p0")]  # DMs arrive on shard 0 only
        await _until(lambda: len(s0.dispatched("INTERACTION_CREATE")) == 3
                     and len(s1.dispatched("INTERACTION_CREATE")) == 3)
        assert {int(i["guild_id"]) for i in s1.dispatched("INTERACTION_CREATE")} == {
            guilds[1].id, guilds[3].id, guilds[4].id}
        assert fake.duplicate_shard_sessions == []


@pytest.mark.parametrize("shard", [[2, 2], [-1, 2], [0, 0], [1], ["0", 2]])
async def test_an_invalid_shard_is_closed_with_4010(shard: list[Any]) -> None:
    async with FakeDiscord(guilds=[guild_on(0)]) as fake, connect(fake) as s:
        await s.identify(fake, shard)
        assert await s.wait_closed() == 4010
        assert fake.gateway_closes == [(4010, "Invalid shard.")]


async def test_a_second_identify_on_one_connection_is_closed_with_4005() -> None:
    async with FakeDiscord(guilds=[guild_on(0)]) as fake, connect(fake) as s:
        await s.identify(fake, [0, 1])
        await fake.wait_until_ready(shards=1)
        await s.identify(fake, [0, 1])
        assert await s.wait_closed() == 4005


async def test_a_payload_before_identify_is_closed_with_4003() -> None:
    async with FakeDiscord(guilds=[guild_on(0)]) as fake, connect(fake) as s:
        await s.send(OP_REQUEST_GUILD_MEMBERS, {"guild_id": str(guild_on(0).id), "query": "", "limit": 0})
        assert await s.wait_closed() == 4003


async def test_too_many_guilds_for_one_shard_is_closed_with_4011() -> None:
    async with FakeDiscord(guilds=[guild_on(0), guild_on(1)], max_guilds_per_shard=1) as fake:
        async with connect(fake) as s:
            await s.identify(fake, [0, 1])
            assert await s.wait_closed() == 4011
        async with connect(fake) as s0, connect(fake) as s1:  # sharded, each holds one guild: accepted
            await s0.identify(fake, [0, 2])
            await s1.identify(fake, [1, 2])
            await fake.wait_until_ready(shards=2)


async def test_two_sessions_claiming_one_shard_both_get_its_events_and_only_one_answer_counts() -> None:
    """Two processes started with the same DISCORD_SHARD_IDS: Discord accepts both sessions and both
    receive the shard's interactions; the fake records the duplicate and refuses the second answer."""
    async with FakeDiscord(guilds=[guild_on(0)]) as fake, connect(fake, "a") as a, connect(fake, "b") as b:
        await a.identify(fake, [0, 1])
        await fake.wait_until_ready(shards=1)
        await b.identify(fake, [0, 1])
        await fake.wait_until_ready(shards=2)
        assert fake.duplicate_shard_sessions == [(0, ["a", "b"])]
        record = await fake.dispatch(fake.button("x:y", guild=guild_on(0)))
        assert sorted(record.delivered_to) == [(0, "a"), (0, "b")]
        async with aiohttp.ClientSession() as http:
            for client in ("a", "b"):
                url = f"{fake.client_api_base(client)}/interactions/{record.id}/{record.token}/callback"
                async with http.post(url, json={"type": 6}) as resp:
                    assert resp.status == (204 if client == "a" else 400)
        assert [(c.client, c.accepted, c.error_code) for c in record.callbacks] == [("a", True, None),
                                                                                   ("b", False, 40060)]


@pytest.mark.parametrize(("count", "ids", "expected"), [(4, None, None), (4, "3,0", [0, 3]), (4, " 1 ", [1])])
def test_shard_ids_are_read_from_the_settings(count: int, ids: str | None, expected: list[int] | None) -> None:
    assert shard_ids_of(count, ids) == expected


@pytest.mark.parametrize(("count", "ids"), [(4, "4"), (4, "-1"), (4, "a,b"), (4, ","), (0, None)])
def test_bad_shard_settings_are_one_clear_error_at_start(count: int, ids: str | None) -> None:
    with pytest.raises(ConfigError, match="DISCORD_SHARD"):
        shard_ids_of(count, ids)


async def test_shard_ids_without_a_count_are_refused(services: Any) -> None:
    """A second compose service started without DISCORD_SHARD_COUNT would run unsharded: every
    guild's events twice. Refused at start instead."""
    from dataclasses import replace

    from bot.client import create_bot

    settings = services.settings.model_copy(update={"discord_shard_ids": "1", "discord_shard_count": None})
    with pytest.raises(ConfigError, match="DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT"):
        create_bot(replace(services, settings=settings))
