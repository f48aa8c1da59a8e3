"""`sonance run` and `sonance db …`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from bot.cli_app import app, console, db_app, fail, run_async
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


@app.command("export")
def export(
    discord_id: int = typer.Option(..., "--discord-id", help="The member's Discord user id."),
    out: Path | None = typer.Option(None, "--out", help="Where to write it (default: sonance-export-<id>.json here)."),
) -> None:
    """Write everything Sonance stores about one member as JSON (secrets redacted), for an export too
    large for Discord (/export says to ask for this). The file is created readable by you alone."""
    from core.private_files import private_file
    from core.services import build_services

    async def body() -> tuple[Path, dict[str, int]]:
        services = await build_services(load_settings())
        try:
            asker = await services.askers.known(discord_id, None)
            if asker is None:
                raise fail(f"Sonance stores nothing about Discord user {discord_id}.")
            result = await services.accounts.export(asker, max_bytes=sys.maxsize)
        finally:
            await services.close()
        target = out or Path(result.filename)
        private_file(target)
        target.write_bytes(result.data)
        return target, result.tables

    target, tables = run_async(body)
    console.print(f"wrote [bold]{target}[/]: " + ", ".join(f"{name} {n:,}" for name, n in tables.items() if n))


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


@db_app.command("drop-base")
def db_drop_base(
    force: bool = typer.Option(False, "--force", help="Drop it even though this server has fewer listeners "
                               "of its own than SONANCE_BASE_MAX_MEMBERS."),
) -> None:
    """Remove the base corpus (HetRec listeners and their plays); members' data and the catalogue stay."""
    from core.db.repositories import UserRepository
    from core.db.repositories.users import BASE_ORIGIN
    from core.services import build_services
    from core.sync.base_corpus import drop_base_corpus

    async def body() -> tuple[dict[str, int], int, int]:
        settings = load_settings()
        services = await build_services(settings)
        try:
            async with services.session() as session:
                counts = await UserRepository(session).listener_counts()
            own = sum(n for origin, n in counts.items() if origin != BASE_ORIGIN)
            if own < settings.base_max_members and not force:
                raise fail(f"this server has {own} listeners of its own (fewer than SONANCE_BASE_MAX_MEMBERS="
                           f"{settings.base_max_members}): the base corpus still helps its recommendations. "
                           "Use --force to drop it anyway.")
            waiting = "an import of the base corpus is running; waiting for it to finish, then dropping it"
            return (await drop_base_corpus(services, on_wait=lambda: console.print(waiting)), own,
                    settings.base_max_members)
        finally:
            await services.close()

    deleted, own, threshold = run_async(body)
    console.print(f"dropped [bold]{deleted.get('users', 0):,}[/] base listeners "
                  f"({deleted.get('artist_plays', 0):,} play counts); members' data and the catalogue are kept. "
                  "The next training (nightly, or `sonance train`) learns without them.")
    if own < threshold:
        console.print("note: with fewer listeners than SONANCE_BASE_MAX_MEMBERS, `sonance run` imports the base "
                      "again at start unless SONANCE_BASE_DATASET=none.")
