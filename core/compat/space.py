"""The compatibility taste space's lifecycle: the recommender's `ModelRegistry` over a data fingerprint.

There is one space (key `SPACE`), built from every artist play in the database. Its "newest version"
is the cheap `plays_fingerprint` aggregate, so a registry refresh notices changed listens and builds
again (in a worker thread: sparse algebra, SVDs, calibration); the finished, immutable space is
swapped in with one assignment. Unlike recommender models nothing is stored: "loading" a version is
building it, and callers wait for the build however long it takes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.compat.calibration import Calibration
from core.compat.params import CompatParams
from core.compat.profiles import TasteSpace, build_taste_space
from core.db.repositories import CatalogRepository, ListenRepository
from core.errors import InvalidInput
from core.recommender.registry import ModelRegistry, Served

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger(__name__)

SPACE = "space"


class TasteSpaceSource:
    """`ModelSource` of the taste space: the data fingerprint is the version; loading is building."""

    def __init__(self, services: Services, params: CompatParams) -> None:
        self.services = services
        self.params = params

    @property
    def calibration_path(self) -> Path:
        """An operator may pin a calibration here (e.g. one sampled on HetRec) to keep scores stable."""
        return self.services.settings.data_dir / "compat" / "calibration.pinned.json"

    async def _fingerprint(self) -> str:
        async with self.services.session() as session:
            return repr(tuple(await ListenRepository(session).plays_fingerprint()))

    async def newest(self, key: str) -> str | None:
        return await self._fingerprint()

    async def load(self, key: str, version: str) -> Served[TasteSpace]:
        return await self._build(version)

    async def build(self, key: str, **options: Any) -> Served[TasteSpace]:
        return await self._build(await self._fingerprint())

    async def can_build(self, key: str) -> bool:
        return True

    def nothing_to_build(self, key: str) -> Exception:  # never raised: `newest` always has a version
        return RuntimeError("the taste space always has a fingerprint to build from")

    def still_building(self, key: str) -> Exception:  # never raised: callers wait for the build
        return RuntimeError("the taste space is built while callers wait")

    async def _build(self, fingerprint: str) -> Served[TasteSpace]:
        """Load everything, then build off the event loop."""
        started = time.perf_counter()
        async with self.services.session() as session:
            plays = await ListenRepository(session).all_artist_plays()
            catalog = CatalogRepository(session)
            tags = await catalog.item_tags("artist")
            artists = await catalog.artists_by_ids({p.artist_id for p in plays})
        names = {artist_id: artist.name for artist_id, artist in artists.items()}
        rows = [(p.user_id, p.artist_id, float(p.plays), p.last_played_at) for p in plays]
        calibration = await asyncio.to_thread(self._pinned_calibration)
        tags_digest = hashlib.sha256(json.dumps(sorted((k, sorted(v.items())) for k, v in tags.items()),
                                                default=str).encode()).hexdigest()[:8]

        def build() -> TasteSpace:
            # now=None: recency is measured from the newest play in the data, so the same data always
            # gives the same space and the same version (no cache churn from the clock alone).
            space = build_taste_space(rows, tags, artist_names=names, params=self.params, calibration=calibration)
            return replace(space, version=f"{space.version}.{tags_digest}")

        space = await asyncio.to_thread(build)
        log.info("compat space built: %d users, %d artists, version %s in %.2f s", len(space.users),
                 len(space.artists), space.version, time.perf_counter() - started)
        return Served(space, fingerprint)

    def _pinned_calibration(self) -> Calibration | None:
        path = self.calibration_path
        if not path.exists():
            return None  # sample from this population (the normal case)
        try:
            calibration = Calibration.load(path)
        except InvalidInput:
            log.warning("ignoring an unreadable pinned compat calibration at %s", path)
            return None
        if calibration.params_token != self.params.token():
            log.warning("ignoring a pinned compat calibration made with other parameters (%s)", path)
            return None
        return calibration


class TasteSpaces:
    """The one served taste space (see the module docstring)."""

    def __init__(self, services: Services, params: CompatParams, *, freshness_interval_s: float = 30.0) -> None:
        self.source = TasteSpaceSource(services, params)
        self.registry: ModelRegistry[str, TasteSpace] = ModelRegistry(
            self.source, name="compat", refresh_interval_s=freshness_interval_s, first_build_wait_s=None)

    @property
    def current(self) -> TasteSpace | None:
        served = self.registry.current(SPACE)
        return None if served is None else served.value

    @property
    def builds(self) -> int:
        return self.registry.swaps

    async def ensure(self, needed: tuple[int, ...] = ()) -> TasteSpace:
        """The current space: built on first use, rebuilt when the listening data changed.

        The data is re-checked at most every freshness interval, or at once when a user in `needed`
        (the database says they have plays) is missing from the space: a member whose first sync
        just landed should not wait for the interval.
        """
        def missing(space: TasteSpace) -> bool:
            return not all(space.has_history(u) for u in needed)

        return (await self.registry.ensure(SPACE, stale=missing if needed else None)).value

    async def rebuild(self) -> str:
        """Build now (scheduler, after syncs or tag refreshes); returns the new version."""
        return (await self.registry.rebuild(SPACE)).value.version
