"""Last.fm's similar-artist graph: the SIMILAR.tsv contract, the eval CLI around it, the co-listening
stand-in, and the graph component in a trained engine (reach, evidence, artifact, explanations)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

import bot.commands.recommend_cmds  # noqa: F401 - registers the commands
from bot.cli_app import app
from bot.render.recommend import similar_line
from core.db.repositories.recommendations import ItemPlayRow
from core.domain import Kind
from core.explain.evidence import recommendation_brief
from core.explain.template import recommendation_text
from core.recommender.engine import RecommenderEngine
from core.recommender.requests import RecommendRequest, UserHistory
from core.recommender.similar_graph import co_listening_graph, read_similar_tsv
from core.recommender.training import fit_engine
from tests.recommender.hetrec_world import write_hetrec


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hetrec(tmp_path_factory.mktemp("hetrec"))


def _similar(path: Path, lines: list[str]) -> Path:
    path.write_text("artistID\tsimilarArtistID\tmatch\n" + "".join(f"{line}\n" for line in lines))
    return path


# --- the SIMILAR.tsv contract through the real CLI -------------------------------------------------


@pytest.mark.parametrize(("lines", "line", "problem"), [
    (["1\t2\t0.9", "1\t3\tabc"], 3, "match is not a number"),
    (["1\t2\t1.5"], 2, "match must be in (0, 1]"),
    (["1\t2\t0"], 2, "match must be in (0, 1]"),
    (["1\t999\t0.5"], 2, "similarArtistID 999 is not in artists.dat"),
    (["x\t2\t0.5"], 2, "artistID is not a whole number"),
    (["1\t2"], 2, "expected 3 tab-separated fields"),
    (["1\t2\t0.5", "1\t2\t0.4"], 3, "appears twice"),
    ([f"1\t{b}\t0.5" for b in range(2, 61)], None, None),
])
def test_a_malformed_similar_file_is_one_line_naming_the_file_and_the_line(folder: Path, tmp_path: Path, lines,
                                                                          line, problem) -> None:
    path = _similar(tmp_path / "SIMILAR.tsv", lines)
    if line is None:  # a valid file (59 neighbours) is accepted
        assert len(read_similar_tsv(path, set(range(1, 61)))[1]) == 59
        return
    result = CliRunner().invoke(app, ["eval", "recommend", "--data-dir", str(folder), "--similar", str(path),
                                      "--json"])
    assert result.exit_code == 1
    message = result.output.strip()
    assert len(message.splitlines()) == 1, message
    assert f"{path}, line {line}" in message and problem in message, message
    assert "Traceback" not in message


def test_more_than_100_neighbours_or_a_bad_header_are_refused(tmp_path: Path) -> None:
    many = _similar(tmp_path / "many.tsv", [f"1\t{b}\t0.5" for b in range(2, 103)])
    with pytest.raises(Exception, match=r"line 102: artist 1 has more than 100 similar artists"):
        read_similar_tsv(many)
    header = tmp_path / "header.tsv"
    header.write_text("artist\tsimilar\tmatch\n1\t2\t0.5\n")
    with pytest.raises(Exception, match=r"header.tsv, line 1: expected columns"):
        read_similar_tsv(header)


def test_co_listening_graph_keeps_top_neighbours_scaled_to_one() -> None:
    rng = np.random.default_rng(0)
    plays = sp.random(60, 40, density=0.3, random_state=1, format="csr", dtype=np.float32)
    plays.data = rng.integers(1, 300, plays.nnz).astype(np.float32)
    graph = co_listening_graph(plays, neighbours=5)
    lengths = np.diff(graph.indptr)
    assert lengths.max() <= 5 and (graph.diagonal() == 0).all()
    for row in np.flatnonzero(lengths):
        values = graph.data[graph.indptr[row]:graph.indptr[row + 1]]
        assert values.max() == pytest.approx(1.0) and (values > 0).all() and (values <= 1).all()


def test_similar_graph_cli_writes_a_file_that_eval_reads_and_the_peer_appears(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "SIMILAR.tsv"
    written = CliRunner().invoke(app, ["eval", "similar-graph", "--data-dir", str(folder), "--community-size", "10",
                                       "--community-seed", "2", "--out", str(out)])
    assert written.exit_code == 0, written.output
    graph = read_similar_tsv(out, set(range(1, 61)))
    assert graph and all(0 < m <= 1 for n in graph.values() for m in n.values())
    runner = CliRunner()
    common = ["eval", "recommend", "--data-dir", str(folder), "--community-size", "10", "--community-seed", "2",
              "--cold-start", "0", "--json"]
    from_file = runner.invoke(app, [*common, "--similar", str(out)])
    built = runner.invoke(app, common)
    assert from_file.exit_code == 0 and built.exit_code == 0, from_file.output + built.output
    a = json.loads(from_file.stdout.strip().splitlines()[-1])
    b = json.loads(built.stdout.strip().splitlines()[-1])
    assert set(a) >= {"hybrid", "MostPop", "ItemKNN", "NMF", "SimilarGraph"}
    assert a["SimilarGraph"]["users"] == 10
    # The written file is the internally built graph (to the precision of the file).
    assert a["SimilarGraph"]["ndcg@10"] == pytest.approx(b["SimilarGraph"]["ndcg@10"], abs=1e-9)
    # Without a graph the JSON keeps its old keys and adds no peer.
    plain = runner.invoke(app, ["eval", "recommend", "--data-dir", str(folder), "--cold-start", "0", "--json",
                                "--no-tune"])
    assert "SimilarGraph" not in json.loads(plain.stdout.strip().splitlines()[-1])


def test_base_needs_the_community_protocol(folder: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "recommend", "--data-dir", str(folder), "--base"])
    assert result.exit_code == 1 and "--community-size" in result.output


# --- the graph component in production -------------------------------------------------------------

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _rows() -> list[ItemPlayRow]:
    """Two listeners of artists 1-3 and two of 4-6 (DB ids); artist 50 is played by nobody."""
    rows = []
    for user, items in ((1, (1, 2, 3)), (2, (1, 2, 3)), (3, (4, 5, 6)), (4, (4, 5, 6)), (5, (1, 4))):
        rows += [ItemPlayRow(user_id=user, item_id=i, plays=10 * i, last_played_at=NOW, artist_id=i) for i in items]
    return rows


NAMES = {1: "Slowdive", 2: "Ride", 3: "Lush", 4: "Burial", 5: "Four Tet", 6: "Jamie xx", 50: "Cocteau Twins"}


def test_the_graph_reaches_artists_nobody_plays_and_says_so(tmp_path: Path) -> None:
    similar = {1: {50: 1.0, 2: 0.6}, 2: {50: 0.8, 1: 0.9}, 4: {5: 1.0}}
    engine = fit_engine(_rows(), NAMES, {}, kind=Kind.ARTIST, now=NOW, tune=False, similar=similar)
    assert 50 in engine.items and "graph" in engine.hybrid.components
    recs = engine.recommend(UserHistory([1, 2], [30.0, 10.0]), RecommendRequest(count=5))
    pick = next(r for r in recs if r.item_id == 50)
    assert [w.name for w in pick.evidence.similar_to] == ["Slowdive", "Ride"]
    assert similar_line(pick) == "similar to Slowdive and Ride on Last.fm"
    _idx, text = recommendation_text(recommendation_brief(pick).facts, "k")
    assert "similar to Slowdive and Ride on Last.fm" in text, text
    # /similar for an artist reaches the graph's neighbour too, with the same evidence wording.
    found = next(r for r in engine.similar(1, 6) if r.item_id == 50)
    assert similar_line(found) == "similar to Slowdive on Last.fm"
    # Saved and loaded from arrays.npz: the same list and evidence.
    loaded = RecommenderEngine.load(engine.save(tmp_path / "engine"))
    again = loaded.recommend(UserHistory([1, 2], [30.0, 10.0]), RecommendRequest(count=5))
    assert again == recs


def test_without_a_graph_the_engine_is_as_before() -> None:
    plain = fit_engine(_rows(), NAMES, {}, kind=Kind.ARTIST, now=NOW, tune=False)
    empty = fit_engine(_rows(), NAMES, {}, kind=Kind.ARTIST, now=NOW, tune=False, similar={})
    assert "graph" not in plain.hybrid.components and 50 not in plain.items
    history = UserHistory([1, 4], [5.0, 9.0])
    assert plain.recommend(history) == empty.recommend(history)
    assert all(not r.evidence.similar_to for r in plain.recommend(history))
