"""What a member's browser does on Sonance's link confirmation page: read the form, press the button.

The OAuth callbacks answer with a confirmation page ("Link Spotify <b>x</b> to Discord user
<b>@alice</b>?"); only its POST links. Tests that go through the callbacks use these helpers.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import aiohttp

_FORM = re.compile(r"<form method='post' action='([^']+)'><input type='hidden' name='token' value='([^']+)'>")


def confirmation_form(page: str) -> tuple[str, str]:
    """(action path, confirmation token) of the page's form; AssertionError when there is none."""
    match = _FORM.search(page)
    assert match, f"no confirmation form in the page: {page[:300]!r}"
    return unescape(match.group(1)), unescape(match.group(2))


async def confirm(web: Any, page: str) -> aiohttp.ClientResponse:
    """Press the confirmation page's button (`web` is an aiohttp client with a base URL)."""
    action, token = confirmation_form(page)
    return await web.post(action, data={"token": token})


async def callback_and_confirm(web: Any, path: str, params: dict[str, str]) -> aiohttp.ClientResponse:
    """Follow a provider redirect to `path`, then confirm; returns the final page's response."""
    landed = await web.get(path, params=params)
    page = await landed.text()
    assert landed.status == 200, page
    return await confirm(web, page)
