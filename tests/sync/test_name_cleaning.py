"""`core.cleaning`: what every name goes through before it is stored (see also the Last.fm sync
test with hostile names in tests/sync/test_lastfm_sync.py and the CLI import tests)."""

from __future__ import annotations

from core.cleaning import clean_name, clean_token, printable


def test_clean_name_keeps_unicode_and_caps_length() -> None:
    assert clean_name("  Sigur\u00a0Rós \x00 ", 300) == "Sigur Rós"
    assert clean_name("a\u0301\u0302 🎵\u200d", 300) == "a\u0301\u0302 🎵\u200d"
    assert clean_name("\ud800lone", 300) == "lone"  # a lone surrogate cannot be encoded by either engine
    assert clean_name("x" * 10 + " " + "y" * 10, 11) == "x" * 10
    assert clean_name("\x00\x1f\t", 300) is None and clean_name(None, 5) is None
    assert clean_token("a" * 37, 36) is None and clean_token(" abc\x00 ", 36) == "abc"
    assert printable("\x1b]0;pwned\x07 \u202eevil") == "\\x1b]0;pwned\\x07 \\u202eevil"
