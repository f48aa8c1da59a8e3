"""`sonance sync`: run a Last.fm sync by hand and print what it did."""

from __future__ import annotations

import aiohttp
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.cli_app import app, console, err_console, fail, run_async
from core.config import load_settings
from core.db.repositories import AccountRepository, UserRepository
from core.services import build_services
from core.sources.http import SourceLimiters
from core.sources.lastfm import LastfmClient
from core.sources.lastfm_history import HistoryPage
from core.sync.engine import LastfmSync, SyncReport


@app.command("sync")  # a command, not a group: it has no sub-commands (`--help` says so)
def sync(
    user: str | None = typer.Option(None, "--user", help="Last.fm username or Discord id of a linked account."),
    link: bool = typer.Option(False, "--link", help="Create a local listener linked to this Last.fm username "
                              "if nobody linked it yet (for trying Sonance without Discord)."),
    due: bool = typer.Option(False, "--due", help="Sync every account whose cadence has come, as the scheduler does."),
) -> None:
    """Sync listening history from Last.fm: one account (--user) or all that are due (--due)."""
    if not user and not due:
        raise fail("give --user NAME or --due")

    async def body() -> list[SyncReport]:
        settings = load_settings()
        settings.require("lastfm_api_key")
        services = await build_services(settings)
        try:
            async with aiohttp.ClientSession() as http:
                client = LastfmClient(settings, http, SourceLimiters.from_settings(settings).lastfm)
                engine = LastfmSync(services, client)
                if due:
                    return await engine.sync_due(active_minutes=settings.sync_active_minutes)
                assert user is not None
                async with services.session() as session:
                    accounts = AccountRepository(session, services.cipher)
                    account = await accounts.find("lastfm", user)
                    if account is None and link:
                        listener = (await UserRepository(session).ensure_dataset_users("cli", [f"cli:{user}"]))[f"cli:{user}"]
                        account = await accounts.link(listener, "lastfm", user)
                if account is None:
                    raise fail(f"no linked Last.fm account '{user}' (link it with /link lastfm, or pass --link)")
                with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), console=err_console) as bar:
                    task = bar.add_task(f"Last.fm {account.external_id}", total=None)

                    def progress(page: HistoryPage) -> None:
                        bar.update(task, total=page.total_pages, completed=page.page_index)

                    return [await engine.sync_account(account.id, progress)]
        finally:
            await services.close()

    reports = run_async(body)
    for r in reports:
        line = f"account {r.account_id}: {r.status}, {r.pages} pages, {r.fetched} plays read, {r.inserted} new"
        console.print(line + (f" — {r.reason}: {r.message}" if r.reason else ""))
    if any(r.status == "error" for r in reports):
        raise typer.Exit(1)
