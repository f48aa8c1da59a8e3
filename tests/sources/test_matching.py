"""Identity matching: unit cases and precision/recall over a labelled list of tricky pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.matching import (
    ALBUM_THRESHOLD,
    TRACK_THRESHOLD,
    album_key,
    album_match_score,
    artist_key,
    track_key,
    track_match_score,
)

PAIRS = Path(__file__).parent / "fixtures" / "matching_pairs.tsv"


def load_pairs() -> list[tuple[str, str, str, str, str, bool, str]]:
    rows = []
    for line in PAIRS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, a_artist, a_title, b_artist, b_title, label, note = line.split("\t")
        rows.append((kind, a_artist, a_title, b_artist, b_title, label == "1", note))
    return rows


def predict(kind: str, a_artist: str, a_title: str, b_artist: str, b_title: str) -> bool:
    if kind == "artist":
        return artist_key(a_artist) == artist_key(b_artist)
    if kind == "track":
        return track_match_score(a_artist, a_title, b_artist, b_title) >= TRACK_THRESHOLD
    return album_match_score(a_artist, a_title, b_artist, b_title) >= ALBUM_THRESHOLD


def test_precision_and_recall_on_labelled_pairs() -> None:
    pairs = load_pairs()
    assert len(pairs) >= 100
    assert sum(p[5] for p in pairs) >= 40 and sum(not p[5] for p in pairs) >= 40
    tp = fp = fn = 0
    mistakes = []
    for kind, aa, at, ba, bt, same, note in pairs:
        got = predict(kind, aa, at, ba, bt)
        tp += got and same
        fp += got and not same
        fn += same and not got
        if got != same:
            mistakes.append(f"{'FP' if got else 'FN'} {kind}: {aa} - {at} | {ba} - {bt} ({note})")
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    print(f"\nmatching: {len(pairs)} pairs, precision={precision:.3f} recall={recall:.3f}")
    print("\n".join(mistakes))
    assert precision >= 0.97, mistakes
    assert recall >= 0.95, mistakes


@pytest.mark.parametrize(("a", "b"), [
    ("The Beatles", "beatles"), ("Beyoncé", "BEYONCE"), ("ＡＢＢＡ", "ABBA"), ("Jay-Z", "Jay Z"),
    ("Simon & Garfunkel", "Simon and Garfunkel"), ("A$AP Rocky", "ASAP Rocky"), ("Røyksopp", "Royksopp"),
])
def test_artist_key_equalities(a: str, b: str) -> None:
    assert artist_key(a) == artist_key(b)


def test_track_key_decorations() -> None:
    base = track_key("Queen", "Don't Stop Me Now")
    for variant in ("Don't Stop Me Now - Remastered 2011", "Don't Stop Me Now (2011 Remaster)",
                    "Don’t Stop Me Now (Live)", "Don't Stop Me Now - Live at Wembley 1986",
                    "Don't Stop Me Now (feat. Nobody)", "DON'T STOP ME NOW"):
        assert track_key("Queen", variant) == base, variant
    assert track_key("Oasis", "Live Forever") != track_key("Oasis", "Forever")
    assert track_key("Oasis", "Live Forever") == track_key("Oasis", "Live Forever - Remastered")
    assert track_key("Blur", "Song 2 (Remix)") != track_key("Blur", "Song 2")


def test_album_key_keeps_live_but_drops_editions() -> None:
    assert album_key("Nirvana", "Nevermind") == album_key("Nirvana", "Nevermind (Deluxe Edition)")
    assert album_key("Nirvana", "Nevermind") != album_key("Nirvana", "Nevermind (Live)")
    assert album_key("The Who", "Live at Leeds") != album_key("The Who", "Leeds")


def test_degenerate_names_do_not_collapse_to_empty() -> None:
    assert artist_key("!!!") and artist_key("!!!") != artist_key("???")
    assert artist_key("The The") != artist_key("The")
    assert track_key("Aphex Twin", "#3") != track_key("Aphex Twin", "#13")
