"""Logging set-up: plain or JSON lines, with context fields and secret scrubbing.

Secrets are `SecretStr` in settings, so they are not printed by accident; the scrubbing filter is the
second belt: any configured secret value that still reaches a log record is replaced by `***`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable

from pydantic import SecretStr

from core.config import Settings

CONTEXT_FIELDS = ("command", "user_id", "guild_id", "account_id", "job")
QUIET_LOGGERS = ("discord", "aiosqlite")


class SecretScrubber(logging.Filter):
    """Replaces configured secret values by `***` in the message AND in the traceback and stack text.

    Why the traceback too: an exception message often quotes what failed (a URL with a token, a
    DSN with its password), and `log.exception` prints it below the message. The text is formatted
    here, scrubbed, and stored in `record.exc_text`, which every formatter prints instead of
    formatting the exception again (`JsonFormatter` included).
    """

    _formatter = logging.Formatter()

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
                   "message": record.getMessage()}
        for name in CONTEXT_FIELDS:
            if hasattr(record, name):
                payload[name] = getattr(record, name)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc"] = record.exc_text  # already scrubbed when a SecretScrubber saw the record
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str)


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = " ".join(f"{n}={getattr(record, n)}" for n in CONTEXT_FIELDS if hasattr(record, n))
        return f"{base} [{extras}]" if extras else base


def settings_secrets(settings: Settings) -> list[str]:
    values = [v.get_secret_value() for v in settings.__dict__.values() if isinstance(v, SecretStr)]
    # SONANCE_SECRET_KEY may list several keys ("new,old"): each one is a secret on its own.
    return values + [part.strip() for v in values if "," in v for part in v.split(",")]


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_json else
                         ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretScrubber(settings_secrets(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # Chatty third-party loggers stay at INFO even when we debug: discord.py logs its gateway and
    # HTTP traffic at DEBUG, aiosqlite every statement with its parameters. Per-user tokens are
    # unknown to the scrubber, so never emit them.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
