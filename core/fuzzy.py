"""Fuzzy name matching: "did you mean Radiohead?" for a misspelt artist, and typo-tolerant
autocompletes (artists for /similar, tags for /recommend).

Why rapidfuzz: edit-distance scoring over tens of thousands of names has to take milliseconds to
fit an autocomplete's 3 s deadline; rapidfuzz does it in C++ (`process.extract` over a list) with
the usual scorers (Levenshtein ratio, WRatio), is MIT-licensed, maintained and has wheels for every
platform we run on. `difflib` is pure Python and about a hundred times slower at this size.

Names are compared by their normalised key (`core.matching.artist_key`, lower-case tags), so case,
accents and punctuation never decide a match. Candidates are held in memory per process, most
played first, so that between two equally close names the better-known one is suggested; the index
is rebuilt after `REFRESH_S` so new artists become suggestible.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process

from core.matching import artist_key
from core.tags import is_listener_tag, tag_key

if TYPE_CHECKING:
    from core.services import Services

#: A suggestion must be at least this close (Levenshtein ratio, 0-100): "radiohed" -> "radiohead"
#: scores 94, "portshead" -> "portishead" 95; unrelated names stay far below.
SUGGEST_CUTOFF = 80.0
#: Autocomplete fill-ins may be looser (WRatio also rewards a partial match of what is typed).
COMPLETE_CUTOFF = 75.0
#: How long an index is trusted before it is rebuilt from the database.
REFRESH_S = 600.0
#: Upper bound on names held per index (the most played ones), to bound memory on huge catalogs.
MAX_NAMES = 200_000


@dataclass(frozen=True)
class FuzzyIndex:
    """Display names and their normalised keys, in preference order (most played first)."""

    names: tuple[str, ...]
    keys: tuple[str, ...]

    @classmethod
    def of(cls, names: Sequence[str], key: Callable[[str], str] = artist_key) -> FuzzyIndex:
        pairs = [(name, key(name)) for name in names]
        pairs = [(n, k) for n, k in pairs if k]
        return cls(tuple(n for n, _ in pairs), tuple(k for _, k in pairs))

    def suggest(self, query: str, key: Callable[[str], str] = artist_key,
                cutoff: float = SUGGEST_CUTOFF) -> str | None:
        """The one name the user most likely meant, or None when nothing is close enough."""
        wanted = key(query or "")
        if not wanted or not self.keys:
            return None
        found = process.extractOne(wanted, self.keys, scorer=fuzz.ratio, score_cutoff=cutoff)
        return None if found is None else self.names[found[2]]

    def complete(self, query: str, prefix_hits: Sequence[str], limit: int = 25,
                 key: Callable[[str], str] = artist_key, cutoff: float = COMPLETE_CUTOFF) -> list[str]:
        """What an autocomplete offers: the exact prefix matches when there are any (the user is on
        track), else the closest names to what was typed (a typo: "slowdvie" -> "Slowdive")."""
        if prefix_hits:
            return list(prefix_hits)[:limit]
        wanted = key(query or "")
        if len(wanted) < 3 or not self.keys:  # two letters are close to everything
            return []
        found = process.extract(wanted, self.keys, scorer=fuzz.WRatio, score_cutoff=cutoff, limit=limit)
        return list(dict.fromkeys(self.names[i] for _, _, i in found))


def did_you_mean(message: str, suggestion: str | None, *, markdown: bool = True) -> str:
    """Append the suggestion to a not-found message: "… Did you mean **Radiohead**?" (bold on
    Discord; plain on a terminal)."""
    if suggestion is None:
        return message
    return f"{message} Did you mean **{suggestion}**?" if markdown else f"{message} Did you mean {suggestion}?"


class _Cached:
    """One index per process, rebuilt after `REFRESH_S`; concurrent callers share one rebuild."""

    def __init__(self, load: Callable[[], Awaitable[FuzzyIndex]]) -> None:
        self._load = load
        self._index: FuzzyIndex | None = None
        self._built_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> FuzzyIndex:
        if self._index is not None and time.monotonic() - self._built_at < REFRESH_S:
            return self._index
        async with self._lock:
            if self._index is None or time.monotonic() - self._built_at >= REFRESH_S:
                self._index = await self._load()
                self._built_at = time.monotonic()
        return self._index


async def _load_artists(services: Services) -> FuzzyIndex:
    from core.db.repositories import CatalogRepository

    async with services.session() as session:
        names = await CatalogRepository(session).artist_names_by_plays(limit=MAX_NAMES)
    return await asyncio.to_thread(FuzzyIndex.of, names)


async def _load_tags(services: Services) -> FuzzyIndex:
    from core.db.repositories.recommendations import RecommendationRepository

    async with services.session() as session:
        names = await RecommendationRepository(session).tag_names(limit=MAX_NAMES)
    return FuzzyIndex.of([n for n in names if is_listener_tag(n)], key=tag_key)  # listener words only


class FuzzyIndexes:
    """The process's fuzzy indexes (`services.fuzzy`): one for artists, one for tags."""

    def __init__(self, services: Services) -> None:
        self.artists = _Cached(lambda: _load_artists(services))
        self.tags = _Cached(lambda: _load_tags(services))


async def artist_index(services: Services) -> FuzzyIndex:
    """The artist names of this deployment (most played first), for suggestions and autocomplete."""
    return await services.fuzzy.artists.get()


async def tag_index(services: Services) -> FuzzyIndex:
    return await services.fuzzy.tags.get()


async def suggest_artist(services: Services, query: str) -> str | None:
    """The artist a misspelt `query` most likely meant ("radiohed" -> "Radiohead"), or None."""
    return (await artist_index(services)).suggest(query)


async def suggest_tag(services: Services, query: str) -> str | None:
    """The known tag a misspelt `query` most likely meant ("shoegze" -> "shoegaze"), or None."""
    return (await tag_index(services)).suggest(query, key=tag_key)


async def complete_artists(services: Services, query: str, prefix_hits: Sequence[str], limit: int = 25) -> list[str]:
    """Autocomplete: the prefix hits, or (only when there are none) the closest artist names."""
    if prefix_hits:  # the common case never waits for the index
        return list(prefix_hits)[:limit]
    return (await artist_index(services)).complete(query, prefix_hits, limit)


async def complete_tags(services: Services, query: str, prefix_hits: Sequence[str], limit: int = 25) -> list[str]:
    if prefix_hits:
        return list(prefix_hits)[:limit]
    return (await tag_index(services)).complete(query, prefix_hits, limit, key=tag_key)
