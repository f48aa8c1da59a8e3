"""Listening stats inside a guild: who knows an artist, and a member's top artists for a period.

Privacy is decided in core, not in the cog: only members that `UserRepository.visible_member_ids`
returns ever appear, and names go through `display_names` so `hide_username` is respected. A member
who cannot be shown gets one uniform answer (`core.access.shown_member`), so the reply never
reveals whether they are hidden or simply unknown.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.access import shown_member
from core.asker import Asker
from core.db.repositories import CatalogRepository, ListenRepository, UserRepository
from core.db.repositories.public_facts import PublicFactsRepository
from core.db.types import utcnow
from core.errors import GuildOnly, InvalidInput, NotFound
from core.fuzzy import complete_artists, did_you_mean, suggest_artist
from core.markup import literal
from core.matching import artist_key
from core.services import Services

log = logging.getLogger(__name__)

#: /top periods (Last.fm's names, which users know) -> days back; None means all time.
PERIODS: dict[str, int | None] = {
    "7day": 7, "1month": 30, "3month": 90, "6month": 180, "12month": 365, "overall": None,
}
PERIOD_LABELS: dict[str, str] = {
    "7day": "last 7 days", "1month": "last month", "3month": "last 3 months", "6month": "last 6 months",
    "12month": "last 12 months", "overall": "all time",
}
WHO_KNOWS_LIMIT = 15
TOP_LIMIT = 10
AUTOCOMPLETE_LIMIT = 25  # Discord's maximum number of choices
AUTOCOMPLETE_BUDGET_S = 2.0  # Discord drops an autocomplete answer after 3 s; leave room for the reply


@dataclass(frozen=True)
class Listener:
    user_id: int
    name: str  # safe to show: "a listener" when the member hides their username
    plays: int


@dataclass(frozen=True)
class WhoKnows:
    artist: str
    artist_url: str | None
    listeners: tuple[Listener, ...]


@dataclass(frozen=True)
class TopArtists:
    owner_name: str | None  # None: the asker themself ("your")
    period: str
    period_label: str
    artists: tuple[tuple[str, int], ...]
    cover_url: str | None = None  # a cover of the top artist's album this listener plays most, if known


class StatsService:
    """Read-only guild stats over the listens and play counts that sync and imports keep."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def artist_choices(self, text: str) -> list[str]:
        """Autocomplete: catalog artists whose normalised name starts with what was typed.

        Bounded in time and size because Discord discards late or oversized answers; on timeout
        the user simply sees no suggestions and can still type a name.
        """
        key = artist_key(text) if text.strip() else ""
        try:
            async with asyncio.timeout(AUTOCOMPLETE_BUDGET_S):
                async with self.services.session() as session:
                    artists = await CatalogRepository(session).search_artists(key, limit=AUTOCOMPLETE_LIMIT)
        except TimeoutError:
            log.warning("artist autocomplete timed out", extra={"prefix_len": len(text)})
            return []
        names: list[str] = []
        for artist in artists:
            if artist.name[:100] not in names:  # a choice name/value is at most 100 characters
                names.append(artist.name[:100])
        if not names:  # nothing starts with it: a typo? offer the closest names
            names = [n[:100] for n in await complete_artists(self.services, text, [], AUTOCOMPLETE_LIMIT)]
        return names[:AUTOCOMPLETE_LIMIT]

    async def who_knows(self, asker: Asker, artist: str) -> WhoKnows:
        """Visible members of the asker's guild who play `artist`, most plays first."""
        guild_id = asker.guild_id
        if guild_id is None:
            raise GuildOnly()
        if not artist.strip():
            raise InvalidInput("Tell me which artist, e.g. `/whoknows artist:Radiohead`.")
        async with self.services.session() as session:
            found = await CatalogRepository(session).artist_by_key(artist_key(artist))
            if found is None:
                suggestion = await suggest_artist(self.services, artist)
                unknown = f"I don't know an artist called **{literal(artist.strip()[:100])}** yet."
                raise NotFound(did_you_mean(unknown, suggestion) if suggestion
                               else f"{unknown} Pick one from the suggestions while typing.")
            users = UserRepository(session)
            visible = await users.visible_member_ids(guild_id)
            rows = await ListenRepository(session).who_knows(found.id, visible, limit=WHO_KNOWS_LIMIT)
            names = await users.display_names([u for u, _ in rows])
        listeners = tuple(Listener(u, names.get(u, "a listener"), plays) for u, plays in rows)
        return WhoKnows(found.name, found.lastfm_url, listeners)

    async def top_artists(self, asker: Asker, period: str, *,
                          member_discord_id: int | None = None, member_name: str = "That member",
                          now: datetime | None = None) -> TopArtists:
        """The asker's (or a visible member's) most played artists in `period`.

        Another member is shown only when visible in this guild; anything else (hidden, never used
        Sonance here, asked from a DM) gets the same "keeps their listening private" answer.
        """
        if period not in PERIODS:
            raise InvalidInput(f"Unknown period {period!r}; pick one of {', '.join(PERIODS)}.")
        days = PERIODS[period]
        since = None if days is None else (now or utcnow()) - timedelta(days=days)
        async with self.services.session() as session:
            target_id, owner_name = asker.user_id, None
            if member_discord_id is not None:
                target_id = await shown_member(session, asker.guild_id, asker, member_discord_id, member_name)
                if target_id != asker.user_id:
                    names = await UserRepository(session).display_names([target_id])
                    owner_name = names.get(target_id, "a listener")
            artists = await ListenRepository(session).top_artists(target_id, since, limit=TOP_LIMIT)
            cover = await PublicFactsRepository(session).listener_cover(target_id, [n for n, _ in artists[:3]])
        return TopArtists(owner_name, period, PERIOD_LABELS[period], tuple(artists), cover)
