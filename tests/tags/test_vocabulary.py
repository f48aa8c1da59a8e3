"""The tag vocabulary against real Last.fm tags: HetRec 2011's 200 most used ones."""

from __future__ import annotations

from collections import Counter

import pytest

from core.datasets import find_hetrec_dir, iter_rows, read_tag_names
from core.tags import TagClass, canonical_tag, classify, display_tags, is_listener_tag, tag_key

JUNK = ["seen live", "favorites", "favourites", "favorite", "amazing", "awesome", "sexy", "my top",
        "albums i own", "love", "<3", "beautiful", "cool", "fucking awesome", "love at first listen",
        "guilty pleasures", "2008", "1992", "10 of 10", "my favorite albums", "lovely", "catchy",
        "female vocalists", "cover", "under 2000 listeners", "rj_guru", "xkcdfan99", "the best"]
GENRES = ["rock", "shoegaze", "synthpop", "synth pop", "synth-pop", "hip hop", "hip-hop", "hiphop",
          "post rock", "post-rock", "dream pop", "trip-hop", "80s", "90s", "british", "japanese",
          "melancholic", "mellow", "new romantic", "swedish melodic death metal", "90s rock",
          "madchester", "darkwave", "metalcore", "indie pop", "singer-songwriter"]


def top_hetrec_tags(n: int = 200) -> list[str]:
    folder = find_hetrec_dir()
    if folder is None:
        pytest.skip("HetRec 2011 Last.fm dataset not found: set SONANCE_DATASET_DIR")
    names = read_tag_names(folder / "tags.dat")
    counts: Counter[int] = Counter(
        int(row[2]) for _, row in iter_rows(folder / "user_taggedartists.dat",
                                            ("userID", "artistID", "tagID", "day", "month", "year")))
    return [names[tag_id] for tag_id, _ in counts.most_common(n)]


def test_every_one_of_hetrecs_200_most_used_tags_is_classified() -> None:
    top = top_hetrec_tags()
    assert len(top) == 200
    unknown = [t for t in top if classify(t) is TagClass.UNKNOWN]
    assert unknown == []
    shown = [t for t in top if is_listener_tag(t)]
    assert len(shown) > 140  # most of the head is genres; a vocabulary that hides everything fails


@pytest.mark.parametrize("tag", JUNK)
def test_personal_and_judging_tags_are_never_shown(tag: str) -> None:
    assert not is_listener_tag(tag)
    assert display_tags([tag]) == []


@pytest.mark.parametrize("tag", GENRES)
def test_genres_moods_scenes_eras_and_places_are_shown(tag: str) -> None:
    assert is_listener_tag(tag), classify(tag)


@pytest.mark.parametrize("spellings", [("synth pop", "synthpop", "synth-pop", "Synth-Pop"),
                                       ("hip hop", "hip-hop", "hiphop", "Hip Hop"),
                                       ("post rock", "post-rock", "postrock"),
                                       ("r&b", "rnb", "r and b", "rhythm and blues"),
                                       ("rock n roll", "rock and roll", "rock & roll"),
                                       ("80s", "80's")])
def test_spellings_of_one_tag_share_a_key_and_a_shown_form(spellings: tuple[str, ...]) -> None:
    assert len({tag_key(s) for s in spellings}) == 1
    assert len({canonical_tag(s) for s in spellings}) == 1
    assert len(display_tags(spellings)) == 1


def test_display_tags_keeps_order_drops_junk_and_second_spellings() -> None:
    shown = display_tags(["electronic", "amazing", "synth pop", "awesome", "synthpop", "seen live",
                          "Hip Hop", "hip-hop", "sexy", "80s"])
    assert shown == ["electronic", "synthpop", "hip-hop", "80s"]
    assert display_tags(["rock", "pop", "indie", "jazz"], limit=2) == ["rock", "pop"]
