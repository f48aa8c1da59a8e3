"""Load, end to end: 200 interactions of mixed commands hit the real bot at once through the fake Discord.

What this proves (on SQLite, or PostgreSQL + Redis with SONANCE_TEST_* set):
- every one of the 200 is acknowledged within Discord's 3 s deadline (the fake also enforces it:
  a late callback gets 10062, a second one 40060, both fail `assert_clean`);
- none is answered with an error: no apology ("Sorry, something went wrong"), no rejected callback,
  no unknown route or handler crash in the fake, no ERROR log from the bot;
- per-user cooldowns are not what is measured: the roster (`tests.perf.soak.Roster`) never asks one member
  for more than their cooldown allows, so a refusal would be a real bug.

The mix (`tests.perf.soak.CommandMix`): /recommend, /similar, /whoknows, /top (own and a member's), /compat,
/leaderboard, /matches, /account, /playlist, autocomplete of four commands, and 👍/👎/"Why?" clicks
by their owners on items shown by /recommend answers before the burst. The world is the bot tests'
world plus 40 synthetic members with histories (45 askers), seeded through the product's own paths.

Before the burst, one request of each slow kind runs alone (the recommender trains on its first
request, the compat space is built on its first request): a running bot is warm, and the cold start
is covered by the cogs' own tests. p50/p95/max of the acknowledgement and final latencies are printed
(`pytest -s`) and carried in the assertion messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.client import create_bot
from core.services import Services, build_services
from tests.bot.world import CATALOG, GUILD_ID
from tests.conftest import backend_name, make_settings
from tests.fakes.discord_server import FakeDiscord, running_bot
from tests.perf.soak import (
    ACK_DEADLINE_S,
    APOLOGY_MARK,
    CommandMix,
    Outcome,
    latency_summary,
    load_fakes,
    load_world,
    run_one,
    seed_load_world,
)

BURST = 200
EXTRA_MEMBERS = 40
#: The burst, as a rotation of kinds (every kind appears ~BURST/len times).
PLAN = ("recommend", "whoknows", "top", "compat", "autocomplete", "feedback", "leaderboard", "matches",
        "account", "similar", "autocomplete", "whoknows", "top", "feedback", "why", "playlist")
#: Each warm-up request runs alone; /recommend several times, so there are answers to click on.
WARMUP = ("recommend",) * 8 + ("compat", "similar", "whoknows", "top", "leaderboard", "matches", "playlist")

pytestmark = pytest.mark.timeout(120)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def load_world_services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    settings = make_settings(database_url, tmp_path, DISCORD_DEV_GUILD_ID=str(GUILD_ID),
                             SONANCE_PUBLIC_BASE_URL="http://127.0.0.1:8080")
    services = await build_services(settings, upgrade_schema=False)
    fakes = load_fakes()
    _, _, members = load_world(fakes, EXTRA_MEMBERS)
    await seed_load_world(services, fakes, members)
    yield services
    await services.close()


@pytest.fixture
async def loaded_fake(load_world_services: Services) -> AsyncIterator[FakeDiscord]:
    guilds, users, _ = load_world(load_fakes(), EXTRA_MEMBERS)
    async with FakeDiscord(guilds=guilds, users=users) as fake:
        bot = create_bot(load_world_services, guild_ready_timeout=0.05)
        async with running_bot(bot, fake, timeout=30.0):
            yield fake


def _figures(outcomes: list[Outcome]) -> str:
    ack = latency_summary([o.ack_s for o in outcomes])
    final = latency_summary([o.final_s for o in outcomes])
    kinds: dict[str, int] = {}
    for o in outcomes:
        kinds[o.kind] = kinds.get(o.kind, 0) + 1
    return (f"[{backend_name()}] {len(outcomes)} interactions at once: ack ms p50 {ack['p50']} p95 {ack['p95']} "
            f"max {ack['max']}; final ms p50 {final['p50']} p95 {final['p95']} max {final['max']}; mix {kinds}")


async def test_200_concurrent_mixed_interactions_are_all_acknowledged_in_time(loaded_fake: FakeDiscord) -> None:
    fake = loaded_fake
    askers = [u for u in fake.users.values() if not u.bot and u.username != "erin"]  # erin linked nothing
    assert len(askers) == 4 + EXTRA_MEMBERS
    mix = CommandMix(fake, askers, list(CATALOG), seed=5)
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    try:
        for kind in WARMUP:
            payload = mix.build(kind)
            assert payload is not None, kind
            outcome, record = await run_one(fake, kind, payload, final_wait_s=60.0)
            assert outcome.error is None, f"warm-up /{kind}: {outcome.error}"
            mix.remember(kind, record)
        assert len(mix.shown) >= 8, "warm-up /recommend answers should carry feedback buttons"

        planned: list[tuple[str, dict[str, Any]]] = []
        for i in range(BURST):
            kind = PLAN[i % len(PLAN)]
            payload = mix.build(kind)
            planned.append((kind, payload) if payload is not None else mix.next())
        results = await asyncio.gather(*(run_one(fake, kind, payload) for kind, payload in planned))
    finally:
        logging.getLogger().removeHandler(errors)

    outcomes = [o for o, _ in results]
    figures = _figures(outcomes)
    print("\n" + figures)
    for kind in sorted({o.kind for o in outcomes}):
        mine = [o for o in outcomes if o.kind == kind]
        print(f"  {kind:<12} ack ms {latency_summary([o.ack_s for o in mine])}  "
              f"final ms {latency_summary([o.final_s for o in mine])}")
    late = [(o.kind, (r.payload.get("data") or {}).get("name"), o.ack_s, o.error) for o, r in results
            if o.ack_s is None or o.ack_s >= ACK_DEADLINE_S]
    assert not late, f"not acknowledged within {ACK_DEADLINE_S} s: {late}\n{figures}"
    failed = [(o.kind, o.error) for o in outcomes if o.error]
    assert not failed, f"error responses: {failed[:10]}\n{figures}"
    assert not any(o.cooldown for o in outcomes), f"the roster should never trip a cooldown\n{figures}"
    apologies = [(r.payload.get("data"), e.body.get("content")) for _, r in results for e in r.events
                 if hasattr(e, "kind") and APOLOGY_MARK in (e.body.get("content") or "")]
    assert not apologies, f"apologies: {apologies[:5]}\n{figures}"
    no_answer = [o.kind for o in outcomes if o.final_s is None]
    assert not no_answer, f"no final answer: {no_answer}\n{figures}"
    assert {o.kind for o in outcomes} >= {"recommend", "whoknows", "top", "compat", "leaderboard", "matches",
                                          "account", "similar", "autocomplete", "feedback", "why"}, figures
    assert not fake.internal_errors, f"{fake.internal_errors}\n{figures}"
    fake.assert_clean()
    assert not errors.records, (f"ERROR logs under load: {[r.getMessage() for r in errors.records[:5]]}\n"
                                f"{figures}")
