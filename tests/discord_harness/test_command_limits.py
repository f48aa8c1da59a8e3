"""Deliberately bad payloads for :mod:`tests.fakes.discord_limits` (each rule must be caught, good ones pass)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.fakes import discord_limits as cl
from tests.fakes.discord_limits import (
    combined_characters,
    is_valid_chat_input_name,
    validate_command_payloads,
    validate_custom_id,
    validate_message_payload,
    validate_modal_payload,
)


def good_command() -> dict[str, Any]:
    return {
        "name": "recommend",
        "description": "Get music recommendations",
        "type": 1,
        "options": [
            {
                "name": "kind",
                "description": "What to recommend",
                "type": 3,
                "required": True,
                "choices": [{"name": "Artists", "value": "artists"}, {"name": "Tracks", "value": "tracks"}],
            },
            {"name": "count", "description": "How many", "type": 4, "min_value": 1, "max_value": 10},
        ],
    }


def one_problem(payload: dict[str, Any], fragment: str) -> None:
    problems = validate_command_payloads([payload])
    assert problems, f"expected a problem containing {fragment!r}"
    assert any(fragment in p for p in problems), problems


def test_good_command_passes() -> None:
    assert validate_command_payloads([good_command()]) == []


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("recommend", True),
        ("taste-compare", True),
        ("it's", True),
        ("über", True),
        ("音楽", True),
        ("नमस्ते", True),  # Devanagari vowel signs are combining marks; Discord allows the script
        ("a" * 32, True),
        ("a" * 33, False),
        ("", False),
        ("Recommend", False),  # uppercase
        ("two words", False),
        ("emoji🎵", False),
        ("dot.name", False),
    ],
)
def test_name_rule(name: str, ok: bool) -> None:
    assert is_valid_chat_input_name(name) is ok


def test_name_and_description_problems() -> None:
    bad = good_command()
    bad["name"] = "Recommend"
    one_problem(bad, "lowercase")
    bad = good_command()
    bad["description"] = ""
    one_problem(bad, "description is missing")
    bad = good_command()
    bad["description"] = "x" * 101
    one_problem(bad, "101 chars")
    bad = good_command()
    bad["options"][0]["name"] = "bad name"
    one_problem(bad, "does not match")
    bad = good_command()
    bad["options"][1]["description"] = "d" * 101
    one_problem(bad, "> count: description has 101 chars")
    bad = good_command()
    bad["name_localizations"] = {"de": "Empfehlen"}
    one_problem(bad, "[name_localizations.de]")


def test_too_many_options_and_choices() -> None:
    bad = good_command()
    bad["options"] = [{"name": f"o{i}", "description": "d", "type": 3} for i in range(26)]
    one_problem(bad, "26 options (max 25)")
    bad = good_command()
    bad["options"][0]["choices"] = [{"name": f"c{i}", "value": f"v{i}"} for i in range(26)]
    one_problem(bad, "26 choices (max 25)")


def test_choice_rules() -> None:
    bad = good_command()
    bad["options"][0]["choices"][0]["name"] = ""
    one_problem(bad, "name has 0 chars")
    bad = good_command()
    bad["options"][0]["choices"][0]["name"] = "n" * 101
    one_problem(bad, "name has 101 chars")
    bad = good_command()
    bad["options"][0]["choices"][0]["value"] = "v" * 101
    one_problem(bad, "value has 101 chars")
    bad = good_command()
    bad["options"][0]["choices"][0]["value"] = 3
    one_problem(bad, "value must be a string")
    bad = good_command()
    bad["options"][1]["choices"] = [{"name": "one", "value": "1"}]
    one_problem(bad, "value must be an integer")
    bad = good_command()
    bad["options"].append(
        {"name": "flag", "description": "d", "type": 5, "choices": [{"name": "y", "value": "y"}]}
    )
    one_problem(bad, "choices are only allowed")
    bad = good_command()
    bad["options"][0]["autocomplete"] = True
    one_problem(bad, "autocomplete cannot be combined with choices")


def test_option_rules() -> None:
    bad = good_command()
    bad["options"].reverse()  # optional before required
    one_problem(bad, "required options must be listed before optional ones")
    bad = good_command()
    bad["options"][1]["min_value"] = 11
    one_problem(bad, "min_value 11 > max_value 10")
    bad = good_command()
    bad["options"][0]["max_length"] = 7000
    one_problem(bad, "max_length must be 1–6000")
    bad = good_command()
    bad["options"][1]["min_length"] = 2
    one_problem(bad, "min_length/max_length are only allowed on string options")
    bad = good_command()
    bad["options"][1]["channel_types"] = [0]
    one_problem(bad, "channel_types is only allowed on channel options")
    bad = good_command()
    bad["options"].append(copy.deepcopy(bad["options"][1]))
    one_problem(bad, "duplicate option name 'count'")
    bad = good_command()
    bad["options"].append({"name": "x", "description": "d", "type": 99})
    one_problem(bad, "unknown option type 99")


def test_subcommand_nesting() -> None:
    sub = {
        "name": "compare",
        "description": "Compare",
        "type": 1,
        "options": [{"name": "other", "description": "d", "type": 6}],
    }
    group = {"name": "taste", "description": "Taste", "type": 2, "options": [sub]}
    ok = {"name": "profile", "description": "Profile", "options": [group]}
    assert validate_command_payloads([ok]) == []

    too_deep = copy.deepcopy(ok)
    too_deep["options"][0]["options"][0]["options"] = [copy.deepcopy(group)]
    one_problem(too_deep, "a subcommand cannot contain subcommands or groups")

    group_in_group = copy.deepcopy(ok)
    group_in_group["options"][0]["options"] = [copy.deepcopy(group)]
    one_problem(group_in_group, "subcommand groups may only appear directly under a command")

    mixed = copy.deepcopy(ok)
    mixed["options"].append({"name": "loose", "description": "d", "type": 3})
    one_problem(mixed, "cannot mix subcommands/groups with value options")

    empty_group = {
        "name": "empty",
        "description": "d",
        "options": [{"name": "g", "description": "d", "type": 2}],
    }
    one_problem(empty_group, "needs at least one subcommand")


def test_combined_character_budget() -> None:
    command = good_command()
    command["options"] = [
        {
            "name": f"opt{j}",
            "description": "d" * 100,
            "type": 3,
            "choices": [{"name": f"{i:02d}" + "n" * 98, "value": f"{i:02d}" + "v" * 98} for i in range(25)],
        }
        for j in range(2)
    ]
    # name 9 + description 25 + 2 * (4 + 100 + 25 * 200) = 10242
    assert combined_characters(command) == 10242
    one_problem(command, "10242 combined characters")


def test_combined_budget_uses_worst_locale() -> None:
    command = good_command()
    base = combined_characters(command)
    command["description_localizations"] = {"de": "x" * 100}
    assert combined_characters(command) == base - len(command["description"]) + 100


def test_global_limits_and_duplicates() -> None:
    commands = [dict(good_command(), name=f"cmd{i}") for i in range(101)]
    assert any("101 slash commands (max 100)" in p for p in validate_command_payloads(commands))
    assert validate_command_payloads(commands[:100]) == []
    dupes = [good_command(), good_command()]
    assert any("duplicate command name 'recommend'" in p for p in validate_command_payloads(dupes))
    menus = [{"name": f"Menu {i}", "type": 2, "description": ""} for i in range(6)]
    assert any("6 user context menus (max 5)" in p for p in validate_command_payloads(menus))


def test_context_menu_rules() -> None:
    assert validate_command_payloads([{"name": "Show Taste", "type": 2, "description": ""}]) == []
    one_problem({"name": "Show Taste", "type": 3, "description": "nope"}, "empty description")
    one_problem(
        {"name": "Show Taste", "type": 2, "description": "", "options": [{"name": "x"}]},
        "cannot have options",
    )
    one_problem({"name": "x" * 33, "type": 2, "description": ""}, "1–32 chars")


def test_default_member_permissions_format() -> None:
    bad = dict(good_command(), default_member_permissions=8)
    one_problem(bad, "default_member_permissions must be a string")
    assert validate_command_payloads([dict(good_command(), default_member_permissions="8")]) == []


def test_custom_id() -> None:
    assert validate_custom_id("sonance:fb:42:up") == []
    assert validate_custom_id("x" * 100) == []
    assert validate_custom_id("") and validate_custom_id("x" * 101) and validate_custom_id(None)


def button(custom_id: str | None = "a", **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"type": 2, "style": 1, "label": "ok", **extra}
    if custom_id is not None:
        data["custom_id"] = custom_id
    return data


def test_message_limits() -> None:
    assert (
        validate_message_payload({"content": "hi", "components": [{"type": 1, "components": [button()]}]})
        == []
    )
    assert any("2001 chars" in p for p in validate_message_payload({"content": "x" * 2001}))
    assert any("11 embeds" in p for p in validate_message_payload({"embeds": [{"title": "t"}] * 11}))
    big = {"embeds": [{"description": "d" * 4000}, {"description": "d" * 2500}]}
    assert any("embeds total 6500" in p for p in validate_message_payload(big))
    assert any("title has 257" in p for p in validate_message_payload({"embeds": [{"title": "t" * 257}]}))
    fields = {"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}
    assert any("26 fields" in p for p in validate_message_payload(fields))
    assert any(
        "value has 0 chars" in p
        for p in validate_message_payload({"embeds": [{"fields": [{"name": "n", "value": ""}]}]})
    )


def test_component_limits() -> None:
    rows = [{"type": 1, "components": [button(f"b{i}")]} for i in range(6)]
    assert any("6 action rows" in p for p in validate_message_payload({"components": rows}))
    crowded = [{"type": 1, "components": [button(f"b{i}") for i in range(6)]}]
    assert any("6 buttons" in p for p in validate_message_payload({"components": crowded}))
    dup = [{"type": 1, "components": [button("same"), button("same")]}]
    assert any("used 2 times" in p for p in validate_message_payload({"components": dup}))
    long_id = [{"type": 1, "components": [button("x" * 101)]}]
    assert any("101 chars" in p for p in validate_message_payload({"components": long_id}))
    link_with_id = [{"type": 1, "components": [button("a", style=5, url="https://example.com")]}]
    assert any(
        "link button cannot have a custom_id" in p
        for p in validate_message_payload({"components": link_with_id})
    )
    link_ok = [{"type": 1, "components": [button(None, style=5, url="https://example.com")]}]
    assert validate_message_payload({"components": link_ok}) == []
    select = {"type": 3, "custom_id": "s", "options": [{"label": "l", "value": str(i)} for i in range(26)]}
    problems = validate_message_payload({"components": [{"type": 1, "components": [select, button("b")]}]})
    assert any("26 options" in p for p in problems) and any("must be alone" in p for p in problems)
    assert any(
        "label has 81" in p
        for p in validate_message_payload(
            {"components": [{"type": 1, "components": [button(label="l" * 81)]}]}
        )
    )


def test_modal_limits() -> None:
    text = {"type": 4, "custom_id": "c", "label": "Comment", "style": 1}
    ok = {"title": "Tell us", "custom_id": "m", "components": [{"type": 1, "components": [text]}]}
    assert validate_modal_payload(ok) == []
    assert any("title" in p for p in validate_modal_payload(dict(ok, title="t" * 46)))
    assert any("1–5" in p for p in validate_modal_payload(dict(ok, components=[])))


@pytest.mark.parametrize(("name", "valid"), [
    ("recommend", True), ("über", True), ("音楽", True), ("नमस्ते", True), ("ไทย", True), ("it's", True),
    ("x" * 32, True), ("emoji🎵", False), ("a.b", False), ("with space", False), ("Upper", False),
    ("x" * 33, False), ("", False),
])
def test_name_pattern(name: str, valid: bool) -> None:
    """Discord's ``^[-_'\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`` plus its lowercase rule,
    including Devanagari and Thai vowel signs (combining marks that \\p{L} alone would reject)."""
    assert cl.is_valid_chat_input_name(name) is valid
