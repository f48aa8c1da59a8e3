"""The compatibility card renders a sensible PNG, also for an empty breakdown."""

from __future__ import annotations

import struct

from bot.render.compat_card import render_compat_card
from core.compat import compare
from core.domain import Compatibility


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
