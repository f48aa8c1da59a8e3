"""Text a member typed, echoed back literally in an answer core words (core never imports discord).

Core's refusals quote what the member asked for ("I don't know an artist called **X**"), and Discord
renders Markdown in every message: a typed `**x**` would close the bold early, `` ` `` or `|` would
open code or a spoiler, and `@everyone` would read as a mention (the bot also sends every message
with no allowed mentions, bot/client.py, so this is the second line). Same rules as discord.py's
`escape_markdown` + `escape_mentions`, which the adapter uses for the names it renders itself.
"""

from __future__ import annotations

import re

_MARKDOWN = re.compile(r"([\\*_~|`\[\]()])")
_LINE_START = re.compile(r"(?m)^(\s*)([>#-])")
_MENTION = re.compile(r"@(everyone|here|[!&]?[0-9]{17,20})")


def literal(text: str) -> str:
    """`text` as it was typed once Discord renders it: Markdown escaped, mentions defused."""
    escaped = _LINE_START.sub(r"\1\\\2", _MARKDOWN.sub(r"\\\1", text))
    return _MENTION.sub("@\u200b\\1", escaped)
