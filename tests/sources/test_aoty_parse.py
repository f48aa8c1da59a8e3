"""AOTY parsers on the real captured pages (shared fixtures) and on the project's own small pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.sources.aoty_parse import (
    AotyParseError,
    is_challenge_page,
    parse_album,
    parse_album_list,
    parse_search_albums,
)
from tests.conftest import AOTY_FIXTURES_DIR
from tests.fakes.aoty_server import CHALLENGE_HTML

REAL = AOTY_FIXTURES_DIR
OWN = Path(__file__).parent / "fixtures" / "aoty"
BASE = "https://www.albumoftheyear.org"
ALBUM_URL = f"{BASE}/album/564912-asap-rocky-dont-be-dumb.php"


def real_page(name: str) -> str:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"real AOTY capture {path} is not present on this machine (shared fixtures)")
    return path.read_text(encoding="utf-8")


def test_real_album_page() -> None:
    album = parse_album(real_page("album.html"), ALBUM_URL)
    assert album.title == "Don't Be Dumb"  # JSON-LD, not the h1 with its "Don 't" spacing quirk
    assert album.artist == "A$AP Rocky"
    assert album.critic_score == pytest.approx(70.3794) and album.critic_count == 17
    assert album.user_score == pytest.approx(74.5) and album.user_count == 20_489  # not the critic count
    assert album.release_date == "2026-01-16"
    assert album.genres == ("Trap", "East Coast Hip Hop")
    assert album.secondary_genres == ("Cloud Rap", "Experimental Hip Hop", "Hardcore Hip Hop",
                                      "Neo-Psychedelia", "Memphis Rap")
    assert "psychedelic" in album.tags and "trap" in album.tags
    assert album.must_hear is False
    assert album.fetched_at.tzinfo is not None


def test_real_album_tracklist_two_discs() -> None:
    album = parse_album(real_page("album.html"), ALBUM_URL)
    discs = {t.disc for t in album.tracks}
    assert discs == {1, 2}
    first = album.tracks[0]
    assert (first.disc, first.number, first.title, first.length_s) == (1, 1, "ORDER OF PROTECTION", 171)
    assert (first.rating, first.rating_count) == (77, 4304)
    assert first.url == f"{BASE}/song/930737-order-of-protection/"
    fish = next(t for t in album.tracks if t.title.startswith("FISH N STEAK"))
    assert fish.disc == 2 and fish.featured == ("Tyler, The Creator", "Jozzy")


def test_real_album_similar() -> None:
    album = parse_album(real_page("album.html"), ALBUM_URL)
    assert [(s.artist, s.title) for s in album.similar][:2] == [("Playboi Carti", "MUSIC"), ("Travis Scott", "UTOPIA")]
    assert len(album.similar) == 6  # "More Albums" by the same artist are not "similar"
    assert album.similar[0].url == f"{BASE}/album/815383-playboi-carti-music.php"
    facts = album.facts()
    assert facts.critic_score == album.critic_score and "Cloud Rap" in facts.genres


def test_real_search_results() -> None:
    results = parse_search_albums(real_page("search_albums.html"), BASE)
    assert len(results) == 60
    first = results[0]
    assert (first.artist, first.title, first.type) == ("The Chainsmokers", "Kanye", "2014 • Single")
    assert first.url == f"{BASE}/album/43815-the-chainsmokers-kanye.php"
    assert results[1].artist == "Twinstar & Kys devi"  # artist block without a link


def test_real_must_hear_list() -> None:
    albums = parse_album_list(real_page("must_hear_2026.html"), BASE)
    assert albums and all(a.must_hear for a in albums)
    assert (albums[0].artist, albums[0].title, albums[0].critic_score, albums[0].user_score) == (
        "Aldous Harding", "Train on the Island", 83, 75)


def test_own_multidisc_page() -> None:
    album = parse_album((OWN / "album_multidisc.html").read_text(), f"{BASE}/album/1001-test-band-double-feature.php")
    assert (album.artist, album.title) == ("Test Band", "Double Feature (Deluxe Edition)")
    assert album.critic_score == 83.6 and album.critic_count == 31
    assert album.user_score == 79.2 and album.user_count == 1204
    assert album.genres == ("Indie Rock", "Post-Punk") and album.secondary_genres == ("Shoegaze",)
    assert album.tags == ("melancholic", "guitar")
    assert album.must_hear is True
    assert [(t.disc, t.number, t.title) for t in album.tracks] == [(1, 1, "Opening"), (1, 2, "Duet"), (2, 1, "B-Side")]
    assert album.tracks[1].featured == ("Guest Singer", "Other Guest") and album.tracks[1].rating_count == 1
    assert album.tracks[2].length_s == 3750 and album.tracks[2].rating is None
    assert [(s.artist, s.title) for s in album.similar] == [("Other Band", "First"), (None, None)]


def test_own_page_without_critic_score() -> None:
    album = parse_album((OWN / "album_no_critic_score.html").read_text(), f"{BASE}/album/9-demo-tape.php")
    assert (album.artist, album.title) == ("Bedroom Artist", "Demo Tape")
    assert album.critic_score is None and album.critic_count is None
    assert album.user_score == 68.0 and album.user_count == 12
    assert album.genres == ("Bedroom Pop",) and album.tracks[0].title == "Only Song"
    assert album.similar == () and album.tags == ()


def test_malformed_page_is_a_clear_error_not_a_half_album() -> None:
    with pytest.raises(AotyParseError) as err:
        parse_album((OWN / "album_malformed.html").read_text(), f"{BASE}/album/3-x.php")
    assert "title and artist" in (err.value.detail or "")
    assert err.value.source == "aoty"


def test_challenge_page_is_not_an_album() -> None:
    assert is_challenge_page(CHALLENGE_HTML)
    with pytest.raises(AotyParseError):
        parse_album(CHALLENGE_HTML, f"{BASE}/album/3-x.php")


def test_own_search_page() -> None:
    results = parse_search_albums((OWN / "search_albums_small.html").read_text(), BASE)
    assert [r.title for r in results] == ["Rumours", "Rumours", "Rumours Live"]
    assert results[1].must_hear and not results[0].must_hear
    with pytest.raises(AotyParseError):
        parse_search_albums("<html><body>nothing</body></html>", BASE)
