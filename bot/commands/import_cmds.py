"""`sonance import …`: datasets and listening-history exports into the database.

A bad file ends as ONE line naming the file and the position, and exit code 1. Everything shown
comes from the file (names, quoted values, the file name itself), so nothing is printed as rich
markup: a `[/x]` in a field must not be read as a closing tag, and control characters are escaped
before they reach the terminal (`ImportFileError`, `core.cleaning.printable`).
"""

from __future__ import annotations

import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli_app import console, err_console, import_app, run_async
from core.cleaning import printable
from core.config import load_settings
from core.datasets import fetch_hetrec, locate_hetrec
from core.db.repositories import UserRepository
from core.errors import ImportFileError
from core.services import build_services
from core.sync.imports import ImportReport, import_hetrec, import_listen_file, import_listens_tsv


def progress_bar(description: str, total: int | None) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=False)


def print_report(title: str, report: ImportReport) -> None:
    table = Table(title=escape(title), show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, count in report.counts.items():
        table.add_row(name.replace("_", " "), f"{count:,}")
    console.print(table)


class _ImportFailed(Exception):
    """Carries an `ImportFileError`'s message past the generic CLI error handler, which prints markup."""


def _refuse(message: str) -> typer.Exit:
    """One red `error:` line; the message is plain text (a `Text`, never parsed as markup)."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", printable(message)), highlight=False)
    return typer.Exit(1)


def _run_import(title: str, total: int | None,
                body: Callable[[AsyncSession, Callable[[int], None]], Awaitable[ImportReport]]) -> None:
    title = printable(title)

    async def main() -> ImportReport:
        services = await build_services(load_settings())
        try:
            with progress_bar(escape(title), total) as bar:
                task = bar.add_task(escape(title), total=total)
                async with services.session() as session:  # one transaction: all or nothing
                    return await body(session, lambda n: bar.advance(task, n))
        except ImportFileError as exc:
            raise _ImportFailed(exc.user_message) from None
        finally:
            await services.close()

    try:
        report = run_async(main)
    except _ImportFailed as exc:
        raise _refuse(str(exc)) from None
    print_report(title, report)


def _count_lines(path: Path, limit_bytes: int = 1 << 30) -> int | None:
    """Data lines of a regular file, for the progress bar; None when unknown (a pipe, a device such
    as /dev/zero, an unreadable or very large file). Counted in blocks: memory stays flat whatever
    the line length."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit_bytes:
            return None
        newlines = 0
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                newlines += block.count(b"\n")
        return max(0, newlines - 1)
    except OSError:
        return None


@import_app.command("hetrec")
def import_hetrec_cmd(
    path: Path | None = typer.Option(None, "--path", help="Folder with the HetRec 2011 Last.fm files. "
                                     "Default: $SONANCE_DATASET_DIR, the shared copy, else download."),
) -> None:
    """Import the HetRec 2011 Last.fm dataset (1,892 listeners, 17,632 artists, tags)."""
    settings = load_settings()
    folder = locate_hetrec(settings, path)
    if folder is None:
        if path is not None:
            raise typer.BadParameter(f"{path} does not contain user_artists.dat", param_hint="--path")
        console.print("HetRec files not found locally; downloading the public archive…")
        folder = fetch_hetrec(settings)
    total = sum(filter(None, (_count_lines(folder / n) for n in ("artists.dat", "user_artists.dat",
                                                                    "user_taggedartists.dat"))))
    _run_import(f"HetRec from {folder}", total, lambda s, p: import_hetrec(s, folder, p))


@import_app.command("listens")
def import_listens_cmd(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="UTF-8 TSV with header: user artist track album played_at"),
    discord_id: int | None = typer.Option(None, help="Put every row into this Discord user's history."),
) -> None:
    """Import a generic listens TSV (played_at: ISO 8601 or Unix seconds)."""
    _run_import(f"listens from {file.name}", _count_lines(file),
                lambda s, p: import_listens_tsv(s, file, p, discord_user_id=discord_id))


def _single_user_import(kind: str, file: Path, discord_id: int) -> None:
    async def body(session: AsyncSession, progress: Callable[[int], None]) -> ImportReport:
        user = await UserRepository(session).get_or_create_discord(discord_id)
        return await import_listen_file(session, file, kind, user_id=user.id, progress=progress)

    _run_import(f"{kind} from {file.name}", None, body)


@import_app.command("lastfm-csv")
def import_lastfm_csv_cmd(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Last.fm scrobble export (CSV, UTF-8)."),
    discord_id: int = typer.Option(..., help="Discord user id whose history this is."),
) -> None:
    """Import a Last.fm scrobble CSV export into one member's history."""
    _single_user_import("lastfm-csv", file, discord_id)


@import_app.command("spotify-history")
def import_spotify_cmd(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False,
                                       help="Spotify extended streaming history JSON files."),
    discord_id: int = typer.Option(..., help="Discord user id whose history this is."),
) -> None:
    """Import Spotify's extended streaming history (Streaming_History_Audio_*.json)."""
    for file in files:
        _single_user_import("spotify-json", file, discord_id)
