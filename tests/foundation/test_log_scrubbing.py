"""Secrets never reach the log, not even inside an exception's message or its traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from core.config import Settings
from core.logs import setup_logging

SECRET = "tok-very-secret-123456"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _fail() -> None:
    try:
        raise ConnectionError(f"GET https://api.example/?token={SECRET} refused")
    except ConnectionError as exc:
        raise RuntimeError(f"sync failed for key {SECRET}") from exc


@pytest.mark.parametrize("log_json", [False, True])
def test_exception_text_and_traceback_are_scrubbed(restore_logging: None, capsys: pytest.CaptureFixture[str],
                                                   log_json: bool) -> None:
    setup_logging(Settings(_env_file=None, DISCORD_TOKEN=SECRET, SONANCE_LOG_JSON=log_json))  # type: ignore[arg-type]
    log = logging.getLogger("sonance.test")
    try:
        _fail()
    except RuntimeError:
        log.exception("background job crashed")
    log.error("with stack", stack_info=True)
    err = capsys.readouterr().err
    assert SECRET not in err
    assert "token=***" in err and "sync failed for key ***" in err
    if log_json:
        first = json.loads(err.splitlines()[0])
        assert "Traceback" in first["exc"] and "ConnectionError" in first["exc"]
    else:
        assert "Traceback (most recent call last)" in err
