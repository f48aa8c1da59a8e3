"""Counting trips to aiosqlite's connection threads (the cost `core.db.sqlite_driver` cuts)."""

from __future__ import annotations

from typing import Any

import aiosqlite
import pytest


def count_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on (until `monkeypatch` undoes it), the name of every function sent to an aiosqlite
    connection's thread is appended to the returned list; the call itself goes through unchanged."""
    sent: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent
