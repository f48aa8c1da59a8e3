"""Dialect-specific INSERT … ON CONFLICT, which both SQLite and PostgreSQL support."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT for `table` that offers `.on_conflict_do_nothing()` / `.on_conflict_do_update()`."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {name!r}")


def chunks(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def composite_in(session: AsyncSession, columns: list[Any], keys: list[tuple[Any, ...]]) -> Any:
    """A WHERE clause matching rows whose `columns` equal one of `keys` (a superset on PostgreSQL).

    Measured on a 5,000-row batch: PostgreSQL answers separate IN lists from the composite unique
    index ~4x faster than a row-value IN list, SQLite the other way round. On PostgreSQL the result
    can include cross-combinations, so callers filter the exact keys in Python.
    """
    if len(columns) == 1:
        return columns[0].in_([k[0] for k in keys])
    if session.get_bind().dialect.name == "postgresql":
        return and_(*(column.in_({k[i] for k in keys}) for i, column in enumerate(columns)))
    return tuple_(*columns).in_(keys)
