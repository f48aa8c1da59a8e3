"""Similar-artist graphs: Last.fm's `artist.getSimilar` as a matrix, its TSV form, and a stand-in built
from co-listening.

The graph is item -> {similar item: match in (0, 1]}, exactly what `artist.getSimilar` returns (at most
100 neighbours, the best one at or near 1). Production reads it from the database; the offline
evaluation reads it from a SIMILAR.tsv (``artistID  similarArtistID  match``) or builds it from
listeners who are *not* being evaluated (cosine of log1p plays, top 100 neighbours, each artist's
best neighbour scaled to 1), which is how Last.fm derives its own list from everyone else's plays.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.datasets import iter_rows
from core.errors import ImportFileError
from core.recommender.interactions import Vocabulary
from core.recommender.models._sparse import blocked_top_k_product

SIMILAR_COLUMNS = ("artistID", "similarArtistID", "match")
MAX_NEIGHBOURS = 100  # artist.getSimilar's limit

SimilarMap = Mapping[int, Mapping[int, float]]


def read_similar_tsv(path: Path, known_ids: Collection[int] | None = None) -> dict[int, dict[int, float]]:
    """Parse a SIMILAR.tsv; any malformed line raises `ImportFileError` naming the file and the line."""
    path = Path(path)
    graph: dict[int, dict[int, float]] = {}
    for lineno, fields in iter_rows(path, SIMILAR_COLUMNS):
        if len(fields) != len(SIMILAR_COLUMNS):
            raise ImportFileError(path, lineno, f"expected 3 tab-separated fields, found {len(fields)}")
        source, target = (_artist_id(path, lineno, fields[i], SIMILAR_COLUMNS[i], known_ids) for i in (0, 1))
        try:
            match = float(fields[2])
        except ValueError:
            raise ImportFileError(path, lineno, f"match is not a number: {fields[2][:40]!r}") from None
        if not 0.0 < match <= 1.0:
            raise ImportFileError(path, lineno, f"match must be in (0, 1], found {fields[2][:40]!r}")
        if source == target:
            raise ImportFileError(path, lineno, f"artist {source} is listed as similar to itself")
        neighbours = graph.setdefault(source, {})
        if target in neighbours:
            raise ImportFileError(path, lineno, f"pair {source} -> {target} appears twice")
        if len(neighbours) >= MAX_NEIGHBOURS:
            raise ImportFileError(path, lineno, f"artist {source} has more than {MAX_NEIGHBOURS} similar artists")
        neighbours[target] = match
    return graph


def _artist_id(path: Path, lineno: int, value: str, column: str, known_ids: Collection[int] | None) -> int:
    try:
        artist = int(value)
    except ValueError:
        raise ImportFileError(path, lineno, f"{column} is not a whole number: {value[:40]!r}") from None
    if known_ids is not None and artist not in known_ids:
        raise ImportFileError(path, lineno, f"{column} {artist} is not in artists.dat")
    return artist


def write_similar_tsv(path: Path, graph: SimilarMap) -> Path:
    """Write `graph` as a SIMILAR.tsv, neighbours best first (ties by id), so the file is reproducible."""
    path = Path(path)
    lines = ["\t".join(SIMILAR_COLUMNS)]
    for source in sorted(graph):
        for target, match in sorted(graph[source].items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"{source}\t{target}\t{match:.6g}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def graph_matrix(similar: SimilarMap | None, items: Vocabulary) -> sp.csr_matrix | None:
    """The graph as an items x items float32 CSR aligned to `items` (pairs outside it are dropped)."""
    if similar is None:
        return None
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for source, neighbours in similar.items():
        row = items.get(source)
        if row < 0:
            continue
        for target, match in neighbours.items():
            col = items.get(target)
            if col >= 0 and col != row and match > 0:
                rows.append(row)
                cols.append(col)
                vals.append(float(match))
    n = len(items)
    matrix = sp.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(n, n), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


def matrix_to_map(graph: sp.csr_matrix, items: Vocabulary) -> dict[int, dict[int, float]]:
    """Inverse of `graph_matrix` (external ids), e.g. to write a built graph as a SIMILAR.tsv."""
    graph = sp.csr_matrix(graph)
    out: dict[int, dict[int, float]] = {}
    for row in range(graph.shape[0]):
        start, end = graph.indptr[row], graph.indptr[row + 1]
        if end > start:
            out[int(items.external(row))] = {int(items.external(int(c))): float(v)
                                             for c, v in zip(graph.indices[start:end], graph.data[start:end],
                                                             strict=True)}
    return out


def co_listening_graph(plays: sp.csr_matrix, neighbours: int = MAX_NEIGHBOURS) -> sp.csr_matrix:
    """items x items: top `neighbours` by cosine of log1p plays, each row scaled so its best match is 1.

    `plays` is users x items of raw play counts, and must hold only the listeners the graph may
    learn from (in the community protocol: everyone outside the community).
    """
    x = sp.csr_matrix(plays, dtype=np.float32, copy=True)
    np.log1p(x.data, out=x.data)
    x.eliminate_zeros()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel()).astype(np.float32)
    norms[norms == 0] = 1.0
    sim = blocked_top_k_product(sp.csr_matrix(x.T), x, neighbours, scale_rows=norms, scale_cols=norms)
    sim.data = np.clip(sim.data, 0.0, None)
    sim.eliminate_zeros()
    best = np.zeros(sim.shape[0], dtype=np.float32)
    lengths = np.diff(sim.indptr)
    nonempty = lengths > 0
    best[nonempty] = np.maximum.reduceat(sim.data, sim.indptr[:-1][nonempty])
    sim.data = (sim.data / np.repeat(np.where(best > 0, best, 1.0), lengths)).astype(np.float32)
    sim.data = np.clip(sim.data, np.float32(1e-6), np.float32(1.0))
    return sim
