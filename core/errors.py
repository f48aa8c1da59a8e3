"""Errors that carry a message safe to show a user.

Everything the engine raises on purpose is a `SonanceError`: the bot shows `user_message` as an
ephemeral reply and logs the rest. Anything else is a bug: logged with context and answered with a
short apology.
"""

from __future__ import annotations

from core.cleaning import printable
from core.domain import SOURCE_NAMES


class SonanceError(Exception):
    """Base class: `user_message` is what a Discord user (or CLI user) sees."""

    user_message: str = "Something went wrong."

    def __init__(self, user_message: str | None = None, *, detail: str | None = None) -> None:
        if user_message is not None:
            self.user_message = user_message
        self.detail = detail
        super().__init__(self.user_message if detail is None else f"{self.user_message} ({detail})")


class ConfigError(SonanceError):
    """A setting is missing or invalid; the message names the variable to set."""


class NotFound(SonanceError):
    user_message = "I couldn't find that."


class NotLinked(SonanceError):
    user_message = "You haven't linked a music account yet. Use /link lastfm <username> to start."


class NotEnoughHistory(SonanceError):
    user_message = "There isn't enough listening history yet to do that."


class PrivacyHidden(SonanceError):
    user_message = "That member keeps their listening private."


class NotYours(SonanceError):
    """The asker tried to act on something stored for another member (`core.access.require_owner`)."""

    user_message = "That belongs to someone else."


class GuildOnly(SonanceError):
    """A command about the members of a server was used outside one (in DMs)."""

    user_message = "That only works inside a server. Try it in a server channel!"


class NotInGuild(SonanceError):
    """The other member is public but has not used Sonance in this server (`core.access.other_member`)."""

    user_message = ("That member hasn't used Sonance in this server yet. Once they run any Sonance command "
                    "here, try again.")


class InvalidInput(SonanceError):
    user_message = "That input doesn't look right."


class SourceUnavailable(SonanceError):
    """An external service (Last.fm, Spotify, AOTY, the LLM) is down, refusing or challenging us."""

    user_message = "A music service is unavailable right now. Please try again later."

    def __init__(self, source: str, user_message: str | None = None, *, detail: str | None = None,
                 retry_after: float | None = None, rate_limited: bool = False) -> None:
        self.source = source
        self.retry_after = retry_after
        #: Refused for our request rate (a fact about our key, never about what was asked for).
        self.rate_limited = rate_limited
        name = SOURCE_NAMES.get(source, "A music service")
        super().__init__(user_message or f"{name} is unavailable right now. Please try again later.",
                         detail=detail)


class AccountProblem(SonanceError):
    """A linked account cannot be read (private profile, unknown user, revoked token)."""

    def __init__(self, reason: str, user_message: str) -> None:
        self.reason = reason
        super().__init__(user_message, detail=reason)


class ImportFileError(SonanceError):
    """An import file is malformed; the message names the file and the position (`line N`, or
    `position` such as "entry 12, near byte 4,096" for JSON).

    The message is one line with control characters escaped: it quotes the file, and a hostile file
    must not get raw ESC/OSC sequences (or a newline that fakes a second message) onto a terminal.
    """

    def __init__(self, path: object, line: int | None, problem: str, *, position: str | None = None) -> None:
        self.path = path
        self.line = line
        self.position = position if position is not None else (None if line is None else f"line {line}")
        where = f"{path}" if self.position is None else f"{path}, {self.position}"
        super().__init__(printable(f"{where}: {problem}"))
