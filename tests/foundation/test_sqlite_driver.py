"""`core.db.sqlite_driver`: one trip to aiosqlite's thread per statement, none for a rollback or
commit SQLite would ignore, and the same answers as SQLAlchemy's own aiosqlite adapter.

The trips are counted at aiosqlite's queue (`tests.foundation.db_trips`): that is the cost the driver exists
to cut (`scripts/bench bot` CPU per /recommend).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.engine import create_engine, session_factory
from core.db.sqlite_driver import OneTripConnection
from tests.foundation.db_trips import count_trips


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the functions sent to aiosqlite's connection threads, in order."""
    return count_trips(monkeypatch)


async def test_the_engine_uses_the_one_trip_connection(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, OneTripConnection)


async def test_statements_answer_as_sqlalchemy_expects(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": "a"}, {"n": "b"}])  # executemany
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('c') RETURNING id"))
        assert inserted.scalar_one() == 3
        updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id >= 2"))
        assert updated.rowcount == 2
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, name FROM t ORDER BY id"))
        assert list(rows.keys()) == ["id", "name"]
        assert rows.all() == [(1, "a"), (2, "b!"), (3, "c!")]
        assert (await conn.execute(text("SELECT name FROM t WHERE id = 2"))).scalar_one() == "b!"
        assert (await conn.execute(text("SELECT name FROM t WHERE id = 9"))).first() is None
        streamed = await conn.stream(text("SELECT id FROM t ORDER BY id"))  # a server-side cursor
        assert [row.id async for row in streamed] == [1, 2, 3]


async def test_errors_are_sqlalchemy_errors_and_leave_the_connection_usable(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with pytest.raises(exc.OperationalError, match="no such table"):
            await conn.execute(text("SELECT * FROM missing"))
        await conn.rollback()
        await conn.execute(text("INSERT INTO t (name) VALUES ('x')"))
        with pytest.raises(exc.IntegrityError):
            await conn.execute(text("INSERT INTO t (name) VALUES ('x')"))
        await conn.rollback()
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_a_rollback_undoes_a_write_and_a_commit_keeps_it(engine: AsyncEngine, trips: list[str]) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        await session.execute(text("INSERT INTO t (name) VALUES ('gone')"))
        await session.rollback()
    async with sessions() as session:
        await session.execute(text("INSERT INTO t (name) VALUES ('kept')"))
        await session.commit()
    async with sessions() as session:
        assert (await session.execute(text("SELECT name FROM t"))).scalars().all() == ["kept"]
    # A write opens a transaction: its rollback and commit are sent; nothing else is.
    assert trips.count("rollback") == 1 and trips.count("commit") == 1


async def test_one_trip_per_statement_and_none_to_end_a_read(engine: AsyncEngine, trips: list[str]) -> None:
    sessions = session_factory(engine)
    async with engine.begin() as conn:  # warm the pool: opening a connection is trips of its own
        await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
    trips.clear()
    async with sessions() as session:  # a read-only unit of work, closed with a rollback
        for _ in range(3):
            (await session.execute(text("SELECT name FROM t"))).all()
    assert trips == ["_run_one"] * 3
    trips.clear()
    async with sessions() as session:  # a write and its commit; the pool's reset after it costs nothing
        await session.execute(text("INSERT INTO t (name) VALUES ('b')"))
        await session.commit()
    assert trips == ["_run_one", "commit"]
