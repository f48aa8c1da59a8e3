"""The compatibility card renders a sensible PNG, also for an empty breakdown."""

from __future__ import annotations

import struct

import pytest

from bot.render.compat_card import draw_compat_card, render_compat_card
from core.compat import compare
from core.domain import Bridge, Compatibility, SharedArtist, Weighted


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_card_png(world):
    data = render_compat_card(compare(world, "u0", "u3"), "Alice", "Bob with a very very long display name")
    width, height = png_size(data)
    assert 700 <= width <= 1000 and 300 <= height <= 500
    assert 10_000 < len(data) < 500_000


def test_card_with_nothing_shared():
    data = render_compat_card(Compatibility(score=3.0, label="opposites", raw=-2.0, confidence=0.1), "A", "B")
    assert png_size(data)[0] > 0


#: Names and artists with `$`: matplotlib would read the text between two of them as mathtext.
DOLLAR_PAIRS = [("$_$ alice", "Money $^$"), ("$$ Bill $$", "$_$ alice")]


def dollar_comp() -> Compatibility:
    """A breakdown where every catalogue string drawn on the card contains `$` as well."""
    return Compatibility(
        score=72.0, label="kindred $pirits$", raw=0.4, confidence=0.8,
        shared_artists=(SharedArtist("$uicideboy$", 120, 80, 0.6), SharedArtist("A$AP Rocky", 40, 30, 0.3)),
        shared_tags=(Weighted("$trap$", 1.0), Weighted("cloud rap", 0.5)),
        bridges=(Bridge("$NOT", "a", 0.9), Bridge("Money $ign", "b", 0.8)),
        differences_a=(Weighted("A$AP Ferg", 1.0), Weighted("$_$", 0.5)),
        differences_b=(Weighted("Ty Dolla $ign", 1.0),),
        components={"overlap": 0.5, "tags": 0.4, "latent": 0.3})


@pytest.mark.parametrize(("name_a", "name_b"), DOLLAR_PAIRS)
def test_card_with_dollar_signs_in_names_and_artists_renders(name_a: str, name_b: str) -> None:
    """Display names and artist names are free text: a `$` pair in them must not break /compat."""
    width, height = png_size(render_compat_card(dollar_comp(), name_a, name_b))
    assert 700 <= width <= 1000 and 300 <= height <= 500


def test_card_draws_dollar_signs_literally() -> None:
    """`$uicideboy$` is valid mathtext, so it would render (as an italic "uicideboy") rather than fail:
    the card must draw it, and every other text, as written."""
    fig = draw_compat_card(dollar_comp(), "$_$ alice", "Money $^$")
    texts = [t.get_text() for t in fig.texts]
    for literal in ("$_$ alice", "Money $^$", "$uicideboy$", "A$AP Rocky", "kindred $pirits$"):
        assert literal in texts
    assert any("$trap$" in t for t in texts) and any(t.startswith("$NOT → ") for t in texts)
    assert not [t.get_text() for t in fig.texts if t.get_parse_math()]
