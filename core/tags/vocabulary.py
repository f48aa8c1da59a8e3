"""The tag vocabulary: one key per tag however it is spelled, and a class for every tag.

Classification is curated first (`words.CURATED_BY_CLASS`: every one of HetRec's 200 most used tags has an
entry, checked by a test) and rule-based after that, failing *safe*: a tag made only of genre, mood,
era and place words ("swedish melodic death metal", "90s rock") is shown; a tag with a personal or
judging word ("albums i own", "sexy", "2008") is hidden; anything else — a user name, an inside
joke — is `UNKNOWN` and hidden. A missing genre costs one word in an embed, never a wrong one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache

from core.tags import words


class TagClass(StrEnum):
    GENRE = "genre"
    MOOD = "mood"
    SCENE = "scene"
    ERA = "era"
    PLACE = "place"
    PERSONAL = "personal"  # "seen live", "favorites", "albums i own", years used as ratings
    JUDGEMENT = "judgement"  # "awesome", "sexy", "beautiful"
    META = "meta"  # true but not a taste: "female vocalists", "cover", "piano", "christmas"
    UNKNOWN = "unknown"  # nothing we recognise (user names, inside jokes): hidden


#: Classes a listener may be shown.
SHOWN: frozenset[TagClass] = frozenset(
    {TagClass.GENRE, TagClass.MOOD, TagClass.SCENE, TagClass.ERA, TagClass.PLACE})

_NON_WORD = re.compile(r"[^0-9a-z<]+")
_DECADE = re.compile(r"^(?:19|20)?\d0s$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")


def _fold(name: object) -> str:
    """Case, accents, '&' and "n'" folded; words separated by single spaces."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ").replace("'n'", " and ").replace("’", "'")
    text = re.sub(r"\bn\b", "and", text)  # "rock n roll"
    return " ".join(_NON_WORD.sub(" ", text).split())


@lru_cache(maxsize=65_536)
def tag_key(name: object) -> str:
    """The identity of a tag: "synth pop", "synthpop" and "Synth-Pop" share one key ("synthpop").

    Spaces and hyphens are dropped altogether, then a few true synonyms are merged ("r&b"/"rnb",
    "female vocalist"/"female vocalists", "brasil"/"brazil").
    """
    key = _fold(name).replace(" ", "")
    return words.KEY_ALIASES.get(key, key)


@lru_cache(maxsize=65_536)
def canonical_tag(name: object) -> str:
    """How a tag is written when shown: the preferred spelling when known, else lower-case and tidy."""
    key = tag_key(name)
    preferred = words.PREFERRED.get(key)
    if preferred is not None:
        return preferred
    if _DECADE.match(key):
        return key  # "80's" -> "80s"
    return " ".join(str(name).strip().lower().replace(" - ", "-").split())


#: Curated classes by key (built here because keys need `tag_key`).
_CURATED: dict[str, TagClass] = {
    tag_key(tag): TagClass(cls) for cls, tags in words.CURATED_BY_CLASS.items() for tag in tags}


def _word_class(word: str) -> TagClass | None:
    if word in words.PLACE_WORDS:
        return TagClass.PLACE
    if _DECADE.match(word) or word in words.ERA_WORDS:
        return TagClass.ERA
    if word in words.MOOD_WORDS:
        return TagClass.MOOD
    if word in words.GENRE_WORDS or word.endswith(words.GENRE_SUFFIXES):
        return TagClass.GENRE
    return None


@lru_cache(maxsize=65_536)
def classify(name: object) -> TagClass:
    """What kind of word a tag is; see the module docstring for the order of the rules."""
    key = tag_key(name)
    if not key:
        return TagClass.UNKNOWN
    curated = _CURATED.get(key)
    if curated is not None:
        return curated
    folded = _fold(name)
    parts = folded.split()
    if any(p in words.PERSONAL_WORDS for p in parts) or any(s in folded for s in words.PERSONAL_PHRASES):
        return TagClass.PERSONAL
    if any(p in words.JUDGEMENT_WORDS for p in parts):
        return TagClass.JUDGEMENT
    if _NUMBER.match(key):
        return TagClass.PERSONAL  # a bare year or number: when it was heard, or a rating
    if any(p in words.META_WORDS for p in parts):
        return TagClass.META
    classes = [_word_class(p) for p in parts]
    if not classes or any(c is None for c in classes):
        return TagClass.UNKNOWN
    for wanted in (TagClass.GENRE, TagClass.SCENE, TagClass.MOOD, TagClass.PLACE, TagClass.ERA):
        if wanted in classes:
            return wanted
    return TagClass.UNKNOWN


def is_listener_tag(name: object) -> bool:
    """True when the tag may be shown to a person (a genre, mood, scene, era or place)."""
    return classify(name) in SHOWN


def display_tags(names: Iterable[object], limit: int | None = None) -> list[str]:
    """The tags to show, in the given order: listener words only, one spelling per tag.

    Order is kept (callers pass strongest first), so of "synthpop" and "synth pop" the stronger
    position wins and the other is dropped.
    """
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        if limit is not None and len(out) >= limit:
            break
        key = tag_key(name)
        if key in seen or not is_listener_tag(name):
            continue
        seen.add(key)
        out.append(canonical_tag(name))
    return out
