"""Engine and session factory, configured per database.

SQLite gets foreign keys (so ON DELETE CASCADE works), WAL (readers don't block the writer), a
busy timeout, a database file (and -wal/-shm/-journal) only its owner can read
(`core.private_files`) and one trip to aiosqlite's thread per statement (`core.db.sqlite_driver`);
PostgreSQL gets `pool_pre_ping` so the pool recovers by itself after a server restart.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.config import Settings
from core.db import sqlite_driver
from core.private_files import private_sqlite

SQLITE_POOL_SIZE = 3

#: Tables holding the catalogue's display facts (names, links, cover art, listener counts).
CATALOGUE_TABLES = frozenset({"artists", "albums", "tracks"})


class _CatalogueWrites:
    """How many statements wrote a catalogue table through any engine of this process.

    Why: caches of display facts (`core.recommender.lists.DisplayCache`) compare this number to
    the one they were filled under and start afresh when it moved, so a cover or a listener count
    stored by this process (enrichment runs in the bot's scheduler) shows on the next request. A
    write by another process is not seen here: those caches also expire by age.
    """

    count = 0


def catalogue_writes() -> int:
    """The process's count of statements that wrote `CATALOGUE_TABLES` (see `_CatalogueWrites`)."""
    return _CatalogueWrites.count


def _note_catalogue_write(_conn: Any, clauseelement: Any, *_args: Any) -> None:
    """`after_execute` hook: count INSERT/UPDATE/DELETE statements on a catalogue table."""
    if getattr(clauseelement, "is_dml", False):
        table = getattr(clauseelement, "table", None)
        if getattr(table, "name", None) in CATALOGUE_TABLES:
            _CatalogueWrites.count += 1


#: orjson writes what json.dumps would, minus what json.dumps refuses (datetimes, dataclasses pass
#: through to the fallback, which raises as before) and NaN (null instead of the non-JSON ``NaN``).
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_dumps(value: Any) -> str:
    """JSON columns' serializer: orjson, ~7x faster than json.dumps on a shown row's evidence (a
    /recommend writes ten); anything orjson refuses (numpy scalars, integers beyond 64 bits…) goes
    through json.dumps as before."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value)


def json_loads(text: str | bytes) -> Any:
    """JSON columns' deserializer: orjson, or json.loads for what it refuses (``NaN`` written by
    json.dumps in older rows)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(database_url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for `database_url` (sqlite+aiosqlite or postgresql+asyncpg)."""
    url = make_url(database_url)
    kwargs: dict[str, Any] = {"echo": echo, "json_serializer": json_dumps, "json_deserializer": json_loads}
    if url.get_backend_name() == "postgresql":
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10, pool_recycle=1800)
    elif url.database and url.database != ":memory:":
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in SQLite's
        # busy handler (steps up to 100 ms). With the default 15 connections, 50 concurrent
        # /recommend calls queued there: `scripts/bench bot` p95 2.2 s, max 7.9 s. Three connections
        # (each an aiosqlite thread) keep reads overlapping and put the queue in the pool instead,
        # where waiting is fair and costs nothing: p95 1.2 s, max 1.6 s on the same run.
        kwargs.update(pool_size=SQLITE_POOL_SIZE, max_overflow=0)
    if url.get_driver_name() == "aiosqlite":
        kwargs["module"] = sqlite_driver.dbapi()  # one trip to the connection's thread per statement
    engine = create_async_engine(url, **kwargs)
    event.listen(engine.sync_engine, "after_execute", _note_catalogue_write)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if url.database and url.database != ":memory:":
            if not url.database.startswith("file:"):
                event.listen(engine.sync_engine, "do_connect", partial(_private_file, Path(url.database)))
            event.listen(engine.sync_engine, "connect", _sqlite_wal)
    return engine


def _private_file(database: Path, *_connect_args: Any) -> None:
    """Runs before each SQLite connection is opened (returns None: the normal connect follows)."""
    private_sqlite(database)


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def engine_from_settings(settings: Settings) -> AsyncEngine:
    return create_engine(settings.async_database_url)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
