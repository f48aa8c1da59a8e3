"""Identity matching: one key for the same artist / album / track across Last.fm, Spotify and AOTY.

The services spell the same work differently ("Beyoncé" / "Beyonce", "Don't Stop Me Now - Remastered
2011" / "Don't Stop Me Now (2011 Remaster)", "Ｆｏｏ" in fullwidth, "Jay-Z" / "JAY Z", "feat." credits in
the title or not). Keys erase those differences; a fuzzy score covers what keys cannot (album titles
on AOTY, search results).

What is normalised away (and why it is safe):
- case (casefold), compatibility forms (NFKC: fullwidth, ligatures), diacritics (NFKD, combining marks
  dropped) and letters that do not decompose (ø, æ, œ, ł, đ, þ, ß);
- punctuation and spaces entirely, after word-level rules: "Jay-Z" = "JAY Z", "AC/DC" = "ACDC",
  "R.E.M." = "REM"; "$" reads as "s" (A$AP = ASAP, Ke$ha = Kesha); "&", "+" and "and" are one token;
- featured-artist credits: "(feat. X)", "[ft. X]", "(with X)", " feat. X", " featuring X";
- edition/version decorations, in brackets or after " - ": remaster(ed) [year], deluxe/expanded/
  anniversary/special/bonus-track edition, mono/stereo mix, radio edit, single/album version,
  explicit/clean. A suffix is removed only when the WHOLE bracket or " - " part is such a decoration,
  so "Live Forever", "Remaster Me" or "Deluxe" as a title stay untouched;
- a leading "The " on artist names (The Beatles = Beatles) — not on titles, where it can matter.

Decisions on live versions: for TRACKS, "(Live)", "- Live", "(Live at Wembley 1986)" are removed:
a live performance is the same song, and for taste modelling a play of the live version is evidence
for the song. For ALBUMS they are kept: a live album is a different release with its own AOTY page
and scores ("Nevermind" vs a hypothetical "Nevermind (Live)"). Remixes, acoustic, demo, instrumental
and cover versions are kept everywhere: they are distinct works.

Keys are plain strings, suitable for a unique index: `artist_key`, `album_key`, `track_key`.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache

SEP = "\x1f"  # between the artist and the title part of a key; never produced by normalisation

#: thresholds for `album_match_score` / `track_match_score`, chosen on tests/sources/fixtures/matching_pairs.tsv
ALBUM_THRESHOLD = 0.86
TRACK_THRESHOLD = 0.96

_LETTERS = str.maketrans({
    "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d",
    "þ": "th", "Þ": "th", "ð": "d", "ı": "i", "$": "s",
    "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
})

_FEAT = r"(?:feat\.?|ft\.?|featuring|with)"
_BRACKETED_FEAT = re.compile(rf"\s*[\(\[]\s*{_FEAT}\s[^\)\]]*[\)\]]", re.IGNORECASE)
_TRAILING_FEAT = re.compile(r"\s+(?:feat\.|ft\.|featuring)\s.*$", re.IGNORECASE)
_YEAR = r"(?:\d{2}|\d{4})"
_EDITION_WORDS = (r"(?:deluxe|expanded|anniversary|special|collector'?s|legacy|bonus tracks?|super|"
                  r"limited|definitive|platinum|tour|extended|complete|japan(?:ese)?|international|us|uk)")
_DECORATION_CORE = (
    rf"(?:{_YEAR}\s+)?(?:digital(?:ly)?\s+)?remaster(?:ed)?(?:\s+version)?(?:\s+{_YEAR})?(?:\s+version)?"
    rf"|(?:{_YEAR}\s+)?(?:{_EDITION_WORDS}\s+)*(?:edition|version|deluxe|expanded|extended|reissue)(?:\s+{_YEAR})?"
    rf"|(?:\d+(?:st|nd|rd|th)\s+)?anniversary(?:\s+(?:edition|remaster|version))?"
    r"|(?:mono|stereo)(?:\s+(?:mix|version))?|radio\s+edit|single\s+version|album\s+version|original\s+mix"
    r"|explicit(?:\s+version)?|clean(?:\s+version)?|bonus\s+track"
)
_LIVE = r"live(?:\s+(?:at|from|in|on)\b.*|\s+version|\s+\d{4})?"
_ONE_DECORATION = re.compile(rf"^\s*(?:{_DECORATION_CORE})\s*$", re.IGNORECASE)
_ONE_LIVE = re.compile(rf"^\s*(?:{_LIVE})\s*$", re.IGNORECASE)
_BRACKETS = re.compile(r"\s*[\(\[]([^\(\)\[\]]*)[\)\]]\s*$")
_DASH_SUFFIX = re.compile(r"\s+-\s+([^-]+)$")
_NON_ALNUM = re.compile(r"[^\w]+")
_DOTTED_OR_JOINED = re.compile(r"(?<=\w)['.](?=\w)")  # R.E.M. -> REM, Don't -> Dont (before splitting)


def _fold(text: str) -> str:
    """Unicode folding: fullwidth/ligatures (NFKC), case, then diacritics removed (NFKD)."""
    text = unicodedata.normalize("NFKC", text).translate(_LETTERS).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).translate(_LETTERS)


def _is_decoration(part: str, *, strip_live: bool) -> bool:
    part = part.strip()
    if _ONE_DECORATION.match(part):
        return True
    if strip_live and _ONE_LIVE.match(part):
        return True
    # combinations such as "Live / Remastered 2009" or "2011 Remaster; Mono"
    pieces = [p for p in re.split(r"\s*[/;,]\s*|\s+-\s+", part) if p]
    return len(pieces) > 1 and all(_is_decoration(p, strip_live=strip_live) for p in pieces)


def strip_decorations(title: str, *, strip_live: bool = True) -> str:
    """Remove feature credits and trailing edition/version decorations (repeatedly, outermost last)."""
    text = _BRACKETED_FEAT.sub("", title)
    text = _TRAILING_FEAT.sub("", text)
    while True:
        m = _BRACKETS.search(text)
        if m and m.start() > 0 and (_is_decoration(m.group(1), strip_live=strip_live)
                                    or re.match(rf"^\s*{_FEAT}\s", m.group(1), re.IGNORECASE)):
            text = text[:m.start()]
            continue
        m = _DASH_SUFFIX.search(text)
        if m and m.start() > 0 and _is_decoration(m.group(1), strip_live=strip_live):
            text = text[:m.start()]
            continue
        return text.strip() or title.strip()


def _tokens(text: str) -> list[str]:
    text = _DOTTED_OR_JOINED.sub("", text)
    tokens = [t for t in _NON_ALNUM.sub(" ", text.replace("_", " ")).split() if t]
    return ["and" if t in ("&", "n", "+") else ("part" if t == "pt" else t) for t in tokens]


def _and(text: str) -> str:
    return re.sub(r"\s*[&+]\s*", " and ", text)


@lru_cache(maxsize=200_000)
def normalize_artist(name: str) -> str:
    """Spaced, folded artist name without a leading "the" (for display-free comparison and scores)."""
    folded = _and(_fold(name.strip()))
    tokens = _tokens(folded)
    if len(tokens) > 1 and tokens[0] == "the" and tokens[1:] != ["the"]:  # but "The The" stays
        tokens = tokens[1:]
    return " ".join(tokens) or folded.strip()


@lru_cache(maxsize=200_000)
def normalize_title(title: str, *, strip_live: bool = True) -> str:
    """Spaced, folded track/album title with credits and decorations removed."""
    folded = _and(_fold(strip_decorations(title.strip(), strip_live=strip_live)))
    return " ".join(_tokens(folded)) or folded.strip()


def _compact(spaced: str) -> str:
    return spaced.replace(" ", "")


# Keys are pure functions of their arguments and listening histories repeat the same names endlessly,
# so memoising them makes ingestion cost per *distinct* name, not per play.
@lru_cache(maxsize=200_000)
def artist_key(name: str) -> str:
    return _compact(normalize_artist(name))


@lru_cache(maxsize=400_000)
def track_key(artist: str, title: str) -> str:
    return f"{artist_key(artist)}{SEP}{_compact(normalize_title(title, strip_live=True))}"


@lru_cache(maxsize=200_000)
def album_key(artist: str, title: str) -> str:
    return f"{artist_key(artist)}{SEP}{_compact(normalize_title(title, strip_live=False))}"


#: words whose presence on one side only means a different recording or release
DISTINCT_WORDS = frozenset({
    "live", "demo", "remix", "remixes", "mix", "acoustic", "instrumental", "naked", "unplugged", "edit",
    "cover", "karaoke", "reprise", "disc", "disk", "vol", "volume", "dub", "session", "sessions",
    "rehearsal", "take", "alternate", "alt", "orchestral", "acapella", "interlude", "intro", "outro",
})
#: words that only describe an edition: a title that differs by these alone is the same album
EDITION_WORDS = frozenset({
    "deluxe", "edition", "collectors", "collector", "remaster", "remastered", "expanded", "anniversary",
    "super", "special", "bonus", "reissue", "legacy", "extended", "limited", "definitive", "version",
    "track", "tracks",
})
_ROMAN = frozenset({"ii", "iii", "iv", "vi", "vii", "viii", "ix", "xi", "xii", "xiii"})
_ORDINAL = re.compile(r"^\d+(?:st|nd|rd|th)$")


def _is_number(token: str) -> bool:
    return token.isdigit() or token in _ROMAN


def _ratio(a: str, b: str) -> float:
    """Similarity of two normalised strings: best of the raw and word-order-insensitive ratios."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    if _compact(a) == _compact(b):
        return 1.0
    direct = SequenceMatcher(None, a, b, autojunk=False).ratio()
    sorted_a, sorted_b = " ".join(sorted(a.split())), " ".join(sorted(b.split()))
    return max(direct, SequenceMatcher(None, sorted_a, sorted_b, autojunk=False).ratio())


