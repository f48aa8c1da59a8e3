"""The grounding rule, case by case (see core/explain/grounding.py for the rule and its limits)."""

from __future__ import annotations

import pytest

from core.explain.evidence import compatibility_brief, normalise, recommendation_brief
from core.explain.grounding import check
from core.explain.lexicon import TITLE_WORDS
from core.explain.types import Pair
from tests.explain.conftest import album_rec, artist_rec, compat_result

ALBUM = recommendation_brief(album_rec()).vocabulary
ARTIST = recommendation_brief(artist_rec()).vocabulary
COMPAT = compatibility_brief(compat_result(), Pair(None, "Sam")).vocabulary


@pytest.mark.parametrize(
    "text",
    [
        "Because you love Loveless, Souvlaki by Slowdive should click.",
        "If Loveless is on repeat, try Souvlaki.",
        "Critics rate it 86/100 across 21 reviews, and AOTY users give it 87.9.",
        "Critics rate it 86 and 5,400 listeners rated it.",  # thousands separator
        "An AOTY must-hear with lots of shoegaze and dream pop.",
        "Slowdive's Souvlaki is a dreamy next step after Nowhere.",  # possessive
        "You'll find “Souvlaki” right up your street.",  # quoted title
        "THE SOUVLAKI effect.".replace("THE SOUVLAKI", "The Souvlaki"),  # leading 'the' ignored
    ],
)
def test_grounded_album_answers_pass(text: str) -> None:
    verdict = check(text, ALBUM)
    assert verdict.ok, verdict.problems


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Fans of Radiohead will love Souvlaki.", "Radiohead"),
        ("Souvlaki is as good as Pygmalion.", "Pygmalion"),
        ("Because you love Loveless, try Souvlaki by Slowdive and Just for a Day.", "Just for a Day"),
        ("Critics rate it 92/100.", "92"),
        ("Released in 1993, Souvlaki is a classic.", "1993"),
        ("Souvlaki mixes shoegaze with jazz.", "jazz"),
        ("It has a “Alison” feel.", "Alison"),
        ("Only 3% of listeners know it.", "3%"),
    ],
)
def test_invented_facts_are_rejected(text: str, problem: str) -> None:
    verdict = check(text, ALBUM)
    assert not verdict.ok
    assert any(problem in p for p in verdict.problems), verdict.problems


def test_popularity_claims_rest_on_global_listener_counts() -> None:
    """The model sees Last.fm's global listeners, never the share of our own few members (the
    "just 6% of listeners" that was not true of the world), so a local share is an invented number."""
    assert check("Only 48,000 people listen to Slowdive on Last.fm: a real find.", ARTIST).ok
    assert check("A deeper cut: Slowdive has 48213 listeners on Last.fm.", ARTIST).ok
    assert not check("Only 12% of listeners know Slowdive.", ARTIST).ok
    assert not check("Only 20,000 people listen to Slowdive.", ARTIST).ok


def test_names_compare_after_normalisation() -> None:
    assert normalise("The Jesus & Mary Chain") == normalise("jesus and mary chain")
    assert normalise("Björk") == "bjork"
    assert check("You and Sam both love Bjork and Radiohead: kindred spirits at 78/100.", COMPAT).ok
    assert check("You both love Björk, with trip hop as common ground.", COMPAT).ok  # hyphen vs space


def test_sub_span_of_a_known_name_is_accepted() -> None:
    assert check("Since you love Bloody Valentine records, Slowdive fits.", ARTIST).ok


def test_unknown_sentence_starter_is_rejected_fail_safe() -> None:
    # documented limit: an uncommon capitalised first word costs the model answer, never a fact
    assert not check("Shimmering guitars make Slowdive a fit.", ARTIST).ok


def test_lowercase_invention_is_a_documented_limit() -> None:
    # lower-case names are not recognised as names (genres from the list are, see the jazz case)
    assert check("you might also like radiohead.", ARTIST).ok


def test_playlist_names_may_use_evocative_words() -> None:
    from core.explain.evidence import playlist_brief
    from core.explain.types import PlaylistBrief

    vocab = playlist_brief(PlaylistBrief(None, ("Slowdive",), ("shoegaze",), 20)).vocabulary
    assert check("Midnight Shoegaze Drift", vocab, extra_words=TITLE_WORDS).ok
    assert not check("Midnight Radiohead Drift", vocab, extra_words=TITLE_WORDS).ok


def test_a_shown_tag_may_be_spelled_another_way() -> None:
    """Evidence says "dream pop"; "dreampop" and "dream-pop" are the same tag, "synthpop" is not."""
    assert check("Slowdive is pure dreampop, like My Bloody Valentine.", ARTIST).ok
    assert check("Slowdive is pure dream-pop, like My Bloody Valentine.", ARTIST).ok
    assert not check("Slowdive is pure synthpop, like My Bloody Valentine.", ARTIST).ok
