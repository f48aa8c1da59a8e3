"""/similar and the name completions of the recommendation commands.

Artists most like a named one come from the served model when it knows the artist, otherwise from
Last.fm's similar-artist graph (stored, or asked now), so any artist Last.fm knows works. The model's
answer keeps only artists that share evidence with the named one (no padding with popular
strangers); Last.fm's graph answers are its own neighbours and are kept as they are. Nothing here is
personal: no asker is needed. Typed names are echoed Markdown-escaped.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING

from core.db.repositories import CatalogRepository
from core.db.repositories.recommendations import RecommendationRepository
from core.domain import Evidence, Kind, Recommendation, Weighted
from core.errors import InvalidInput, NotFound, SonanceError
from core.fuzzy import complete_artists, complete_tags, did_you_mean, suggest_artist
from core.markup import literal
from core.matching import artist_key
from core.recommender.engine import RecommenderEngine
from core.recommender.lists import decorate
from core.recommender.results import SimilarResult
from core.recommender.served import ServedModels
from core.tags import is_listener_tag, tag_key

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger(__name__)


def _escaped(name: str | None) -> str | None:
    """A suggested catalogue name, Markdown-escaped (it goes between `did_you_mean`'s bold stars)."""
    return literal(name) if name is not None else None


class SimilarArtists:
    """Similar artists and autocomplete (see the module docstring)."""

    def __init__(self, services: Services, models: ServedModels) -> None:
        self.services = services
        self.models = models

    async def similar(self, query: str, kind: Kind | str = Kind.ARTIST, count: int = 10) -> SimilarResult:
        """Artists most like the named one (model first, then Last.fm's graph).

        The name is resolved by normalised name; a prefix match is only a fallback when Last.fm is
        not configured (with Last.fm, its autocorrect finds the artist the user meant)."""
        kind = Kind(kind)
        if kind != Kind.ARTIST:
            raise InvalidInput("Similar items work for artists for now.")
        key = artist_key(query or "")
        if not key:
            raise InvalidInput("Tell me an artist name.")
        from core.sync.similar_graph import SimilarGraph

        graph = SimilarGraph.of(self.services)
        async with self.services.session() as session:
            catalog = CatalogRepository(session)
            artist = await catalog.artist_by_key(key)
            if artist is None and graph.client is None:
                found = await catalog.search_artists(key, limit=1)
                artist = found[0] if found else None
        if artist is None and graph.client is None:
            raise NotFound(did_you_mean(f"I don't know an artist called “{literal(query[:100])}”.",
                                        _escaped(await suggest_artist(self.services, query))))
        engine = await self._engine_if_any(kind) if artist is not None else None
        if artist is not None and engine is not None and artist.id in engine.items:
            # Only neighbours that share evidence with the artist (see `RecommenderEngine.similar`):
            # none at all shows the renderer's "Nothing close enough yet." instead of popular strangers.
            recs = await asyncio.to_thread(partial(engine.similar, related_only=True), artist.id, count)
            if recs or graph.client is None:
                async with self.services.session() as session:
                    decorated = await decorate(RecommendationRepository(session), kind, recs)
                return SimilarResult(artist.name, tuple(decorated))
            # Known, but nothing here is tied to it (one listener, no neighbours yet): Last.fm may know.
        if graph.client is None and artist is not None:
            raise NotFound(f"I don't know enough about {literal(artist.name)} yet to find similar artists.")
        try:
            answer = await graph.similar_to(artist.name if artist is not None else query, limit=count)
        except NotFound as exc:  # neither we nor Last.fm know the name: suggest the closest one we know
            # ...but only another name: for an artist we know (or one Last.fm knows without
            # neighbours, now in the catalogue) the closest name is the one typed.
            suggestion = await suggest_artist(self.services, query) if artist is None else None
            if suggestion is not None and artist_key(suggestion) == key:
                suggestion = None
            # The graph's sentences are plain text quoting the typed name: escaped here, as ours.
            raise NotFound(did_you_mean(literal(exc.user_message), _escaped(suggestion)),
                           detail=exc.detail) from None
        recs = [Recommendation(kind=Kind.ARTIST, item_id=int(a.id), name=a.name, score=match,
                               evidence=Evidence(items=(Weighted(answer.seed, match),), sources={"graph": match},
                                                 note=f"similar to {answer.seed} on Last.fm"),
                               url=a.lastfm_url, image_url=a.image_url)
                for a, match in answer.neighbours[:count]]
        return SimilarResult(answer.seed, tuple(recs), note=f"Similar to {answer.seed} on Last.fm")

    async def _engine_if_any(self, kind: Kind) -> RecommenderEngine | None:
        """The served engine, or None while there is none to serve (no data yet, still learning)."""
        try:
            return (await self.models.ensure(kind)).engine
        except SonanceError as exc:
            log.info("similar: no %s model to ask (%s); using Last.fm's graph", kind, exc.user_message)
            return None

    async def autocomplete(self, prefix: str, limit: int = 25) -> list[str]:
        """Artist names starting with `prefix` (normalised), for /similar."""
        key = artist_key(prefix or "")
        async with self.services.session() as session:
            found = await CatalogRepository(session).search_artists(key, limit=limit)
        return await complete_artists(self.services, prefix, [a.name for a in found], limit)

    async def tag_autocomplete(self, prefix: str, limit: int = 25) -> list[str]:
        """Tags to pick from: listener words only ("seen live" is no filter), one spelling each;
        the closest listener words when nothing starts with what was typed."""
        async with self.services.session() as session:
            names = await RecommendationRepository(session).search_tags(prefix or "", limit=limit * 4)
        shown: dict[str, str] = {}
        for name in names:  # the stored spelling: it is what the tag filter matches
            if is_listener_tag(name):
                shown.setdefault(tag_key(name), name)
        return await complete_tags(self.services, prefix, list(shown.values())[:limit], limit)