def _title_similarity(a: str, b: str) -> float:
    """Like `_ratio`, with two vetoes and one shortcut that plain edit distance gets wrong.

    - numbers must agree ("Pt. 1"/"Pt. 2", "Led Zeppelin II"/"III", "21"/"25", "Song 2"/"Song");
    - a DISTINCT_WORDS word on one side only ("live", "remix", "demo", "naked"...) means another work;
    - a whole word replaced by an unrelated one ("Blue Album"/"Green Album") means another work;
    - a difference made only of EDITION_WORDS, years and ordinals ("DAMN. COLLECTORS EDITION") is
      the same release.
    """
    if a == b or _compact(a) == _compact(b):
        return 1.0
    ta, tb = a.split(), b.split()
    only_a = [t for t in ta if t not in tb]
    only_b = [t for t in tb if t not in ta]
    diff = only_a + only_b

    def edition_like(t: str) -> bool:
        return t in EDITION_WORDS or _ORDINAL.match(t) is not None or (t.isdigit() and len(t) == 4)

    if diff and (not only_a or not only_b) and all(edition_like(t) for t in diff) \
            and any(t in EDITION_WORDS for t in diff):
        return 1.0
    if {t for t in ta if _is_number(t)} != {t for t in tb if _is_number(t)}:
        return 0.0
    if any(t in DISTINCT_WORDS for t in diff):
        return 0.0
    if only_a and only_b:
        for mine, theirs in ((only_a, only_b), (only_b, only_a)):
            for t in mine:
                if not any(SequenceMatcher(None, t, u, autojunk=False).ratio() >= 0.75 for u in theirs):
                    return 0.0
    return _ratio(a, b)


