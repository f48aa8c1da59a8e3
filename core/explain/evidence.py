"""Turn engine results into `Brief`s: the only facts an explanation may use.

A `Brief` is built once per request and used three ways, which is what keeps the model honest:
1. its `facts` (plain JSON) are the *whole* user message sent to the model: no ids, no usernames,
   no history beyond the items and tags that drove this result;
2. its `vocabulary` (every name and number in those facts) is what the grounding check accepts;
3. its `digest` (hash of kind + facts) is the cache key, so the same evidence is answered once;
   briefs naming people or quoting a member (`shareable=False`) are never cached, since an entry
   keyed by evidence cannot be found again by /forget.

Lists are truncated to the strongest few entries: a short prompt is faster and cheaper, and the
template uses the same few, so both read alike.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.domain import Compatibility, Kind, Recommendation, is_early_read
from core.explain.types import Pair, PlaylistBrief, WeeklyBrief
from core.tags import display_tags

PROMPT_VERSION = "2"  # bump when prompts or facts change shape, to retire cached answers
MAX_ITEMS = 5

_NUM_IN_TEXT = re.compile(r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?")  # "48,000" is one number


def normalise(text: str) -> str:
    """Fold a name for comparison: accents, case, '&'/'and', punctuation, a leading 'the'.

    "The Jesus & Mary Chain" and "jesus and mary chain" compare equal; "Sigur Rós" equals
    "sigur ros". Hyphens become spaces so "hip-hop" equals "hip hop".
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("&", " and ").replace("’", "'")
    text = re.sub(r"'s\b", "", text)
    text = re.sub(r"[^\w\s]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    if text.startswith("the "):
        text = text[4:]
    return text


@dataclass(frozen=True)
class Vocabulary:
    """Every name and number a grounded answer may mention (names normalised)."""

    names: frozenset[str]
    numbers: frozenset[float]

    @property
    def words(self) -> frozenset[str]:
        """Single words appearing in any name (for genre checks)."""
        return frozenset(w for n in self.names for w in n.split())

    def has_number(self, value: float) -> bool:
        return any(abs(value - n) <= 0.051 for n in self.numbers)


@dataclass(frozen=True)
class Brief:
    """Facts for one explanation. `answer` is the JSON shape expected back from a model."""

    kind: str
    facts: dict[str, Any]
    answer: tuple[str, ...] = ("text",)
    extra_names: tuple[str, ...] = field(default=())  # accepted names not sent (none today)
    #: Whether the answer may go to the shared cache, which is keyed by evidence rather than by user
    #: and so cannot be cleared by /forget: false for facts naming people or quoting a member.
    shareable: bool = True

    @property
    def facts_json(self) -> str:
        return json.dumps(self.facts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        raw = f"{PROMPT_VERSION}|{self.kind}|{self.facts_json}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    @property
    def vocabulary(self) -> Vocabulary:
        names: set[str] = set()
        numbers: set[float] = set()
        for value in _leaves(self.facts):
            if isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                numbers.update(_number_forms(float(value)))
            elif isinstance(value, str):
                names.add(normalise(value))
                for match in _NUM_IN_TEXT.findall(value):
                    numbers.update(_number_forms(float(match.replace(",", ""))))
        names.update(normalise(n) for n in self.extra_names)
        names.discard("")
        return Vocabulary(frozenset(names), frozenset(numbers))


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _number_forms(value: float) -> set[float]:
    """The ways a number may be written: as is, rounded, and as a percentage when it is a share."""
    if not math.isfinite(value):
        return set()
    forms = {value, float(round(value)), round(value, 1), float(math.floor(value))}
    if 0 < value < 1:
        forms |= {round(value * 100), round(value * 100, 1)}
    if 1900 <= value <= 2099:  # a year: its decade may be written "90s" / "1990s"
        forms |= {float(int(value) // 10 * 10), float(int(value) % 100 // 10 * 10)}
    return forms


def _num(value: float | None, digits: int = 0) -> float | int | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value) if digits == 0 else round(value, digits)


def _drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, [], {}, "")}


def _tags(names: Iterable[str], limit: int = MAX_ITEMS) -> list[str]:
    """Tags as a listener would say them: genres, moods, scenes, eras, places; one spelling each.

    Applied to every tag list in a brief, so neither the template nor a model can cite "seen live"
    or "sexy", and the grounding check rejects a model that names a tag we did not show.
    """
    return display_tags((n.strip() for n in names), limit)


def _top(names: Iterable[str], limit: int = MAX_ITEMS) -> list[str]:
    seen: list[str] = []
    for name in names:
        name = name.strip()
        if name and name.casefold() not in (s.casefold() for s in seen):
            seen.append(name)
        if len(seen) == limit:
            break
    return seen


# -- builders ---------------------------------------------------------------------------------


def main_signal(sources: Mapping[str, float]) -> str | None:
    """Name the model component that contributed most, in words a user understands."""
    if not sources:
        return None
    top = max(sources, key=lambda k: sources[k])
    return {
        "cf": "listeners with similar taste",
        "als": "listeners with similar taste",
        "nmf": "listeners with similar taste",
        "content": "similar sound and tags",
        "tags": "similar sound and tags",
        "popular": "popular right now",
        "pop": "popular right now",
        "aoty": "critics' favourites",
        "graph": "similar artists on Last.fm",
    }.get(top.lower())


def recommendation_brief(rec: Recommendation) -> Brief:
    """Facts for "why this item for you": the item, your items and tags that drove it, AOTY."""
    ev = rec.evidence
    items = sorted(ev.items, key=lambda w: -w.weight)
    tags = sorted(ev.tags, key=lambda w: -w.weight)
    aoty: dict[str, Any] = {}
    if ev.aoty is not None:
        a = ev.aoty
        aoty = _drop_empty(
            {
                "critic_score": _num(a.critic_score),
                "critic_reviews": a.critic_count,
                "user_score": _num(a.user_score, 1),
                "user_ratings": a.user_count,
                "must_hear": True if a.must_hear else None,
                "genres": _top(a.genres, 3),
            }
        )
    facts = _drop_empty(
        {
            "item": _drop_empty({"kind": str(rec.kind), "name": rec.name, "artist": rec.artist}),
            "because_you_listen_to": _top((w.name for w in items), MAX_ITEMS),
            "matching_tags": _tags((w.name for w in tags), MAX_ITEMS),
            "similar_on_lastfm_to": _top((w.name for w in sorted(ev.similar_to, key=lambda w: -w.weight)), 3),
            "aoty": aoty,
            "artist_listeners_on_lastfm": ev.lastfm_listeners,
            "artist_listeners_on_lastfm_in_words": listeners_in_words(ev.lastfm_listeners),
            "main_signal": main_signal(ev.sources),
            "note": ev.note,
        }
    )
    return Brief("recommendation", facts)


def listeners_in_words(count: int | None) -> str | None:
    """A global listener count as people say it: "48,000", "2.3 million" (two significant figures).

    Only global counts are ever put into words: our own few members are no measure of how well
    known an artist is, so the model's local popularity never reaches an explanation.
    """
    if count is None or count < 0:
        return None
    if count < 1000:
        return f"{count:,}"
    if count < 1_000_000:
        digits = len(str(count)) - 2
        return f"{round(count, -digits):,}"
    millions = count / 1_000_000
    text = f"{millions:.1f}".removesuffix(".0") if millions < 10 else f"{round(millions):,}"
    return f"{text} million"


def confidence_word(confidence: float) -> str:
    """"low" exactly when the score is an early read (`core.domain.is_early_read`), so the summary's
    "It's an early read" agrees with /compat's Confidence field, its card and the boards."""
    return "low" if is_early_read(confidence) else "medium" if confidence < 0.75 else "high"


def compatibility_brief(c: Compatibility, pair: Pair) -> Brief:
    """Facts for a compatibility result: score, label, what both love, where each differs."""
    shared = sorted(c.shared_artists, key=lambda s: -s.weight)
    facts = _drop_empty(
        {
            "person_a": pair.a or "you",
            "person_b": pair.b,
            "score_out_of_100": _num(c.score),
            "label": c.label,
            "confidence": confidence_word(c.confidence),
            "shared_artists": _top(s.name for s in shared),
            "shared_tags": _tags(w.name for w in sorted(c.shared_tags, key=lambda w: -w.weight)),
            "a_loves_more": _top((w.name for w in sorted(c.differences_a, key=lambda w: -w.weight)), 3),
            "b_loves_more": _top((w.name for w in sorted(c.differences_b, key=lambda w: -w.weight)), 3),
            "a_tags_more": _tags((w.name for w in sorted(getattr(c, "different_tags_a", ()), key=lambda w: -w.weight)), 3),
            "b_tags_more": _tags((w.name for w in sorted(getattr(c, "different_tags_b", ()), key=lambda w: -w.weight)), 3),
            "bridges": [
                {"artist": b.name, "loved_by": "a" if b.from_user == "a" else "b"}
                for b in sorted(c.bridges, key=lambda b: -b.likelihood)[:3]
            ],
        }
    )
    return Brief("compatibility", facts, shareable=False)  # display names


def playlist_brief(p: PlaylistBrief) -> Brief:
    facts = _drop_empty(
        {
            "seed": (p.seed or "").strip()[:200] or None,
            "top_artists": _top(p.top_artists),
            "top_tags": _tags(p.top_tags),
            "track_count": p.count or None,
        }
    )
    return Brief("playlist", facts, answer=("name", "description"))


def weekly_brief(w: WeeklyBrief) -> Brief:
    facts = _drop_empty(
        {
            "display_name": w.display_name.strip()[:64],
            "recommendation_count": w.rec_count,
            "top_tags": _tags(w.top_tags, 3),
            "top_artists": _top(w.top_artists, 3),
        }
    )
    return Brief("weekly", facts, shareable=False)  # a display name, once a week: no reuse anyway


def feedback_brief(text: str, known_tags: Iterable[str] = ()) -> Brief:
    facts = _drop_empty({"feedback": text.strip()[:500], "known_tags": _top(known_tags, 50)})
    return Brief(
        "feedback",
        facts,
        answer=("boost_tags", "avoid_tags", "era", "era_bias", "discovery_delta", "discovery"),
        shareable=False,  # the member's own words
    )


def is_album_like(rec: Recommendation) -> bool:
    return rec.kind in (Kind.ALBUM, Kind.TRACK)
