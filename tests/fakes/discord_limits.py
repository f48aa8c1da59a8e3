"""Check application-command and message payloads against Discord's documented limits.

Why this exists: discord.py validates a few things locally (name regex, 25 options) but not the
combined 8000-character budget, choice value lengths, option ordering or custom_id rules. Discord
rejects a whole bulk-overwrite (``PUT .../commands``) with one 400 "Invalid Form Body" if a single
command breaks a rule, which in production means *no* command updates at all after a deploy. Running
this on ``tree._get_all_commands()``-derived payloads (``[c.to_dict(tree) for c in ...]``) in a unit
test, and in the fake Discord server, catches that before a deploy does.

All functions return human-readable problem strings (empty list = valid) rather than raising, so a
test can assert on the full set at once and a startup check can log all of them.

Rules follow https://discord.com/developers/docs/interactions/application-commands and
https://discord.com/developers/docs/resources/message (checked 2026).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

# --- command limits -----------------------------------------------------------------------------
MAX_NAME = 32
MAX_DESCRIPTION = 100
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_CHOICE_NAME = 100
MAX_CHOICE_STRING_VALUE = 100
MAX_COMBINED_CHARS = 8000
MAX_CHAT_INPUT_COMMANDS = 100
MAX_CONTEXT_MENU_COMMANDS = 5  # per type (USER, MESSAGE), per scope
MAX_STRING_OPTION_LENGTH = 6000
MAX_SAFE_INTEGER = 2**53

# --- message / component limits -----------------------------------------------------------------
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_EMBED_TITLE = 256
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_AUTHOR_NAME = 256
MAX_ACTION_ROWS = 5
MAX_BUTTONS_PER_ROW = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
MAX_SELECT_OPTIONS = 25
MAX_SELECT_OPTION_TEXT = 100
MAX_PLACEHOLDER = 150
MAX_MODAL_TITLE = 45
MAX_TEXT_INPUT_LABEL = 45
MAX_TEXT_INPUT_VALUE = 4000
MAX_V2_COMPONENTS = 40
FLAG_IS_COMPONENTS_V2 = 1 << 15

# Command types.
CHAT_INPUT = 1
USER = 2
MESSAGE = 3
PRIMARY_ENTRY_POINT = 4

# Option types.
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER_OPTION = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10
ATTACHMENT = 11
_VALUE_TYPES = {STRING, INTEGER, BOOLEAN, USER_OPTION, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT}
_CHOICE_TYPES = {STRING, INTEGER, NUMBER}


def _name_char_ok(ch: str) -> bool:
    """Equivalent of ``[-_'\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]`` with the standard library only
    (the optional ``regex`` branch that once sat beside it was never tested, so it was removed).

    Discord's real pattern also admits Devanagari and Thai script characters, whose vowel signs are
    combining marks (category M*), which ``\\p{L}`` alone would reject.
    """
    if ch in "-_'":
        return True
    category = unicodedata.category(ch)
    if category[0] in "LN":
        return True
    if category[0] == "M":
        name = unicodedata.name(ch, "")
        return name.startswith(("DEVANAGARI", "THAI"))
    return False


def is_valid_chat_input_name(name: str) -> bool:
    """True when ``name`` is a legal slash-command / option name (pattern *and* lowercase rule)."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
        return False
    pattern_ok = all(_name_char_ok(ch) for ch in name)
    # Discord: "must be lowercase if there is a lowercase variant of the character".
    return pattern_ok and name == name.lower()


def validate_custom_id(custom_id: Any) -> list[str]:
    """Check a component or modal ``custom_id``: a string of 1–100 characters."""
    if not isinstance(custom_id, str):
        return [f"custom_id must be a string, got {type(custom_id).__name__}"]
    if not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
        return [f"custom_id {custom_id[:40]!r}… has {len(custom_id)} chars (must be 1–{MAX_CUSTOM_ID})"]
    return []


def _check_localizations(where: str, key: str, value: Any, check: Any) -> list[str]:
    problems: list[str] = []
    if value is None:
        return problems
    if not isinstance(value, Mapping):
        return [f"{where}: {key} must be an object of locale -> string"]
    for locale, text in value.items():
        problems.extend(f"{msg} [{key}.{locale}]" for msg in check(text))
    return problems


def _chat_name_problems(where: str, name: Any) -> list[str]:
    if not isinstance(name, str) or not name:
        return [f"{where}: name is missing or empty"]
    if len(name) > MAX_NAME:
        return [f"{where}: name {name!r} has {len(name)} chars (max {MAX_NAME})"]
    if not is_valid_chat_input_name(name):
        if name != name.lower():
            return [f"{where}: name {name!r} must be lowercase"]
        return [f"{where}: name {name!r} does not match ^[-_'\\p{{L}}\\p{{N}}]{{1,32}}$"]
    return []


def _description_problems(where: str, description: Any) -> list[str]:
    if not isinstance(description, str) or not description:
        return [f"{where}: description is missing or empty (1–{MAX_DESCRIPTION} chars)"]
    if len(description) > MAX_DESCRIPTION:
        return [f"{where}: description has {len(description)} chars (max {MAX_DESCRIPTION})"]
    return []


def _choice_problems(where: str, option_type: int, choices: list[Any]) -> list[str]:
    problems: list[str] = []
    if option_type not in _CHOICE_TYPES:
        problems.append(f"{where}: choices are only allowed on string, integer and number options")
    if len(choices) > MAX_CHOICES:
        problems.append(f"{where}: {len(choices)} choices (max {MAX_CHOICES})")
    for i, choice in enumerate(choices):
        cw = f"{where} choice[{i}]"
        if not isinstance(choice, Mapping):
            problems.append(f"{cw}: must be an object")
            continue
        cname = choice.get("name")
        if not isinstance(cname, str) or not 1 <= len(cname) <= MAX_CHOICE_NAME:
            length = len(cname) if isinstance(cname, str) else "no"
            problems.append(f"{cw}: name has {length} chars (must be 1–{MAX_CHOICE_NAME})")
        problems.extend(
            _check_localizations(
                cw,
                "name_localizations",
                choice.get("name_localizations"),
                lambda t: (
                    [] if isinstance(t, str) and 1 <= len(t) <= MAX_CHOICE_NAME else ["choice name length"]
                ),
            )
        )
        value = choice.get("value")
        if option_type == STRING:
            if not isinstance(value, str):
                problems.append(f"{cw}: value must be a string for a string option")
            elif not 1 <= len(value) <= MAX_CHOICE_STRING_VALUE:
                problems.append(f"{cw}: value has {len(value)} chars (must be 1–{MAX_CHOICE_STRING_VALUE})")
        elif option_type == INTEGER:
            if not isinstance(value, int) or isinstance(value, bool):
                problems.append(f"{cw}: value must be an integer for an integer option")
            elif abs(value) > MAX_SAFE_INTEGER:
                problems.append(f"{cw}: value {value} is outside ±2^53")
        elif option_type == NUMBER:
            if not isinstance(value, int | float) or isinstance(value, bool):
                problems.append(f"{cw}: value must be a number for a number option")
    return problems


def _value_option_problems(where: str, option: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    option_type = option.get("type")
    choices = option.get("choices") or []
    if choices:
        problems.extend(_choice_problems(where, option_type, list(choices)))
    if option.get("autocomplete"):
        if option_type not in _CHOICE_TYPES:
            problems.append(f"{where}: autocomplete is only allowed on string, integer and number options")
        if choices:
            problems.append(f"{where}: autocomplete cannot be combined with choices")
    min_v, max_v = option.get("min_value"), option.get("max_value")
    if min_v is not None or max_v is not None:
        if option_type not in (INTEGER, NUMBER):
            problems.append(f"{where}: min_value/max_value are only allowed on integer and number options")
        for label, v in (("min_value", min_v), ("max_value", max_v)):
            if v is not None and (
                not isinstance(v, int | float) or isinstance(v, bool) or abs(v) > MAX_SAFE_INTEGER
            ):
                problems.append(f"{where}: {label} must be a number within ±2^53")
        if isinstance(min_v, int | float) and isinstance(max_v, int | float) and min_v > max_v:
            problems.append(f"{where}: min_value {min_v} > max_value {max_v}")
    min_l, max_l = option.get("min_length"), option.get("max_length")
    if min_l is not None or max_l is not None:
        if option_type != STRING:
            problems.append(f"{where}: min_length/max_length are only allowed on string options")
        if min_l is not None and not (isinstance(min_l, int) and 0 <= min_l <= MAX_STRING_OPTION_LENGTH):
            problems.append(f"{where}: min_length must be 0–{MAX_STRING_OPTION_LENGTH}")
        if max_l is not None and not (isinstance(max_l, int) and 1 <= max_l <= MAX_STRING_OPTION_LENGTH):
            problems.append(f"{where}: max_length must be 1–{MAX_STRING_OPTION_LENGTH}")
        if isinstance(min_l, int) and isinstance(max_l, int) and min_l > max_l:
            problems.append(f"{where}: min_length {min_l} > max_length {max_l}")
    if option.get("channel_types") and option_type != CHANNEL:
        problems.append(f"{where}: channel_types is only allowed on channel options")
    return problems


def _options_problems(where: str, options: Any, depth: int) -> list[str]:
    """Validate one level of options; ``depth`` 0 = directly under the command.

    Discord allows command -> group -> subcommand -> options, i.e. at most two levels of nesting,
    and a level holds either only subcommands/groups or only value options.
    """
    problems: list[str] = []
    if options is None:
        return problems
    if not isinstance(options, list):
        return [f"{where}: options must be a list"]
    if len(options) > MAX_OPTIONS:
        problems.append(f"{where}: {len(options)} options (max {MAX_OPTIONS})")
    names = Counter(o.get("name") for o in options if isinstance(o, Mapping))
    for name, count in names.items():
        if count > 1:
            problems.append(f"{where}: duplicate option name {name!r}")
    kinds = {(o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)) for o in options if isinstance(o, Mapping)}
    if len(kinds) > 1:
        problems.append(f"{where}: cannot mix subcommands/groups with value options at the same level")
    seen_optional = False
    for i, option in enumerate(options):
        if not isinstance(option, Mapping):
            problems.append(f"{where} option[{i}]: must be an object")
            continue
        ow = f"{where} > {option.get('name', f'option[{i}]')}"
        option_type = option.get("type")
        problems.extend(_chat_name_problems(ow, option.get("name")))
        problems.extend(_description_problems(ow, option.get("description")))
        problems.extend(
            _check_localizations(
                ow,
                "name_localizations",
                option.get("name_localizations"),
                lambda t: _chat_name_problems("", t),
            )
        )
        problems.extend(
            _check_localizations(
                ow,
                "description_localizations",
                option.get("description_localizations"),
                lambda t: _description_problems("", t),
            )
        )
        if option_type == SUB_COMMAND_GROUP:
            if depth != 0:
                problems.append(f"{ow}: subcommand groups may only appear directly under a command")
            children = option.get("options") or []
            if not children:
                problems.append(f"{ow}: a subcommand group needs at least one subcommand")
            if any(isinstance(c, Mapping) and c.get("type") != SUB_COMMAND for c in children):
                problems.append(f"{ow}: a subcommand group may only contain subcommands")
            problems.extend(_options_problems(ow, children, depth + 1))
        elif option_type == SUB_COMMAND:
            if depth > 1:
                problems.append(f"{ow}: subcommands nested too deeply (max command > group > subcommand)")
            children = option.get("options") or []
            if any(
                isinstance(c, Mapping) and c.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for c in children
            ):
                problems.append(f"{ow}: a subcommand cannot contain subcommands or groups")
            problems.extend(_options_problems(ow, children, depth + 1))
        elif option_type in _VALUE_TYPES:
            if option.get("required"):
                if seen_optional:
                    problems.append(f"{ow}: required options must be listed before optional ones")
            else:
                seen_optional = True
            problems.extend(_value_option_problems(ow, option))
        else:
            problems.append(f"{ow}: unknown option type {option_type!r}")
    return problems


def _strings_for_budget(command: Mapping[str, Any], locale: str | None) -> Iterable[str]:
    """Yield every string Discord counts towards the 8000-character budget for one locale."""

    def pick(obj: Mapping[str, Any], key: str) -> Any:
        if locale is not None:
            loc = obj.get(f"{key}_localizations") or {}
            if loc.get(locale):
                return loc[locale]
        return obj.get(key)

    def walk(obj: Mapping[str, Any]) -> Iterable[str]:
        yield str(pick(obj, "name") or "")
        yield str(pick(obj, "description") or "")
        for choice in obj.get("choices") or []:
            if isinstance(choice, Mapping):
                yield str(pick(choice, "name") or "")
                yield str(choice.get("value", ""))
        for child in obj.get("options") or []:
            if isinstance(child, Mapping):
                yield from walk(child)

    yield from walk(command)


def _locales_used(obj: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if key.endswith("_localizations") and isinstance(value, Mapping):
                found.update(value)
            else:
                found |= _locales_used(value)
    elif isinstance(obj, list):
        for item in obj:
            found |= _locales_used(item)
    return found


def combined_characters(command: Mapping[str, Any]) -> int:
    """Characters counted against the 8000 limit: the worst locale (default strings as fallback).

    Discord counts name, description and choice name/value of the command and all nested options.
    With localizations, each locale is checked as a user of that locale sees it, so we report the
    largest total.
    """
    totals = [sum(len(s) for s in _strings_for_budget(command, None))]
    for locale in _locales_used(command):
        totals.append(sum(len(s) for s in _strings_for_budget(command, locale)))
    return max(totals)


def validate_command(command: Mapping[str, Any]) -> list[str]:
    """Problems with a single command payload (the dict discord.py sends in a sync)."""
    problems: list[str] = []
    command_type = command.get("type", CHAT_INPUT)
    label = command.get("name") if isinstance(command.get("name"), str) else "<unnamed>"
    where = f"/{label}" if command_type == CHAT_INPUT else f"[{label}]"
    if command_type == CHAT_INPUT:
        problems.extend(_chat_name_problems(where, command.get("name")))
        problems.extend(_description_problems(where, command.get("description")))
        problems.extend(
            _check_localizations(
                where,
                "name_localizations",
                command.get("name_localizations"),
                lambda t: _chat_name_problems("", t),
            )
        )
        problems.extend(
            _check_localizations(
                where,
                "description_localizations",
                command.get("description_localizations"),
                lambda t: _description_problems("", t),
            )
        )
        problems.extend(_options_problems(where, command.get("options"), 0))
    elif command_type in (USER, MESSAGE, PRIMARY_ENTRY_POINT):
        name = command.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
            problems.append(f"{where}: context-menu name must be 1–{MAX_NAME} chars")
        if command_type != PRIMARY_ENTRY_POINT and command.get("description"):
            problems.append(f"{where}: context-menu commands must have an empty description")
        if command.get("options"):
            problems.append(f"{where}: context-menu commands cannot have options")
    else:
        problems.append(f"{where}: unknown command type {command_type!r}")
    total = combined_characters(command)
    if total > MAX_COMBINED_CHARS:
        problems.append(
            f"{where}: {total} combined characters in names/descriptions/choices (max {MAX_COMBINED_CHARS})"
        )
    perms = command.get("default_member_permissions")
    if perms is not None and not (isinstance(perms, str) and perms.isdigit()):
        problems.append(f"{where}: default_member_permissions must be a string of digits or null")
    return problems


def validate_command_payloads(payloads: list[dict[str, Any]], *, scope: str = "global") -> list[str]:
    """Validate a full bulk-overwrite body (all commands of one scope: global or one guild).

    ``scope`` only appears in messages. The per-scope caps (100 slash commands, 5 user and 5 message
    context menus) apply to global and to each guild alike.
    """
    problems: list[str] = []
    if not isinstance(payloads, list):
        return [f"{scope}: command list must be a JSON array"]
    by_type = Counter(p.get("type", CHAT_INPUT) for p in payloads if isinstance(p, Mapping))
    if by_type[CHAT_INPUT] > MAX_CHAT_INPUT_COMMANDS:
        problems.append(f"{scope}: {by_type[CHAT_INPUT]} slash commands (max {MAX_CHAT_INPUT_COMMANDS})")
    for command_type, label in ((USER, "user"), (MESSAGE, "message")):
        if by_type[command_type] > MAX_CONTEXT_MENU_COMMANDS:
            problems.append(
                f"{scope}: {by_type[command_type]} {label} context menus (max {MAX_CONTEXT_MENU_COMMANDS})"
            )
    names = Counter((p.get("type", CHAT_INPUT), p.get("name")) for p in payloads if isinstance(p, Mapping))
    for (_, name), count in names.items():
        if count > 1:
            problems.append(f"{scope}: duplicate command name {name!r}")
    for i, payload in enumerate(payloads):
        if not isinstance(payload, Mapping):
            problems.append(f"{scope}: command[{i}] must be an object")
            continue
        problems.extend(validate_command(payload))
    return problems


# --- messages, components, modals ----------------------------------------------------------------


def _len(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _embed_problems(i: int, embed: Mapping[str, Any]) -> tuple[list[str], int]:
    problems: list[str] = []
    where = f"embed[{i}]"
    total = 0
    for key, limit in (("title", MAX_EMBED_TITLE), ("description", MAX_EMBED_DESCRIPTION)):
        n = _len(embed.get(key))
        total += n
        if n > limit:
            problems.append(f"{where}: {key} has {n} chars (max {limit})")
    footer = embed.get("footer") or {}
    n = _len(footer.get("text"))
    total += n
    if n > MAX_FOOTER:
        problems.append(f"{where}: footer.text has {n} chars (max {MAX_FOOTER})")
    author = embed.get("author") or {}
    n = _len(author.get("name"))
    total += n
    if n > MAX_AUTHOR_NAME:
        problems.append(f"{where}: author.name has {n} chars (max {MAX_AUTHOR_NAME})")
    fields = embed.get("fields") or []
    if len(fields) > MAX_EMBED_FIELDS:
        problems.append(f"{where}: {len(fields)} fields (max {MAX_EMBED_FIELDS})")
    for j, fld in enumerate(fields):
        name_len, value_len = _len(fld.get("name")), _len(fld.get("value"))
        total += name_len + value_len
        if not 1 <= name_len <= MAX_FIELD_NAME:
            problems.append(f"{where} field[{j}]: name has {name_len} chars (must be 1–{MAX_FIELD_NAME})")
        if not 1 <= value_len <= MAX_FIELD_VALUE:
            problems.append(f"{where} field[{j}]: value has {value_len} chars (must be 1–{MAX_FIELD_VALUE})")
    return problems, total


def _walk_components(components: Iterable[Any]) -> Iterable[Mapping[str, Any]]:
    for component in components:
        if not isinstance(component, Mapping):
            continue
        yield component
        yield from _walk_components(component.get("components") or [])
        if isinstance(component.get("component"), Mapping):  # Label (type 18)
            yield from _walk_components([component["component"]])
        if isinstance(component.get("accessory"), Mapping):  # Section (type 9)
            yield from _walk_components([component["accessory"]])


def validate_components(components: Any, *, v2: bool = False) -> list[str]:
    """Check message components: row/button/select counts, labels, and custom_id rules.

    custom_ids must be 1–100 chars and unique within the message; Discord rejects duplicates with
    "Component custom id cannot be duplicated", which is easy to hit when rendering one button per
    recommendation from a template.
    """
    problems: list[str] = []
    if not components:
        return problems
    if not isinstance(components, list):
        return ["components must be a list"]
    all_components = list(_walk_components(components))
    if v2:
        if len(all_components) > MAX_V2_COMPONENTS:
            problems.append(
                f"{len(all_components)} components (max {MAX_V2_COMPONENTS} with IS_COMPONENTS_V2)"
            )
    else:
        if len(components) > MAX_ACTION_ROWS:
            problems.append(f"{len(components)} action rows (max {MAX_ACTION_ROWS})")
        for r, row in enumerate(components):
            if not isinstance(row, Mapping) or row.get("type") != 1:
                problems.append(f"component[{r}]: top-level components must be action rows (type 1)")
                continue
            children = row.get("components") or []
            buttons = [c for c in children if c.get("type") == 2]
            selects = [c for c in children if c.get("type") in (3, 5, 6, 7, 8)]
            if not children:
                problems.append(f"row[{r}]: empty action row")
            if len(buttons) > MAX_BUTTONS_PER_ROW:
                problems.append(f"row[{r}]: {len(buttons)} buttons (max {MAX_BUTTONS_PER_ROW})")
            if selects and len(children) > 1:
                problems.append(f"row[{r}]: a select menu must be alone in its action row")
    ids: list[str] = []
    for component in all_components:
        ctype = component.get("type")
        if ctype == 2:  # button
            style = component.get("style")
            if _len(component.get("label")) > MAX_BUTTON_LABEL:
                problems.append(
                    f"button label has {_len(component.get('label'))} chars (max {MAX_BUTTON_LABEL})"
                )
            if style == 5:
                if not component.get("url"):
                    problems.append("link button needs a url")
                if component.get("custom_id") is not None:
                    problems.append("link button cannot have a custom_id")
                continue
            if style == 6:  # premium button: sku_id, no custom_id
                continue
        if ctype in (2, 3, 4, 5, 6, 7, 8):
            cid = component.get("custom_id")
            problems.extend(validate_custom_id(cid))
            if isinstance(cid, str):
                ids.append(cid)
        if ctype in (3, 5, 6, 7, 8):
            if _len(component.get("placeholder")) > MAX_PLACEHOLDER:
                problems.append(f"select placeholder longer than {MAX_PLACEHOLDER} chars")
            min_v, max_v = component.get("min_values", 1), component.get("max_values", 1)
            if not (0 <= min_v <= MAX_SELECT_OPTIONS and 1 <= max_v <= MAX_SELECT_OPTIONS and min_v <= max_v):
                problems.append(f"select min_values/max_values {min_v}/{max_v} out of range")
        if ctype == 3:
            options = component.get("options") or []
            if not 1 <= len(options) <= MAX_SELECT_OPTIONS:
                problems.append(f"string select has {len(options)} options (must be 1–{MAX_SELECT_OPTIONS})")
            for opt in options:
                for key in ("label", "value"):
                    if not 1 <= _len(opt.get(key)) <= MAX_SELECT_OPTION_TEXT:
                        problems.append(f"select option {key} must be 1–{MAX_SELECT_OPTION_TEXT} chars")
                if _len(opt.get("description")) > MAX_SELECT_OPTION_TEXT:
                    problems.append(f"select option description longer than {MAX_SELECT_OPTION_TEXT} chars")
        if ctype == 4:  # text input (modals)
            if _len(component.get("label")) > MAX_TEXT_INPUT_LABEL:
                problems.append(f"text input label longer than {MAX_TEXT_INPUT_LABEL} chars")
            if _len(component.get("value")) > MAX_TEXT_INPUT_VALUE:
                problems.append(f"text input value longer than {MAX_TEXT_INPUT_VALUE} chars")
    for cid, count in Counter(ids).items():
        if count > 1:
            problems.append(f"custom_id {cid!r} is used {count} times in one message")
    return problems


def validate_message_payload(body: Mapping[str, Any]) -> list[str]:
    """Check a message body (send, edit, interaction response, follow-up) against Discord limits."""
    problems: list[str] = []
    content = body.get("content")
    if content is not None and _len(content) > MAX_CONTENT:
        problems.append(f"content has {_len(content)} chars (max {MAX_CONTENT})")
    embeds = body.get("embeds") or []
    if len(embeds) > MAX_EMBEDS:
        problems.append(f"{len(embeds)} embeds (max {MAX_EMBEDS})")
    total = 0
    for i, embed in enumerate(embeds):
        embed_problems, embed_total = _embed_problems(i, embed)
        problems.extend(embed_problems)
        total += embed_total
    if total > MAX_EMBED_TOTAL:
        problems.append(f"embeds total {total} chars (max {MAX_EMBED_TOTAL} per message)")
    v2 = bool((body.get("flags") or 0) & FLAG_IS_COMPONENTS_V2)
    problems.extend(validate_components(body.get("components"), v2=v2))
    return problems


def validate_modal_payload(data: Mapping[str, Any]) -> list[str]:
    """Check the ``data`` of a modal response (interaction callback type 9)."""
    problems: list[str] = []
    title = data.get("title")
    if not 1 <= _len(title) <= MAX_MODAL_TITLE:
        problems.append(f"modal title must be 1–{MAX_MODAL_TITLE} chars")
    problems.extend(validate_custom_id(data.get("custom_id")))
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        problems.append(f"modal has {len(components)} top-level components (must be 1–5)")
    ids = [c.get("custom_id") for c in _walk_components(components) if c.get("custom_id") is not None]
    for cid in ids:
        problems.extend(validate_custom_id(cid))
    for cid, count in Counter(ids).items():
        if count > 1:
            problems.append(f"custom_id {cid!r} is used {count} times in one modal")
    return problems
