"""Free-text feedback -> Preferences: the keyword parser and the validation of model answers."""

from __future__ import annotations

import pytest

from core.explain.feedback import parse_feedback, preferences_from_json
from core.explain.types import ExplainFailed, Preferences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("less metal, more 90s shoegaze",
         Preferences(boost_tags=("shoegaze",), avoid_tags=("metal",), era=(1990, 1999))),
        ("no jazz", Preferences(avoid_tags=("jazz",))),
        ("without country please", Preferences(avoid_tags=("country",))),
        ("stop sending emo", Preferences(avoid_tags=("emo",))),
        ("1980s synthpop", Preferences(boost_tags=("synthpop",), era=(1980, 1989))),
        ("'90s hip hop", Preferences(boost_tags=("hip-hop",), era=(1990, 1999))),
        ("80s and 90s", Preferences(era=(1980, 1999))),
        ("2010s indie pop", Preferences(boost_tags=("indie-pop",), era=(2010, 2019))),
        ("nineties britpop", Preferences(boost_tags=("britpop",), era=(1990, 1999))),
        ("older stuff", Preferences(era_bias="older")),
        ("newer music please", Preferences(era_bias="newer")),
        ("deeper cuts", Preferences(discovery_delta=0.2)),
        ("less mainstream", Preferences(discovery_delta=0.2)),
        ("more popular stuff", Preferences(discovery_delta=-0.2)),
        ("more mainstream and more dream pop", Preferences(boost_tags=("dream-pop",), discovery_delta=-0.2)),
        ("discovery 80%", Preferences(discovery=0.8)),
        ("give me some post-rock but no metalcore",
         Preferences(boost_tags=("post-rock",), avoid_tags=("metalcore",))),
        ("", Preferences()),
        ("!!!", Preferences()),
    ],
)
def test_keyword_parser(text: str, expected: Preferences) -> None:
    assert parse_feedback(text) == expected


def test_known_tags_filter_unknown_words() -> None:
    prefs = parse_feedback("more shoegaze and more wibble", known_tags=["Shoegaze", "metal"])
    assert prefs.boost_tags == ("shoegaze",)


def test_model_answer_validation() -> None:
    ok = preferences_from_json({"boost_tags": ["Shoegaze"], "avoid_tags": ["metal"], "era": [1990, 1999],
                                "discovery_delta": 0.3}, "less metal, more 90s shoegaze")
    assert ok == Preferences(("shoegaze",), ("metal",), (1990, 1999), None, 0.3, None)
    # a tag the user did not say is accepted only when it is a known tag
    with pytest.raises(ExplainFailed, match="ungrounded"):
        preferences_from_json({"boost_tags": ["slowcore"]}, "sad music")
    assert preferences_from_json({"boost_tags": ["slowcore"]}, "sad music", ["slowcore"]).boost_tags == ("slowcore",)


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"boost_tags": "shoegaze"},
        {"era": [1999, 1990]},
        {"era": "90s"},
        {"era_bias": "sideways"},
        {"discovery": 1.5},
        {"discovery_delta": True},
        {"boost_tags": ["x" * 60]},
    ],
)
def test_model_answer_rejections(bad: object) -> None:
    with pytest.raises(ExplainFailed):
        preferences_from_json(bad, "x" * 60)  # type: ignore[arg-type]
