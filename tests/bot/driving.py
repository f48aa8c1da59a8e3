"""Driving the running bot from a test: send a slash command or click a button through the fake
Discord, wait for the answer, and check Discord's rules every time (acknowledged within 3 s,
never acknowledged twice)."""

from __future__ import annotations

import json

from tests.fakes.discord_server import ACK_DEADLINE_S, FakeDiscord, InteractionRecord, SentMessage


def check_acknowledged(record: InteractionRecord) -> None:
    assert record.ack_latency is not None and record.ack_latency < ACK_DEADLINE_S
    assert not record.rejected_callbacks


async def run(fake: FakeDiscord, name: str, user: str, options: dict[str, object] | None = None,
              ) -> tuple[InteractionRecord, SentMessage]:
    record = await fake.dispatch(fake.slash(name, options=options or {}, user=fake.user(user)))
    final = await record.wait_final(timeout=60.0)
    check_acknowledged(record)
    return record, final


async def click(fake: FakeDiscord, custom_id: str, user: str, message: SentMessage | None = None) -> SentMessage:
    record = await fake.dispatch(fake.button(custom_id, message=message, user=fake.user(user)))
    final = await record.wait_final(timeout=30.0)
    check_acknowledged(record)
    return final


def everything_sent(fake: FakeDiscord) -> str:
    """Every byte of text the bot sent anywhere (bodies of all requests), for leak checks."""
    return json.dumps([r.json for r in fake.requests], default=str, ensure_ascii=False)
