"""A small, realistic world for end-to-end bot tests: Discord members with listening histories in a
guild, plus dataset listeners so that collaborative models have something to learn from.

Every cog test uses the same world, so assertions can name artists and people.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.db.repositories import AccountRepository, CatalogRepository, ListenRepository, UserRepository
from core.db.repositories.listens import PlayRow
from core.matching import artist_key
from core.services import Services
from core.sync.ingest import RawListen, ingest_listens
from tests.fakes.discord_payloads import FakeChannel, FakeGuild, FakeUser

GUILD_ID = 1_300_000_000_000_001_000
OTHER_GUILD_ID = 1_300_000_000_000_002_000
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

#: artist -> tags; genres cluster so that taste is learnable
CATALOG: dict[str, list[str]] = {
    "Radiohead": ["alternative", "art rock", "electronic"],
    "Portishead": ["trip-hop", "electronic", "female vocalists"],
    "Massive Attack": ["trip-hop", "electronic"],
    "Björk": ["electronic", "female vocalists", "art pop"],
    "Boards of Canada": ["electronic", "idm", "ambient"],
    "Aphex Twin": ["electronic", "idm"],
    "Burial": ["electronic", "dubstep", "ambient"],
    "Slowdive": ["shoegaze", "dream pop"],
    "My Bloody Valentine": ["shoegaze", "noise pop"],
    "Cocteau Twins": ["dream pop", "shoegaze", "female vocalists"],
    "Ride": ["shoegaze", "britpop"],
    "Beach House": ["dream pop", "indie"],
    "Metallica": ["metal", "thrash metal"],
    "Slayer": ["metal", "thrash metal"],
    "Iron Maiden": ["metal", "heavy metal"],
    "Megadeth": ["metal", "thrash metal"],
    "Taylor Swift": ["pop", "female vocalists"],
    "Dua Lipa": ["pop", "dance"],
    "Kendrick Lamar": ["hip-hop", "rap"],
    "Kanye West": ["hip-hop", "rap"],
}
CLUSTERS = {
    "electronic": ["Radiohead", "Portishead", "Massive Attack", "Björk", "Boards of Canada", "Aphex Twin", "Burial"],
    "shoegaze": ["Slowdive", "My Bloody Valentine", "Cocteau Twins", "Ride", "Beach House", "Radiohead"],
    "metal": ["Metallica", "Slayer", "Iron Maiden", "Megadeth"],
    "pop": ["Taylor Swift", "Dua Lipa", "Kendrick Lamar", "Kanye West"],
}


@dataclass(frozen=True)
class Member:
    fake: FakeUser
    taste: str  # a CLUSTERS key
    artists: tuple[str, ...]


MEMBERS = {
    "alice": Member(FakeUser(id=1_300_000_000_000_000_101, username="alice", global_name="Alice"),
                    "electronic", ("Radiohead", "Portishead", "Massive Attack", "Boards of Canada")),
    "bob": Member(FakeUser(id=1_300_000_000_000_000_102, username="bob", global_name="Bob", dms_open=False),
                  "electronic", ("Radiohead", "Portishead", "Aphex Twin", "Björk")),
    "carol": Member(FakeUser(id=1_300_000_000_000_000_103, username="carol", global_name="Carol"),
                    "shoegaze", ("Slowdive", "My Bloody Valentine", "Ride", "Radiohead")),
    "dave": Member(FakeUser(id=1_300_000_000_000_000_104, username="dave", global_name="Dave"),
                   "metal", ("Metallica", "Slayer", "Iron Maiden")),
    "erin": Member(FakeUser(id=1_300_000_000_000_000_105, username="erin", global_name="Erin"),
                   "pop", ()),  # linked nothing yet
}


def fake_world() -> tuple[list[FakeGuild], list[FakeUser]]:
    guilds = [
        FakeGuild(id=GUILD_ID, name="Sonance Dev", channels=[FakeChannel(id=GUILD_ID + 1, name="general")]),
        FakeGuild(id=OTHER_GUILD_ID, name="Elsewhere", channels=[FakeChannel(id=OTHER_GUILD_ID + 1, name="general")]),
    ]
    return guilds, [m.fake for m in MEMBERS.values()]


async def seed_world(services: Services, *, dataset_listeners: int = 60, seed: int = 7) -> dict[str, int]:
    """Create the members (linked to Last.fm, with listens) and dataset listeners; returns name -> user id."""
    rng = random.Random(seed)
    ids: dict[str, int] = {}
    async with services.session() as session:
        users = UserRepository(session)
        catalog = CatalogRepository(session)
        artist_ids = await catalog.ensure_artists(
            {"name_key": artist_key(a), "name": a, "lastfm_url": f"https://www.last.fm/music/{a.replace(' ', '+')}"}
            for a in CATALOG)
        tag_ids = await catalog.ensure_tags(t for tags in CATALOG.values() for t in tags)
        await catalog.set_item_tags("artist", "lastfm", {
            artist_ids[artist_key(a)]: {tag_ids[t]: 100.0 - 10 * i for i, t in enumerate(tags)}
            for a, tags in CATALOG.items()})
        for name, member in MEMBERS.items():
            user = await users.get_or_create_discord(member.fake.id, member.fake.global_name)
            ids[name] = user.id
            if not member.artists:
                continue
            await users.ensure_membership(GUILD_ID, user.id)
            await AccountRepository(session, services.cipher).link(user.id, "lastfm", f"{name}_fm")
            plays = [RawListen(artist=a, track=f"{a} song {k}", album=f"{a} album", source="lastfm",
                               played_at=NOW - timedelta(days=rank * 3 + k, minutes=k))
                     for rank, a in enumerate(member.artists) for k in range(12 - 2 * rank)]
            await ingest_listens(session, user.id, plays)
        refs = [f"dataset:{i}" for i in range(dataset_listeners)]
        listener_ids = await users.ensure_dataset_users("import", refs)
        rows = []
        for ref in refs:
            cluster = rng.choice(list(CLUSTERS))
            for artist in rng.sample(CLUSTERS[cluster], k=min(4, len(CLUSTERS[cluster]))):
                rows.append(PlayRow(listener_ids[ref], artist_ids[artist_key(artist)], rng.randint(5, 300), NOW))
        await ListenRepository(session).set_artist_plays(rows)
    return ids