def _pair_score(artist_sim: float, title_sim: float) -> float:
    # geometric mean: a perfect title cannot rescue a different artist (and vice versa)
    return (artist_sim * title_sim) ** 0.5


def album_match_score(artist_a: str, title_a: str, artist_b: str, title_b: str) -> float:
    """0..1 similarity of two (artist, album) pairs; >= ALBUM_THRESHOLD means "same album"."""
    if album_key(artist_a, title_a) == album_key(artist_b, title_b):
        return 1.0
    return _pair_score(_ratio(normalize_artist(artist_a), normalize_artist(artist_b)),
                       _title_similarity(normalize_title(title_a, strip_live=False),
                                         normalize_title(title_b, strip_live=False)))


def track_match_score(artist_a: str, title_a: str, artist_b: str, title_b: str) -> float:
    """0..1 similarity of two (artist, track) pairs; >= TRACK_THRESHOLD means "same track"."""
    if track_key(artist_a, title_a) == track_key(artist_b, title_b):
        return 1.0
    return _pair_score(_ratio(normalize_artist(artist_a), normalize_artist(artist_b)),
                       _title_similarity(normalize_title(title_a), normalize_title(title_b)))


def same_album(artist_a: str, title_a: str, artist_b: str, title_b: str) -> bool:
    return album_match_score(artist_a, title_a, artist_b, title_b) >= ALBUM_THRESHOLD


def same_track(artist_a: str, title_a: str, artist_b: str, title_b: str) -> bool:
    return track_match_score(artist_a, title_a, artist_b, title_b) >= TRACK_THRESHOLD
