"""`sonance run` and `sonance db …`."""

from __future__ import annotations

import typer

from bot.cli_app import app, console, db_app, run_async
from core.config import load_settings
from core.db import migrate
from core.db.engine import engine_from_settings


@app.command()
def run() -> None:
    """Run the bot: migrate the database, start the web server (/healthz, OAuth) and connect to Discord."""
    from bot.app import run_bot
    from core.logs import setup_logging

    async def body() -> None:
        settings = load_settings()
        setup_logging(settings)
        await run_bot(settings)

    run_async(body)


@app.command()
def secret() -> None:
    """Print a new random SONANCE_SECRET_KEY (put it in .env; keep it: it decrypts the stored tokens)."""
    import secrets

    print(f"SONANCE_SECRET_KEY={secrets.token_urlsafe(48)}")


def _with_engine(action):  # type: ignore[no-untyped-def]
    async def body() -> str | None:
        engine = engine_from_settings(load_settings())
        try:
            return await action(engine)
        finally:
            await engine.dispose()

    return run_async(body)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision (default: latest).")) -> None:
    """Upgrade the database schema (creates it on a fresh database)."""
    current = _with_engine(lambda e: migrate.upgrade(e, revision))
    console.print(f"database at revision [bold]{current}[/]")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, or 'base' to drop everything.")) -> None:
    """Downgrade the database schema to an earlier revision."""
    current = _with_engine(lambda e: migrate.downgrade(e, revision))
    console.print(f"database at revision [bold]{current or 'base'}[/]")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and the latest one this code knows."""
    current = _with_engine(migrate.current_revision)
    console.print(f"database: [bold]{current or 'empty'}[/]; code head: [bold]{migrate.head_revision()}[/]")
