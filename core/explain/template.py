"""Explanations written without a model: instant, free, always available, and grounded by design.

Every sentence is filled only from the same `Brief` facts a model would see. Phrasing varies by a
stable hash of the item (the same album always reads the same) and, in a list, a shape already used
is skipped, so ten recommendations do not all start "Because you like…".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.domain import Compatibility, Recommendation
from core.explain.evidence import (
    Brief,
    compatibility_brief,
    playlist_brief,
    recommendation_brief,
    weekly_brief,
)
from core.explain.feedback import parse_feedback
from core.explain.types import Explanation, FeedbackResult, Pair, PlaylistBrief, UserRef, WeeklyBrief

Shape = Callable[[dict[str, Any]], str | None]


def stable_hash(*parts: object) -> int:
    """A hash that is the same in every process (Python's `hash` is salted per run)."""
    raw = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


def join(names: Sequence[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def title_case(tag: str) -> str:
    small = {"and", "of", "the", "n", "a"}
    words = tag.replace("-", " - ").split()
    out = [w if (w in small and i) else w[:1].upper() + w[1:] for i, w in enumerate(words)]
    return " ".join(out).replace(" - ", "-")


def choose(shapes: Sequence[Shape], facts: dict[str, Any], seed: int, used: set[int] | None = None) -> tuple[int, str]:
    """First applicable shape starting at `seed`, preferring shapes not in `used`."""
    n = len(shapes)
    fallback: tuple[int, str] | None = None
    for step in range(n):
        idx = (seed + step) % n
        text = shapes[idx](facts)
        if text is None:
            continue
        if used is None or idx not in used:
            return idx, text
        fallback = fallback or (idx, text)
    if fallback is None:
        raise ValueError("no template shape applies")
    return fallback


# -- recommendation -----------------------------------------------------------------------------


def _rec_ctx(facts: dict[str, Any]) -> dict[str, Any]:
    item = facts["item"]
    title = item["name"]
    if item.get("artist") and item.get("kind") in ("album", "track"):
        title = f"{item['name']} by {item['artist']}"
    return {
        "title": title,
        "it": "they" if item.get("kind") == "artist" else "it",
        "items": facts.get("because_you_listen_to", []),
        "tags": facts.get("matching_tags", []),
        "similar": facts.get("similar_on_lastfm_to", []),
        "aoty": facts.get("aoty", {}),
        "listeners": facts.get("artist_listeners_on_lastfm"),
        "listeners_words": facts.get("artist_listeners_on_lastfm_in_words"),
        "artist": item.get("artist"),
        "signal": facts.get("main_signal"),
        "note": facts.get("note"),
    }


def _r(fn: Callable[[dict[str, Any]], str | None]) -> Shape:
    return lambda facts: fn(_rec_ctx(facts))


REASONS: tuple[Shape, ...] = (
    _r(lambda c: f"Because you keep coming back to {join(c['items'][:2])}, {c['title']} is a natural next step."
       if c["items"] else None),
    _r(lambda c: f"{cap(c['title'])} sits right next to {join(c['items'][:2])} in your listening."
       if c["items"] else None),
    _r(lambda c: f"If {c['items'][0]} is on repeat for you, {c['title']} should click."
       if c["items"] else None),
    _r(lambda c: f"Listeners who love {join(c['items'][:2])} tend to love {c['title']} too."
       if c["items"] and c["signal"] == "listeners with similar taste" else None),
    _r(lambda c: f"{cap(c['title'])} shares the {join(c['tags'][:2])} streak that runs through your "
                 f"{c['items'][0]} plays." if c["items"] and c["tags"] else None),
    _r(lambda c: f"Your love of {join(c['items'][:3])} points straight at {c['title']}."
       if len(c["items"]) >= 2 else None),
    _r(lambda c: f"Picked for the {join(c['tags'][:2])} side of your taste: {c['title']}."
       if c["tags"] else None),
    _r(lambda c: f"{cap(c['title'])} brings together the {join(c['tags'][:3])} you play most."
       if len(c["tags"]) >= 2 else None),
)

#: Cold-start picks lean on how many listeners the model learns from play an item: the server's
#: members and, on a fresh deployment, the base corpus's listeners. "Listeners here" would claim the
#: server's own taste, so they name who it is; a claim about the wider world needs the global
#: Last.fm count (`_pop_extra`).
COLD_START: tuple[Shape, ...] = (
    _r(lambda c: f"{cap(c['title'])} is popular with the listeners I learn from, a good start while I learn "
                 "your taste."),
    _r(lambda c: f"A favourite among the listeners I learn from, to start with: {c['title']}."),
    _r(lambda c: f"While your history fills in, {c['title']} is a safe place to start: the listeners I learn "
                 f"from love {'them' if c['it'] == 'they' else 'it'}."),
)


def _a(number: object) -> str:
    """'a' or 'an' before a number as it is read aloud: "an 86", "an 11", "a 92"."""
    text = str(number)
    return "an" if text.startswith("8") or text.split(".")[0] in ("11", "18") else "a"


def _aoty_extra(c: dict[str, Any], variant: int) -> str | None:
    a = c["aoty"]
    cs, cc, us, uc = a.get("critic_score"), a.get("critic_reviews"), a.get("user_score"), a.get("user_ratings")
    options: list[str] = []
    if cs is not None and cc:
        options.append(f"Critics rate it {cs}/100 across {cc:,} reviews on AOTY.")
        options.append(f"It holds {_a(cs)} {cs} critic score on AOTY from {cc:,} reviews.")
    elif cs is not None:
        options.append(f"Critics rate it {cs}/100 on AOTY.")
    if us is not None and uc:
        options.append(f"AOTY listeners give it {us} from {uc:,} ratings.")
    if cs is not None and us is not None:
        options.append(f"On AOTY it scores {cs} with critics and {us} with listeners.")
    if a.get("must_hear"):
        options.append(
            f"It's an AOTY must-hear{f', with {_a(cs)} {cs} critic score' if cs is not None else ''}.")
    return options[variant % len(options)] if options else None


#: Global Last.fm listeners below which an artist is a "deeper cut", and above which "widely loved".
DEEP_CUT_LISTENERS = 150_000
WIDELY_KNOWN_LISTENERS = 1_500_000


def _pop_extra(c: dict[str, Any], variant: int) -> str | None:
    """A popularity line, only from global Last.fm listener counts (never our own members' share)."""
    n, words = c["listeners"], c["listeners_words"]
    if n is None or words is None:
        return None
    who = "them" if c["it"] == "they" else "it"
    if c["it"] == "they":
        if n < DEEP_CUT_LISTENERS:
            return (f"Only {words} people listen to them on Last.fm: a real find.",
                    f"A deeper cut: just {words} listeners on Last.fm.")[variant % 2]
        if n >= WIDELY_KNOWN_LISTENERS:
            return ("A widely loved pick, so it's a safe bet.",
                    f"{words} listeners on Last.fm already know {who}: a crowd favourite.")[variant % 2]
        return None
    if n < DEEP_CUT_LISTENERS and c["artist"]:
        return (f"A deeper cut: {c['artist']} has just {words} listeners on Last.fm.",
                f"Only {words} people listen to {c['artist']} on Last.fm: a real find.")[variant % 2]
    if n >= WIDELY_KNOWN_LISTENERS and c["artist"]:
        return f"{c['artist']} has {words} listeners on Last.fm: a safe bet."
    return None


def _tag_extra(c: dict[str, Any], variant: int, reason: str) -> str | None:
    tags = [t for t in c["tags"] if t not in reason]
    if not tags:
        return None
    return (f"Expect plenty of {join(tags[:2])}.", f"Tagged {join(tags[:2])}.",
            f"Think {join(tags[:2])}.")[variant % 3]


def _similar_extra(c: dict[str, Any]) -> str | None:
    """Last.fm's similar-artist graph drove it: say so in Last.fm's own words."""
    if not c["similar"]:
        return None
    return f"{'They are' if c['it'] == 'they' else 'It is'} similar to {join(c['similar'][:2])} on Last.fm."


def recommendation_text(facts: dict[str, Any], key: object, used: set[int] | None = None) -> tuple[int, str]:
    """One or two sentences for a recommendation; returns (shape index, text)."""
    c = _rec_ctx(facts)
    seed = stable_hash("rec", key)
    if not c["items"] and not c["tags"]:
        idx, reason = choose(COLD_START, facts, seed)
        idx += len(REASONS)
    else:
        idx, reason = choose(REASONS, facts, seed, used)
    v = seed >> 8
    for extra in (_similar_extra(c), _aoty_extra(c, v), _pop_extra(c, v), _tag_extra(c, v, reason)):
        if extra:
            return idx, f"{reason} {extra}"
    return idx, reason


# -- compatibility ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    name: str | None  # None = "you"

    @property
    def subj(self) -> str:
        return self.name or "you"

    @property
    def poss(self) -> str:
        return "your" if self.name is None else f"{self.name}'s"

    def verb(self, base: str, third: str) -> str:
        return base if self.name is None else third


#: Each compatibility label (`core.compat.calibration.LABELS`) as the predicate of "you and Sam …".
#: The labels are noun phrases made for a heading ("83/100 · great match"); put straight after "are"
#: they read "you and Sam are great match".
LABEL_PREDICATES: dict[str, str] = {
    "opposites": "are opposites",
    "different wavelengths": "are on different wavelengths",
    "some common ground": "share some common ground",
    "in tune": "are in tune",
    "great match": "are a great match",
    "kindred spirits": "are kindred spirits",
}


def label_predicate(label: str) -> str:
    """'are a great match' for 'great match'; a label without its own phrase still reads as English."""
    return LABEL_PREDICATES.get(label, f"come out as {label}")


#: The first sentence. No score: the answer shows it right above the explanation ("## 83/100 · great
#: match"), and saying it twice in two lines read as filler.
HEADLINES: tuple[Callable[[_Person, _Person, dict[str, Any]], str], ...] = (
    lambda a, b, f: f"{cap(a.subj)} and {b.subj} {label_predicate(f['label'])}.",
    lambda a, b, f: f"Overall, {a.subj} and {b.subj} {label_predicate(f['label'])}.",
    lambda a, b, f: f"When it comes to music, {a.subj} and {b.subj} {label_predicate(f['label'])}.",
)


def _shared(a: _Person, b: _Person, f: dict[str, Any], v: int) -> str | None:
    artists, tags = f.get("shared_artists", []), f.get("shared_tags", [])
    both = "You both" if a.name is None else f"{a.subj} and {b.subj} both"
    if artists and tags:
        return (f"{both} love {join(artists[:3])}, with {join(tags[:2])} as common ground.",
                f"The overlap runs through {join(artists[:3])} and a shared taste for {join(tags[:2])}.")[v % 2]
    if artists:
        return (f"{both} love {join(artists[:3])}.", f"The overlap runs through {join(artists[:3])}.")[v % 2]
    if tags:
        return (f"{both} gravitate to {join(tags[:3])}.", f"Common ground: {join(tags[:3])}.")[v % 2]
    return None


def _differ(a: _Person, b: _Person, f: dict[str, Any], v: int) -> str | None:
    da, db = f.get("a_loves_more", []), f.get("b_loves_more", [])
    ta, tb = f.get("a_tags_more", []), f.get("b_tags_more", [])
    options: list[str] = []
    if ta and tb:
        options.append(f"{cap(a.subj)} {a.verb('lean', 'leans')} {join(ta[:2])}, while {b.subj} leans {join(tb[:2])}.")
    if da and db:
        options.append(f"Where {'you' if a.name is None else 'they'} differ: {a.subj} {a.verb('bring', 'brings')} "
                       f"{join(da[:2])}, {b.subj} brings {join(db[:2])}.")
        options.append(f"{cap(a.subj)} {a.verb('are', 'is')} deeper into {join(da[:2])}, {b.subj} into {join(db[:2])}.")
    if not options and (ta or da):
        options.append(f"{cap(a.subj)} {a.verb('go', 'goes')} further into {join((ta or da)[:2])}.")
    if not options and (tb or db):
        options.append(f"{cap(b.subj)} goes further into {join((tb or db)[:2])}.")
    return options[v % len(options)] if options else None


def _bridge(a: _Person, b: _Person, f: dict[str, Any]) -> str | None:
    bridges = f.get("bridges", [])
    if not bridges:
        return None
    br = bridges[0]
    lover, learner = (a, b) if br["loved_by"] == "a" else (b, a)
    return f"{cap(learner.subj)} might love {br['artist']}, one of {lover.poss} favourites."


def compatibility_text(facts: dict[str, Any], pair: Pair) -> str:
    a, b = _Person(pair.a), _Person(pair.b)
    seed = stable_hash("compat", facts.get("score_out_of_100"), *facts.get("shared_artists", []), pair.b)
    parts = [HEADLINES[seed % len(HEADLINES)](a, b, facts)]
    second = (_differ(a, b, facts, seed >> 6), _bridge(a, b, facts))
    if (seed >> 10) % 3 == 0:  # a third of pairs hear about a bridge artist before the differences
        second = second[::-1]
    for extra in (_shared(a, b, facts, seed >> 4), *second):
        if extra and len(parts) < 3:
            parts.append(extra)
    if facts.get("confidence") == "low":
        parts.append(f"It's an early read: one of {'you' if pair.a is None else 'them'} has a thin history so far.")
    return " ".join(parts)


# -- playlist -----------------------------------------------------------------------------------

NAME_SHAPES: tuple[Shape, ...] = (
    lambda f: title_case(f["seed"]) if f.get("seed") and len(f["seed"].split()) <= 4 else None,
    lambda f: f"{title_case(f['top_tags'][0])} Drift" if f.get("top_tags") else None,
    lambda f: f"Late Night {title_case(f['top_tags'][0])}" if f.get("top_tags") else None,
    lambda f: f"Orbiting {f['top_artists'][0]}" if f.get("top_artists") else None,
    lambda f: f"{f['top_artists'][0]} and Beyond" if f.get("top_artists") else None,
    lambda f: f"{title_case(f['top_tags'][0])} / {title_case(f['top_tags'][1])}"
    if len(f.get("top_tags", [])) >= 2 else None,
    lambda f: f"Deep {title_case(f['top_tags'][0])}" if f.get("top_tags") else None,
    lambda f: f"{title_case(f['top_tags'][0])} Hours" if f.get("top_tags") else None,
    lambda f: None if f.get("top_tags") or f.get("top_artists") else "Fresh Rotation",
)


def _count(f: dict[str, Any]) -> str:
    n = f.get("track_count")
    return f"{n} tracks" if n and n != 1 else "One track" if n == 1 else "Tracks"


DESCRIPTION_SHAPES: tuple[Shape, ...] = (
    lambda f: f"{_count(f)} of {join(f['top_tags'][:2])}, built around {join(f['top_artists'][:2])}."
    if f.get("top_tags") and f.get("top_artists") else None,
    lambda f: f"{_count(f)} orbiting {join(f['top_artists'][:3])}."
    if f.get("top_artists") else None,
    lambda f: f"{_count(f)} for the {join(f['top_tags'][:2])} mood, from {join(f['top_artists'][:2])} and friends."
    if f.get("top_tags") and f.get("top_artists") else None,
    lambda f: f"{_count(f)} of {join(f['top_tags'][:3])}." if f.get("top_tags") else None,
    lambda f: None if f.get("top_tags") or f.get("top_artists") else f"{_count(f)} picked for you.",
)


def playlist_text(facts: dict[str, Any]) -> tuple[str, str]:
    seed = stable_hash("playlist", facts.get("seed"), *facts.get("top_artists", []), *facts.get("top_tags", []))
    _, name = choose(NAME_SHAPES, facts, seed)
    _, description = choose(DESCRIPTION_SHAPES, facts, seed >> 8)
    return name[:100], description


# -- weekly DM opener ---------------------------------------------------------------------------


def _picks(n: int) -> str:
    return "one new pick" if n == 1 else f"{n} new picks"


WEEKLY_SHAPES: tuple[Shape, ...] = (
    lambda f: f"Hey {f['display_name']}! {cap(_picks(f['recommendation_count']))} this week, leaning "
              f"{join(f['top_tags'][:2])}." if f.get("top_tags") else None,
    lambda f: f"{f['display_name']}, your week in music: {_picks(f['recommendation_count'])}, with plenty "
              f"of {f['top_tags'][0]}." if f.get("top_tags") else None,
    lambda f: f"Hi {f['display_name']}, here are {_picks(f['recommendation_count'])} shaped by a week of "
              f"{join(f['top_artists'][:2])}." if f.get("top_artists") else None,
    lambda f: f"{cap(_picks(f['recommendation_count']))} for you this week, {f['display_name']}, inspired by "
              f"{join(f['top_artists'][:2])}." if f.get("top_artists") else None,
    lambda f: None if f.get("top_tags") or f.get("top_artists")
    else f"Hey {f['display_name']}, {_picks(f['recommendation_count'])} landed this week.",
)


def weekly_text(facts: dict[str, Any]) -> str:
    if not facts.get("recommendation_count"):
        return (f"Hey {facts['display_name']}, no new picks this week. Keep listening and "
                "I'll have some next time.")
    seed = stable_hash("weekly", facts["display_name"], *facts.get("top_tags", []), *facts.get("top_artists", []))
    return choose(WEEKLY_SHAPES, facts, seed)[1]


# -- the explainer ------------------------------------------------------------------------------


class TemplateExplainer:
    """The `Explainer` that needs nothing: used alone when no model is configured, and as the
    fallback of `GroundedExplainer`. Never raises for well-formed domain objects."""

    source = "template"

    def render(self, brief: Brief, *, key: object = None, used: set[int] | None = None,
               pair: Pair | None = None, reason: str | None = None) -> Explanation:
        """Write the template text for any `Brief` (the composite uses this for its fallback)."""
        f = brief.facts
        if brief.kind == "recommendation":
            _, text = recommendation_text(f, key if key is not None else brief.digest, used)
            return Explanation(text, "template", reason, kind=brief.kind)
        if brief.kind == "compatibility":
            return Explanation(compatibility_text(f, pair or Pair()), "template", reason, kind=brief.kind)
        if brief.kind == "playlist":
            name, description = playlist_text(f)
            return Explanation(description, "template", reason, name=name, kind=brief.kind)
        if brief.kind == "weekly":
            return Explanation(weekly_text(f), "template", reason, kind=brief.kind)
        raise ValueError(f"no template for {brief.kind}")

    @staticmethod
    def rec_key(rec: Recommendation) -> str:
        return f"{rec.kind}:{rec.item_id}:{rec.name}"

    async def recommendation(self, rec: Recommendation, *, user_id: UserRef = None) -> Explanation:
        return self.render(recommendation_brief(rec), key=self.rec_key(rec))

    async def recommendations(self, recs: Sequence[Recommendation], *, user_id: UserRef = None) -> list[Explanation]:
        return self.render_list(recs)

    def render_list(self, recs: Sequence[Recommendation], reasons: Sequence[str | None] | None = None) -> list[Explanation]:
        """Explain a list so that no sentence shape repeats until every shape has been used."""
        used: set[int] = set()
        out: list[Explanation] = []
        for i, rec in enumerate(recs):
            if len(used) >= len(REASONS):
                used.clear()
            idx, text = recommendation_text(recommendation_brief(rec).facts, self.rec_key(rec), used)
            used.add(idx)
            out.append(Explanation(text, "template", reasons[i] if reasons else None, kind="recommendation"))
        return out

    async def compatibility(self, compat: Compatibility, pair: Pair = Pair(), *, user_id: UserRef = None) -> Explanation:
        return self.render(compatibility_brief(compat, pair), pair=pair)

    async def playlist(self, brief: PlaylistBrief, *, user_id: UserRef = None) -> Explanation:
        return self.render(playlist_brief(brief))

    async def weekly_opener(self, brief: WeeklyBrief, *, user_id: UserRef = None) -> Explanation:
        return self.render(weekly_brief(brief))

    async def preferences(self, text: str, *, known_tags: Sequence[str] = (), user_id: UserRef = None) -> FeedbackResult:
        return FeedbackResult(parse_feedback(text, known_tags), "template")
