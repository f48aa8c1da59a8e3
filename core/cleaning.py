"""Text from outside (names from Last.fm, Spotify and import files) made safe to store and to print.

Why one module: the two database engines disagree on odd text. PostgreSQL refuses a NUL byte in a
`varchar` and enforces column lengths, SQLite stores both without a word; neither can encode a lone
surrogate. Cleaning names once, where every source enters (`core.sync.ingest`), makes the stored
result the same on both engines and means one odd scrobble can never stop a whole history.

What is removed: control characters (Unicode category Cc: NUL, ESC, DEL, the C1 range) and lone
surrogates (Cs). Whitespace runs (tabs, newlines, NBSP, line separators) become one space. Everything
else is kept as the source spelled it: letters of any script, combining marks, emoji and their
zero-width joiners, right-to-left marks.
"""

from __future__ import annotations

import re

#: Cc without the characters `str.split()` already treats as whitespace, plus lone surrogates.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff]")
#: What an error message must not carry raw to a terminal: every Cc (ESC starts ANSI/OSC sequences),
#: lone surrogates, and the bidirectional overrides that reorder what a reader sees ("Trojan Source").
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_name(text: str | None, limit: int) -> str | None:
    """A name fit for a `String(limit)` column on any engine, or None when nothing usable is left.

    Control characters go, whitespace runs become one space, and the result is cut to `limit`
    characters (PostgreSQL counts characters, as Python does).
    """
    if text is None:
        return None
    if _CONTROL.search(text) is not None:
        text = _CONTROL.sub("", text)
    text = " ".join(text.split())[:limit].rstrip()
    return text or None


def clean_token(text: str | None, limit: int) -> str | None:
    """An identifier (MBID, Spotify id, URL): cleaned like a name, but dropped when it is longer than
    its column — a cut identifier would point at something else."""
    cleaned = clean_name(text, limit + 1)
    if cleaned is None or len(cleaned) > limit or " " in cleaned:
        return None
    return cleaned


def printable(text: str) -> str:
    """`text` with control and bidi-override characters shown as escapes (``\\x1b``, ``\\u202e``).

    Why: an import error quotes what it found in the file; a raw ESC or OSC sequence from a hostile
    file would otherwise be interpreted by the user's terminal.
    """
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
