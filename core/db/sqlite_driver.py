"""SQLite through aiosqlite with one trip to the connection's thread per statement.

Why: aiosqlite runs each connection on a thread of its own, and every call into that thread wakes
it, then wakes the event loop with the answer. SQLAlchemy's aiosqlite adapter makes four such trips
per statement (open a cursor, execute, fetch the rows, close the cursor) and one more for every
rollback or commit, also when SQLite has no transaction open: a session that only read, and the
pool's reset of a connection after a commit. Under `scripts/bench bot` that was ~27 trips per
/recommend, and on a busy machine each wake-up may hand the core to another thread.

Here a statement is one function run on the connection's thread (cursor, execute, fetch all, close;
the rows come back buffered, as SQLAlchemy's adapter buffers them too), and rollback or commit is
not sent when `sqlite3.Connection.in_transaction` is false: then sqlite3 itself does nothing for
them. Reading that flag from the loop is safe because a connection serves one caller at a time,
and its thread is idle between that caller's statements. Streaming (server-side) cursors keep
SQLAlchemy's own adapter.

`dbapi()` is passed as `create_async_engine(module=...)` for `sqlite+aiosqlite` URLs
(`core.db.engine.create_engine`); everything else about the dialect is SQLAlchemy's.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import aiosqlite
from sqlalchemy import util as sa_util
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_dbapi

# SQLAlchemy 2.1 names it `await_`; 2.0 only has `await_only` (kept in 2.1 as an alias).
_await = getattr(sa_util, "await_", None) or sa_util.await_only

#: (description, rows, rowcount, lastrowid) of one statement, as the connection's thread returns it.
_Outcome = tuple[Any, list[Any], int, int | None]


def _run_one(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On the connection's thread: one statement from cursor to closed cursor."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor:
    """The DB-API cursor SQLAlchemy is handed: each execute is one call on the connection's thread,
    and its rows are buffered here (fetches never leave the event loop)."""

    server_side = False
    __slots__ = ("_adapt_connection", "_connection", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, adapt_connection: OneTripConnection) -> None:
        self._adapt_connection = adapt_connection
        self._connection: aiosqlite.Connection = adapt_connection._connection
        self._rows: collections.deque[Any] = collections.deque()
        self.arraysize = 1
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def _run(self, operation: str, parameters: Any, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            connection = self._connection
            outcome: _Outcome = await connection._execute(_run_one, connection._conn, operation, parameters, many)
        self.description, rows, self.rowcount, self.lastrowid = outcome
        self._rows = collections.deque(rows)

    def execute(self, operation: str, parameters: Any = None) -> OneTripCursor:
        try:
            _await(self._run(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        return self

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> OneTripCursor:
        try:
            _await(self._run(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        return self

    async def _async_soft_close(self) -> None:
        """SQLAlchemy's asyncio results call this before reading buffered rows: nothing is open on the
        connection's thread, so there is nothing to close."""

    def close(self) -> None:
        self._rows.clear()

    def setinputsizes(self, *inputsizes: Any) -> None:
        """No-op, as in sqlite3."""

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(self.arraysize if size is None else size, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def __enter__(self) -> OneTripCursor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection with `OneTripCursor` and no trip for a rollback or commit
    that SQLite would ignore (no transaction open)."""

    __slots__ = ()

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:
            return super().cursor(server_side=True)
        return OneTripCursor(self)

    def _in_transaction(self) -> bool:
        conn = self._connection._connection  # None once closed: let the adapter report that
        return conn is None or conn.in_transaction

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DB-API module of SQLAlchemy's aiosqlite dialect, connecting with `OneTripConnection`."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDBAPI:
    """A fresh module object for `create_async_engine(module=...)`."""
    return OneTripDBAPI(aiosqlite, sqlite3)
