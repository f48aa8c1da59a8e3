"""Train the recommender from the database: read plays and tags, fit off the event loop, store a versioned artifact.

Why it looks like this:

* Reading is async (the DB driver), fitting is CPU-heavy numpy/scipy: the fit runs in a worker
  thread (`asyncio.to_thread`) so the bot keeps answering while a model trains (README, "Architecture": CPU-heavy work runs off the event loop).
  numpy/scipy release the GIL in their kernels, so a thread is enough and avoids pickling the
  interaction matrix into a process.
* Each training writes its own folder ``<model_dir>/recommender/<kind>/<version>/`` (manifest.json +
  arrays.npz, never pickle) and then records a `model_artifacts` row marked active. Serving
  processes look at the active row, so the CLI (`sonance train`), the scheduler's nightly job and
  the bot can each train and the others follow. Old versions are pruned, keeping one for rollback.
* Strengths use the same recency formula at training and serving time
  (`Interactions.from_arrays` / `UserHistory.from_rows`).
* Rows become numpy columns (`PlayColumns`) before anything else, and the interaction matrix is
  built from them with sorted-array lookups: at 1M users x 1M items (20M rows) per-row Python
  (dict lookups, datetimes, f-strings for the version hash) cost minutes. `sonance bench train`
  feeds synthetic columns to the same `fit_columns`.
* The configuration scales with the data (`components.plan_for`, chosen in `RecommenderEngine.train`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from core.db.repositories import CatalogRepository, SchedulingRepository
from core.db.repositories.recommendations import ItemPlayRow, RecommendationRepository
from core.db.repositories.similar import SimilarGraphRepository
from core.domain import Kind
from core.errors import NotEnoughHistory
from core.recommender.engine import RecommenderEngine, default_artifact_dir
from core.recommender.interactions import Interactions, Vocabulary, recency_weight
from core.recommender.tags import ItemTags

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger(__name__)

#: `model_artifacts.kind` of the hybrid recommender (compatibility uses "compat").
ARTIFACT_KIND = "hybrid"
#: Versions kept on disk per granularity: the active one and the one before it (to roll back to).
#: More piled up: five demo runs left 375 MB of HetRec models behind.
KEEP_VERSIONS = 2
#: Below this many users x items there is nothing to learn from.
MIN_USERS, MIN_ITEMS = 2, 3

Progress = Callable[[str], None]


def _say(progress: Progress | None) -> Progress:
    return progress or (lambda message: log.info("train: %s", message))


#: item id -> {similar item id: match in (0, 1]}: Last.fm's similar graph as `fit_engine` takes it.
SimilarGraphInput = Mapping[int, Mapping[int, float]]


async def load_training_rows(services: Services, kind: Kind) -> tuple[
        list[ItemPlayRow], dict[int, str], dict[str, dict[int, dict[str, float]]], dict[int, dict[int, float]]]:
    """Everything a fit needs from the DB, in one session: plays, item names, tag sources and Last.fm's
    similar graph (artists: artist.getSimilar; tracks: track.getSimilar; albums: none).

    Items that appear only in the graph (an artist no listener here plays) get names too, because
    the graph component can recommend them.
    """
    async with services.session() as session:
        repo = RecommendationRepository(session)
        rows = await repo.item_plays(str(kind))
        graph_repo = SimilarGraphRepository(session)
        similar = (await graph_repo.artist_graph() if kind == Kind.ARTIST
                   else await graph_repo.track_graph() if kind == Kind.TRACK else {})
        graph_items = set(similar) | {b for targets in similar.values() for b in targets}
        infos = await repo.item_info(str(kind), {r.item_id for r in rows} | graph_items)
        sources: dict[str, dict[int, dict[str, float]]] = {}
        if kind == Kind.ARTIST:
            sources["lastfm"] = await CatalogRepository(session).item_tags("artist")
        else:
            own = await CatalogRepository(session).item_tags(str(kind))
            if own:
                sources["lastfm"] = own
            if kind == Kind.ALBUM:
                sources["aoty"] = await repo.album_tags_from_aoty()
    names = {i: (f"{info.artist} – {info.name}" if info.artist and kind != Kind.ARTIST else info.name)
             for i, info in infos.items()}
    return rows, names, sources, similar


@dataclass(frozen=True)
class PlayColumns:
    """The training rows as parallel numpy columns (one entry per (user, item) row)."""

    user_ids: np.ndarray  # int64
    item_ids: np.ndarray  # int64
    plays: np.ndarray  # float64
    last_played_s: np.ndarray  # float64 POSIX seconds, NaN when unknown (counts as "now")
    artist_ids: np.ndarray  # int64, the item's artist (for the per-artist cap of albums/tracks)

    @classmethod
    def from_rows(cls, rows: Sequence[ItemPlayRow]) -> PlayColumns:
        n = len(rows)
        return cls(np.fromiter((r.user_id for r in rows), np.int64, n),
                   np.fromiter((r.item_id for r in rows), np.int64, n),
                   np.fromiter((r.plays for r in rows), np.float64, n),
                   np.fromiter((np.nan if r.last_played_at is None else r.last_played_at.timestamp()
                                for r in rows), np.float64, n),
                   np.fromiter((r.artist_id for r in rows), np.int64, n))

    def __len__(self) -> int:
        return len(self.user_ids)

    def digest(self) -> str:
        """Content hash of the rows, independent of their order."""
        order = np.lexsort((self.plays, self.item_ids, self.user_ids))
        digest = hashlib.sha256()
        for column in (self.user_ids, self.item_ids, self.plays.astype(np.int64)):
            digest.update(np.ascontiguousarray(column[order]).tobytes())
        return digest.hexdigest()


def _lookup(vocabulary: Vocabulary, ids: np.ndarray) -> np.ndarray:
    """Indices of integer ids in a sorted vocabulary (-1 for unknown ids), without per-id Python."""
    known_ids = vocabulary.ids
    if len(known_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(known_ids, ids), len(known_ids) - 1)
    return np.where(known_ids[at] == ids, at, -1).astype(np.int64)


def interactions_from_columns(columns: PlayColumns, *, now: datetime, kind: Kind,
                              item_vocabulary: Vocabulary | None = None) -> Interactions:
    """`Interactions.from_arrays(users, items, plays, last played, now=now, …)` on columns of
    integer ids, with the same strengths bit for bit (same formula, same float operations)."""
    reference = now.timestamp()
    seconds = np.where(np.isnan(columns.last_played_s), reference, columns.last_played_s)
    strengths = columns.plays * recency_weight((reference - seconds) / 86400.0)
    users = Vocabulary(np.unique(columns.user_ids))
    items = item_vocabulary or Vocabulary(np.unique(columns.item_ids))
    if len(items.ids) > 1 and not bool((np.diff(items.ids) > 0).all()):
        cols = items.indices(columns.item_ids.tolist())  # an unsorted vocabulary: per-id lookups
    else:
        cols = _lookup(items, columns.item_ids)
    rows = _lookup(users, columns.user_ids)
    known = cols >= 0
    matrix = sp.csr_matrix((strengths[known].astype(np.float32), (rows[known], cols[known])),
                           shape=(len(users), len(items)), dtype=np.float32)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    artists = None
    if kind != Kind.ARTIST:
        last_row = np.full(len(items), -1, dtype=np.int64)
        last_row[cols[known]] = np.flatnonzero(known)
        artists = np.where(last_row >= 0, columns.artist_ids[np.maximum(last_row, 0)].astype(str), "")
    return Interactions(matrix, users, items, artists)


def fit_engine(rows: list[ItemPlayRow] | PlayColumns, names: dict[int, str],
               sources: dict[str, dict[int, dict[str, float]]], *, kind: Kind, now: datetime, tune: bool = True,
               progress: Progress | None = None, similar: SimilarGraphInput | None = None) -> RecommenderEngine:
    """The CPU-bound part (call it in a worker thread): interactions -> tags -> tuned hybrid.

    `similar` is Last.fm's similar-item graph by DB id ({item: {similar item: match in (0, 1]}}).
    Items that appear only there (nobody here plays them) still enter the catalogue, so the graph
    component can recommend them; without it the engine is exactly as before. The progress
    messages name the stages `sonance bench train` times ("preparing interactions", "building
    tags", then the hybrid's "tuning: …" / "fitting …").
    """
    say = _say(progress)
    if not len(rows):
        raise NotEnoughHistory(f"There is no listening data at {kind} level to learn from yet.")
    say("preparing interactions")
    columns = rows if isinstance(rows, PlayColumns) else PlayColumns.from_rows(rows)
    vocabulary = None
    if similar:
        graph_ids = np.fromiter({int(a) for a in similar} | {int(b) for n in similar.values() for b in n}, np.int64)
        vocabulary = Vocabulary(np.unique(np.concatenate([columns.item_ids, graph_ids])))
    data = interactions_from_columns(columns, now=now, kind=kind, item_vocabulary=vocabulary)
    if data.n_users < MIN_USERS or data.n_items < MIN_ITEMS:
        raise NotEnoughHistory(f"Too little {kind} listening data to learn from yet "
                               f"({data.n_users} listeners, {data.n_items} {kind}s).")
    say(f"{data.n_users:,} listeners x {data.n_items:,} {kind}s, {data.matrix.nnz:,} pairs")
    say("building tags")
    tags = ItemTags.from_sources(data.items, sources)
    say(f"{len(tags.names):,} tags")
    if similar:
        say(f"similar graph: {sum(len(n) for n in similar.values()):,} links from {len(similar):,} {kind}s")
    return RecommenderEngine.train(data, kind=kind, names=names, tags=tags, tune=tune, progress=say,
                                   similar=similar or None)


def model_version(kind: Kind, rows: list[ItemPlayRow] | PlayColumns, now: datetime) -> str:
    """Sortable, unique and content-addressed: ``<kind>-<UTC time>-<hash of the training data>``."""
    columns = rows if isinstance(rows, PlayColumns) else PlayColumns.from_rows(rows)
    return f"{kind}-{now.strftime('%Y%m%dT%H%M%S%f')}-{columns.digest()[:8]}"


def metrics_of(engine: RecommenderEngine, rows: Sequence[ItemPlayRow] | PlayColumns, seconds: float) -> dict[str, Any]:
    """What an operator wants to see about a model: size, tuning quality, weights, time."""
    tuning = engine.hybrid.tuning
    out: dict[str, Any] = {
        "n_users": engine.n_users, "n_items": len(engine.items), "n_pairs": len(rows),
        "n_tags": len(engine.tags.names), "train_seconds": round(seconds, 2),
        "weights": {k: round(float(v), 3) for k, v in engine.hybrid.weights.items()},
        "cold_weights": {k: round(float(v), 3) for k, v in engine.hybrid.cold_weights.items()},
    }
    if tuning is not None:
        out.update({"validation_ndcg@10": round(float(tuning.validation_ndcg), 4),
                    "validation_cold_ndcg@10": round(float(tuning.validation_cold_ndcg), 4),
                    "validation_users": int(tuning.validation_users)})
    return out


def prune_versions(folder: Path, keep: str, count: int = KEEP_VERSIONS) -> None:
    """Delete all but the newest `count` version folders (never the one just written)."""
    if not folder.is_dir():
        return
    versions = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.name, reverse=True)
    for old in versions[count:]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


async def train_from_db(services: Services, *, kind: Kind | str = Kind.ARTIST, tune: bool = True,
                        progress: Progress | None = None, now: datetime | None = None,
                        ) -> tuple[RecommenderEngine, dict[str, Any]]:
    """Train one granularity from the database, save it, record it as the active artifact.

    Returns the ready engine and its metrics (which include ``version`` and ``path``). The fit and
    the save run in a worker thread; raises `NotEnoughHistory` when there is nothing to learn from.
    This is the scheduler's nightly retrain entry point (through `RecommendService.retrain`, which
    also swaps the new engine in).
    """
    kind = Kind(kind)
    say = _say(progress)
    now = now or datetime.now(UTC)
    say(f"reading {kind} plays and tags from the database")
    rows, names, sources, similar = await load_training_rows(services, kind)
    columns = PlayColumns.from_rows(rows)
    del rows  # 20M row objects are gigabytes; the columns are what the fit reads
    version = model_version(kind, columns, now)
    base = default_artifact_dir(services.settings.model_dir, kind)
    path = base / version
    engine, seconds = await asyncio.to_thread(
        fit_and_save, columns, names, sources, kind=kind, now=now, tune=tune, path=path, progress=say,
        similar=similar or None)
    metrics = metrics_of(engine, columns, seconds)
    async with services.session() as session:
        artifact = await SchedulingRepository(session).add_artifact(
            kind=ARTIFACT_KIND, version=version, path=str(path), metrics=metrics, n_users=engine.n_users,
            n_items=len(engine.items), granularity=str(kind), activate=True)
        artifact_id = artifact.id
    say(f"model {version} is active")
    return engine, {**metrics, "version": version, "path": str(path), "artifact_id": artifact_id}


def fit_and_save(columns: PlayColumns, names: dict[int, str], sources: dict[str, dict[int, dict[str, float]]], *,
                 kind: Kind, now: datetime, tune: bool, path: Path, progress: Progress | None = None,
                 similar: SimilarGraphInput | None = None) -> tuple[RecommenderEngine, float]:
    """`fit_engine`, then save the artifact at `path` and prune older versions beside it; returns the
    engine and the fit's seconds. Blocking: `train_from_db` runs it in a thread, `sonance bench
    train` calls it directly on synthetic columns."""
    say = _say(progress)
    started = time.perf_counter()
    engine = fit_engine(columns, names, sources, kind=kind, now=now, tune=tune, progress=say, similar=similar)
    elapsed = time.perf_counter() - started
    say(f"saving artifact {path.name}")
    engine.save(path)
    prune_versions(path.parent, keep=path.name)
    return engine, elapsed
