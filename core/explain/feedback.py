"""Free-text feedback ("less metal, more 90s shoegaze") -> `Preferences`.

Two paths produce the same structure: a model (when configured) whose JSON answer is validated by
`preferences_from_json`, and `parse_feedback`, a keyword parser that needs nothing and is the
fallback. The parser splits the text into clauses at commas / "and" / "but", finds the direction
of each clause ("less", "no", "more"…), pulls out decades, "older/newer" and discovery phrases,
and treats what is left as a tag. It does not know which words are artists; the recommender
matches tags against its own vocabulary (pass `known_tags` to keep only known tags).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.explain.lexicon import DECADE_WORDS, GENRE_ALIASES
from core.explain.types import ExplainFailed, Preferences

DISCOVERY_STEP = 0.2

_CLAUSE_SPLIT = re.compile(r"[,;.!?\n]+|\s+(?:and|but|plus|also|though|although|&)\s+", re.I)

_AVOID = re.compile(
    r"^(?:please\s+)?(?:a\s+lot\s+|way\s+|much\s+|a\s+bit\s+|a\s+little\s+)?"
    r"(?:less|fewer|no\s+more|no|not|never|without|avoid|stop(?:\s+(?:with|recommending|sending))?|skip|"
    r"nothing|enough(?:\s+with)?|drop|hate|dislike|don'?t\s+(?:like|want|send|recommend)|tired\s+of|"
    r"sick\s+of|cut(?:\s+out)?|ban)\b(?:\s+(?:the|of|any|more|so\s+much))*\s*",
    re.I,
)
_BOOST = re.compile(
    r"^(?:please\s+)?(?:a\s+lot\s+|way\s+|much\s+|a\s+bit\s+|a\s+little\s+)?"
    r"(?:more|some|extra|add|give\s+me|i\s+want|i'?d\s+like|i\s+love|love|like|into|lots\s+of|plenty\s+of|"
    r"only|just|focus\s+on|prefer|mostly|heavier\s+on)\b(?:\s+(?:the|of|some|on))*\s*",
    re.I,
)

_DEEPER = re.compile(
    r"\b(?:deep(?:er)?\s+cuts?|deeper|obscure|underground|niche|hidden\s+gems?|lesser[-\s]known|"
    r"less\s+(?:popular|mainstream|known|obvious)|surprise\s+me|something\s+new|more\s+adventurous|"
    r"adventurous|weirder|b-?sides|unknown)\b",
    re.I,
)
_SHALLOWER = re.compile(
    r"\b(?:more\s+(?:popular|mainstream|well[-\s]known|famous|accessible|familiar)|mainstream|popular|"
    r"well[-\s]known|famous|hits|bangers|classics|less\s+(?:obscure|niche|weird)|safer|familiar|"
    r"accessible|crowd[-\s]pleasers?)\b",
    re.I,
)
_ABS_DISCOVERY = re.compile(r"\bdiscovery\s*(?:level\s*)?(?:to|=|:|at)?\s*(\d{1,3})\s*%?", re.I)
_OLDER = re.compile(r"\b(?:older|old(?:er)?\s+(?:stuff|music|songs|records)|oldies|vintage|retro|classic\s+era)\b", re.I)
_NEWER = re.compile(r"\b(?:newer|new(?:er)?\s+(?:stuff|music|releases|songs|records)|recent|latest|modern|"
                    r"this\s+year|fresh(?:er)?\s+releases?)\b", re.I)
_DECADE = re.compile(r"(?<![\w])(?:'|’)?(19|20)?(\d)0['’]?s\b", re.I)
_FILLER = re.compile(
    r"\b(?:music|stuff|songs?|tracks?|bands?|artists?|albums?|records?|please|pls|recs?|recommendations?|"
    r"things|kind|sort|vibes?|type|genre|like|the|of|a|an|some|any|more|less|too|much|very|really|"
    r"please|for|me|i|want|would|from|era)\b",
    re.I,
)


def _decade_start(century: str | None, tens: str) -> int:
    d = int(tens) * 10
    if century:
        return int(century) * 100 + d
    return 2000 + d if d <= 20 else 1900 + d


def _norm_tag(tag: str) -> str:
    tag = re.sub(r"\s+", " ", tag.strip(" -'\"“”").casefold())
    return GENRE_ALIASES.get(tag, tag)


def _merge_era(eras: list[tuple[int, int]]) -> tuple[int, int] | None:
    if not eras:
        return None
    return min(e[0] for e in eras), max(e[1] for e in eras)


def parse_feedback(text: str, known_tags: Iterable[str] = ()) -> Preferences:
    """Keyword parser: never fails; unknown phrasing gives empty `Preferences`.

    Handles: "less/fewer/no/without/avoid X", "more/some/give me Y", a bare "Y" (boost), decades
    ("90s", "1990s", "'90s", "nineties"), "older"/"newer"/"recent", "deeper cuts"/"obscure"/
    "surprise me" (+discovery), "more popular"/"mainstream"/"hits" (-discovery), "discovery 80%".
    With `known_tags`, only tags in that list (case-insensitive) are kept.
    """
    known = {_norm_tag(t) for t in known_tags}
    boost: list[str] = []
    avoid: list[str] = []
    eras: list[tuple[int, int]] = []
    era_bias: str | None = None
    delta = 0.0
    absolute: float | None = None

    if m := _ABS_DISCOVERY.search(text):
        absolute = min(100, int(m.group(1))) / 100
        text = text[: m.start()] + text[m.end():]

    for clause in _CLAUSE_SPLIT.split(text):
        clause = clause.strip()
        if not clause:
            continue
        polarity = 1
        if m := _AVOID.match(clause):
            polarity = -1
            body = clause[m.end():]
        elif m := _BOOST.match(clause):
            body = clause[m.end():]
        else:
            body = clause
        # discovery phrases apply to the whole clause ("less popular" = deeper)
        if _DEEPER.search(clause):
            delta += DISCOVERY_STEP
            body = _SHALLOWER.sub(" ", _DEEPER.sub(" ", body))
        elif _SHALLOWER.search(clause):
            delta -= DISCOVERY_STEP if polarity > 0 else -DISCOVERY_STEP
            body = _SHALLOWER.sub(" ", body)
        if _OLDER.search(body):
            era_bias = "older" if polarity > 0 else "newer"
            body = _OLDER.sub(" ", body)
        elif _NEWER.search(body):
            era_bias = "newer" if polarity > 0 else "older"
            body = _NEWER.sub(" ", body)
        for dm in _DECADE.finditer(body):
            start = _decade_start(dm.group(1), dm.group(2))
            if polarity > 0:
                eras.append((start, start + 9))
        body = _DECADE.sub(" ", body)
        for word, start in DECADE_WORDS.items():
            if re.search(rf"\b{word}\b", body, re.I):
                if polarity > 0:
                    eras.append((start, start + 9))
                body = re.sub(rf"\b{word}\b", " ", body, flags=re.I)
        tag = _norm_tag(_FILLER.sub(" ", body))
        if not tag or len(tag) > 40 or not re.search(r"[a-z]", tag):
            continue
        if known and tag not in known:
            continue
        (boost if polarity > 0 else avoid).append(tag)

    return Preferences(
        boost_tags=tuple(dict.fromkeys(t for t in boost if t not in avoid)),
        avoid_tags=tuple(dict.fromkeys(avoid)),
        era=_merge_era(eras),
        era_bias=era_bias,  # type: ignore[arg-type]
        discovery_delta=max(-1.0, min(1.0, round(delta, 2))) if delta else None,
        discovery=absolute,
    )


def _tags(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value) or len(value) > 10:
        raise ExplainFailed(f"invalid: {field} must be a list of at most 10 strings")
    tags = [_norm_tag(t) for t in value]
    if any(not t or len(t) > 40 for t in tags):
        raise ExplainFailed(f"invalid: {field} has an empty or long tag")
    return tuple(dict.fromkeys(tags))


def _unit(value: Any, field: str, lo: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ExplainFailed(f"invalid: {field} must be a number")
    if not lo <= value <= 1:
        raise ExplainFailed(f"invalid: {field} out of range")
    return float(value)


def preferences_from_json(data: Mapping[str, Any], text: str, known_tags: Sequence[str] = ()) -> Preferences:
    """Validate a model's answer. Grounding: every tag must occur in the user's words (normalised)
    or in `known_tags`, and the era must be a plausible decade range; anything else is rejected
    (raises `ExplainFailed`) so the keyword parser is used instead."""
    if not isinstance(data, Mapping):
        raise ExplainFailed("invalid: answer is not an object")
    boost, avoid = _tags(data.get("boost_tags"), "boost_tags"), _tags(data.get("avoid_tags"), "avoid_tags")
    folded = " " + re.sub(r"[^a-z0-9&]+", " ", text.casefold()) + " "
    known = {_norm_tag(t) for t in known_tags}
    for tag in (*boost, *avoid):
        spaced = " " + re.sub(r"[^a-z0-9&]+", " ", tag) + " "
        if tag not in known and spaced not in folded:
            raise ExplainFailed(f"ungrounded: tag {tag!r} not in the feedback")
    era = data.get("era")
    if era is not None:
        if (not isinstance(era, list) or len(era) != 2 or not all(isinstance(y, int) and not isinstance(y, bool) for y in era)
                or not 1900 <= era[0] <= era[1] <= 2100):
            raise ExplainFailed("invalid: era must be [start_year, end_year]")
        era = (era[0], era[1])
    bias = data.get("era_bias")
    if bias not in (None, "older", "newer"):
        raise ExplainFailed("invalid: era_bias")
    return Preferences(
        boost_tags=boost,
        avoid_tags=avoid,
        era=era,
        era_bias=bias,
        discovery_delta=_unit(data.get("discovery_delta"), "discovery_delta", -1.0),
        discovery=_unit(data.get("discovery"), "discovery", 0.0),
    )
