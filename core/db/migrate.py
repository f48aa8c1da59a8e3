"""Schema migrations driven from code (`sonance db upgrade`, bot start-up, tests).

Migrations always run on a connection we open (passed to Alembic through `config.attributes`), in
one transaction: on PostgreSQL a failed upgrade leaves the schema as it was, never half-created.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from core.db.engine import create_engine
from core.errors import ConfigError

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _with_connection(engine: AsyncEngine, func) -> object:  # type: ignore[no-untyped-def]
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(func)
    except (OperationalError, DBAPIError, OSError) as exc:
        url = make_url(str(engine.url)).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", exc)).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise ConfigError(f"Cannot reach the database at {url}: {reason}") from None


async def upgrade(engine: AsyncEngine, revision: str = "head") -> str | None:
    """Upgrade the schema to `revision`; returns the revision the database is at afterwards."""
    return await _migrate(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> str | None:
    """Downgrade the schema to `revision`; returns the revision the database is at afterwards."""
    return await _migrate(engine, command.downgrade, revision)


async def _migrate(engine: AsyncEngine, step: Callable[[Config, str], None], revision: str) -> str | None:
    """Run one Alembic command (`command.upgrade`/`command.downgrade`) on a connection we open; see
    the module docstring for why the connection is ours."""

    def run(connection: Connection) -> str | None:
        config = alembic_config()
        config.attributes["connection"] = connection
        step(config, revision)
        return _current(connection)

    return await _with_connection(engine, run)  # type: ignore[return-value]


async def current_revision(engine: AsyncEngine) -> str | None:
    return await _with_connection(engine, _current)  # type: ignore[return-value]


async def check_connection(engine: AsyncEngine) -> None:
    await _with_connection(engine, lambda c: c.execute(text("SELECT 1")))


async def upgrade_url(database_url: str, revision: str = "head") -> str | None:
    engine = create_engine(database_url)
    try:
        return await upgrade(engine, revision)
    finally:
        await engine.dispose()
