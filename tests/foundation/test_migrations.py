"""The schema migrates up and down on the configured engine, and models and migrations agree."""

from __future__ import annotations

import uuid
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from core.db.engine import create_engine
from core.db.migrate import current_revision, downgrade, head_revision, upgrade
from core.db.models import Base
from core.db.schema_scope import include_object
from tests.conftest import PG_URL, create_pg_database, drop_pg_database


async def _fresh_url(tmp_path: Path) -> tuple[str, str | None]:
    if PG_URL:
        name = f"sonance_mig_{uuid.uuid4().hex[:8]}"
        return await create_pg_database(PG_URL, name), name
    return f"sqlite+aiosqlite:///{tmp_path / 'mig.db'}", None


async def test_upgrade_to_head_and_downgrade_to_base(tmp_path: Path) -> None:
    url, pg_name = await _fresh_url(tmp_path)
    engine = create_engine(url)
    try:
        assert await current_revision(engine) is None
        assert await upgrade(engine) == head_revision()
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert set(Base.metadata.tables) <= tables

        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True, "include_object": include_object}),
                Base.metadata))
        assert diff == [], f"models and migrations disagree: {diff}"

        assert await downgrade(engine, "base") is None
        async with engine.connect() as conn:
            left = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert left <= {"alembic_version"}
        # …and back up again: downgrade left nothing behind that blocks a re-upgrade.
        assert await upgrade(engine) == head_revision()
    finally:
        await engine.dispose()
        if pg_name:
            await drop_pg_database(PG_URL or "", pg_name)


async def test_downgrading_0004_does_not_bring_departed_members_back(tmp_path: Path) -> None:
    """0003 has no `left_at`: a departed member's row would read as a current membership again."""
    from sqlalchemy import text

    url, pg_name = await _fresh_url(tmp_path)
    engine = create_engine(url)
    try:
        await upgrade(engine, "0004")
        async with engine.begin() as conn:
            for user_id in (1, 2, 3):
                await conn.execute(text("INSERT INTO users (id, discord_id, origin, created_at) "
                                        "VALUES (:i, :d, 'discord', CURRENT_TIMESTAMP)"), {"i": user_id, "d": 100 + user_id})
            await conn.execute(text(
                "INSERT INTO guild_memberships (guild_id, user_id, visible, updated_at, left_at) VALUES "
                "(7, 1, NULL, CURRENT_TIMESTAMP, NULL), (7, 2, NULL, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP), "
                "(7, 3, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        assert await downgrade(engine, "0003") == "0003"
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT user_id, visible FROM guild_memberships ORDER BY user_id"))).all()
        # the current member stays; the departed one is forgotten; a hidden choice is kept, as 0003 keeps it
        assert [(r[0], None if r[1] is None else bool(r[1])) for r in rows] == [(1, None), (3, False)]
    finally:
        await engine.dispose()
        if pg_name:
            await drop_pg_database(PG_URL or "", pg_name)
