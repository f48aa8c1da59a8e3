"""The grounding check: does a model's sentence mention only things present in its evidence?

Rule (applied to every model answer before it is shown or cached):
1. **Quoted titles** ("…", “…”, *…*, _…_) must each match an evidence name.
2. **Capitalised spans** — maximal runs of capitalised words, joined by small connectors ("of",
   "the", "and", "&", "de"…) and broken by punctuation — must match an evidence name, either whole
   or as a run of whole words inside one ("Mary Chain" inside "The Jesus and Mary Chain"). Common
   words at either end of a span ("Because", "If", "You") are dropped first, so sentence starters
   pass; a lone capitalised word that is neither common nor in the evidence rejects the answer.
3. **Genre words** from a fixed list (metal, jazz, shoegaze, hip-hop…) must appear in the evidence,
   even when written in lower case.
4. **Numbers** (scores, counts, percentages, decades such as "90s") must equal an evidence number,
   allowing rounding and share↔percent; "100" is allowed for "out of 100".
Comparison is after `evidence.normalise` (case, accents, "&"/"and", punctuation, leading "the").

Limits, on purpose: an invented name written entirely in lower case ("i love slowdive") or a
spelled-out number ("twelve") is not caught; a correct answer that starts a sentence with an
uncommon word ("Shimmering guitars…") is rejected. The second costs only a template instead of a
model sentence; the first is rare with the prompt's instructions and JSON mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.explain.evidence import Brief, Vocabulary, normalise
from core.explain.lexicon import COMMON_WORDS, GENRE_ALIASES, GENRES, TITLE_WORDS
from core.explain.types import ExplainFailed, Explanation
from core.tags import tag_key

CONNECTORS = frozenset({"of", "the", "and", "&", "de", "la", "le", "les", "el", "y", "del", "von", "van",
                        "da", "in", "on", "a", "for", "to", "n'", "o'", "du", "des", "der", "di"})
ALLOWED_NUMBERS = frozenset({100.0})
MAX_TEXT = 400
MAX_NAME = 60

_QUOTED = re.compile(r"[\"“”]([^\"“”]{1,80})[\"“”]|\*{1,2}([^*]{1,80})\*{1,2}|(?<!\w)_([^_]{1,80})_(?!\w)|‘([^‘’]{1,80})’")
_TOKEN = re.compile(r"[^\s]+")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:'?s\b|%|\b)")
_SENTENCE_END = re.compile(r"[.!?:;—–]$|^[-–—]$")
_STRIP = "\"“”‘’*_()[]{}<>,.!?:;"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "ungrounded: " + "; ".join(self.problems[:3]) if self.problems else "grounded"


def _is_cap(word: str) -> bool:
    return bool(word) and (word[0].isupper() or (word[0].isdigit() and any(c.isalpha() for c in word)))


def _name_matches(span: str, vocab: Vocabulary) -> bool:
    norm = normalise(span)
    if not norm:
        return True
    if norm in vocab.names:
        return True
    padded = f" {norm} "
    return any(padded in f" {name} " for name in vocab.names)


def _common(word: str, extra: frozenset[str]) -> bool:
    w = word.strip(_STRIP).casefold().replace("’", "'")
    w = re.sub(r"'s$", "", w)
    return w in COMMON_WORDS or w in extra


def _spans(text: str) -> list[tuple[list[str], bool]]:
    """Capitalised runs as (words, starts_sentence)."""
    runs: list[tuple[list[str], bool]] = []
    current: list[str] = []
    current_starts = False
    sentence_start = True
    pending_connectors: list[str] = []

    def close() -> None:
        nonlocal current, pending_connectors
        if current:
            runs.append((current, current_starts))
        current, pending_connectors = [], []

    for raw in _TOKEN.findall(text):
        opens = raw[0] in "\"“‘(*_["
        word = raw.strip(_STRIP)
        breaks = raw[-1] in ",.!?:;)\"”’*]" and not raw.endswith(("N'", "n'"))
        if opens:
            close()
            sentence_start = sentence_start or raw[0] == "("
        if not word:
            sentence_start = sentence_start or bool(_SENTENCE_END.search(raw))
            close()
            continue
        if _is_cap(word):
            if not current:
                current_starts = sentence_start
            current.extend(pending_connectors)
            pending_connectors = []
            current.append(word)
        elif current and word.casefold() in CONNECTORS and not breaks:
            pending_connectors.append(word)
        else:
            close()
        sentence_start = bool(_SENTENCE_END.search(raw))
        if breaks:
            close()
    close()
    return runs


def check(text: str, vocab: Vocabulary, *, extra_words: frozenset[str] = frozenset()) -> Verdict:
    """Return whether `text` only names things in `vocab` (see module docstring for the rule).

    `extra_words` widens the common-word allowlist (playlist names may use evocative words).
    """
    problems: list[str] = []

    for match in _QUOTED.finditer(text):
        title = next(g for g in match.groups() if g is not None).strip()
        if title and not _name_matches(title, vocab) and not all(_common(w, extra_words) for w in title.split()):
            problems.append(f"title {title!r}")

    for words, _starts in _spans(text):
        # drop common words at the ends: "Because", "If", "You"...
        while words and _common(words[0], extra_words) and not _name_matches(" ".join(words), vocab):
            words = words[1:]
            while words and words[0].casefold() in CONNECTORS:
                words = words[1:]
        while words and _common(words[-1], extra_words) and not _name_matches(" ".join(words), vocab):
            words = words[:-1]
        if not words:
            continue
        span = " ".join(words)
        if _name_matches(span, vocab):
            continue
        # a run of several known names/common words ("Slowdive Ride") is still fine word by word
        if len(words) > 1 and all(_name_matches(w, vocab) or _common(w, extra_words) for w in words):
            continue
        if re.fullmatch(r"\d+", span.replace(",", "")):
            continue  # numbers are checked below
        problems.append(f"name {span!r}")

    folded = f" {normalise(text)} "
    evidence_text = " " + " ".join(sorted(vocab.names)) + " "
    evidence_tags = {tag_key(n) for n in vocab.names}  # "dreampop" in an answer is "dream pop" shown
    for alias, genre in GENRE_ALIASES.items():
        folded = folded.replace(f" {alias} ", f" {genre.replace('-', ' ')} ")
    for genre in GENRES:
        g = normalise(genre)
        if f" {g} " in folded and f" {g} " not in evidence_text and tag_key(genre) not in evidence_tags:
            alias_forms = [a for a, v in GENRE_ALIASES.items() if v == genre]
            if not any(f" {normalise(a)} " in evidence_text for a in alias_forms):
                problems.append(f"tag {genre!r}")

    for match in _NUMBER.finditer(text):
        value = float(match.group(1).replace(",", ""))
        if value in ALLOWED_NUMBERS or vocab.has_number(value):
            continue
        problems.append(f"number {match.group(0)!r}")

    # de-duplicate, keep order
    seen: dict[str, None] = dict.fromkeys(problems)
    return Verdict(not seen, tuple(seen))


def _string(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ExplainFailed(f"invalid: missing {key}")
    value = " ".join(value.split())
    if len(value) > limit:
        raise ExplainFailed(f"invalid: {key} too long")
    return value


def validate_answer(brief: Brief, data: Any) -> Explanation:
    """Shape + grounding check of a parsed model answer for a text kind; raises `ExplainFailed`."""
    if not isinstance(data, dict):
        raise ExplainFailed("invalid: answer is not an object")
    vocab = brief.vocabulary
    if brief.kind == "playlist":
        name = _string(data, "name", MAX_NAME)
        description = _string(data, "description", MAX_TEXT)
        for part in (name, description):
            verdict = check(part, vocab, extra_words=TITLE_WORDS)
            if not verdict.ok:
                raise ExplainFailed(verdict.reason)
        return Explanation(description, "llm", name=name, kind=brief.kind)
    text = _string(data, "text", MAX_TEXT)
    verdict = check(text, vocab)
    if not verdict.ok:
        raise ExplainFailed(verdict.reason)
    return Explanation(text, "llm", kind=brief.kind)
