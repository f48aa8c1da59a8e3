"""`sonance sync`: run a Last.fm sync by hand and print what it did."""

from __future__ import annotations

import aiohttp
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.cli_app import bench_app, console, err_console, fail, run_async, run_cli, sync_app
from core.config import load_settings
from core.db.repositories import AccountRepository, UserRepository
from core.services import build_services
from core.sources.http import SourceLimiters
from core.sources.lastfm import LastfmClient
from core.sources.lastfm_history import HistoryPage
from core.sync.engine import LastfmSync, SyncReport


@sync_app.callback(invoke_without_command=True)
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


@bench_app.command("sync")
def bench_sync(
    scrobbles: int = typer.Option(1_000_000, help="Size of the synthetic Last.fm history."),
    postgres_url: str | None = typer.Option(None, help="PostgreSQL server to measure too "
                                            "(default: $SONANCE_BENCH_POSTGRES_URL or 127.0.0.1:5432)."),
    sqlite_only: bool = typer.Option(False, help="Skip PostgreSQL."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on the last line."),
    limited_scrobbles: int = typer.Option(10_000, min=0, help="History size of a second sync through the "
                                          "default Last.fm rate limit (0: skip; ~1 s per 1,000 listens)."),
) -> None:
    """Listens ingested per second from a local fake Last.fm into SQLite and PostgreSQL (no rate
    limit), and the rate a real sync reaches under the default Last.fm limit."""
    import json

    from core.sync import bench

    url = None if sqlite_only else (postgres_url or bench.default_postgres_url())
    results = run_cli(lambda: bench.run(scrobbles, url))
    for r in results:
        console.print(f"{r.database:>10}: {r.listens:,} listens in {r.seconds:.1f} s = {r.per_second:,.0f} listens/s")
    limited = run_cli(lambda: bench.run_limited(limited_scrobbles)) if limited_scrobbles else None
    if limited is not None:
        console.print(f"under the Last.fm limit ({limited.requests_per_s:g} requests/s x {limited.page_size} a page): "
                      f"{limited.run.listens:,} listens in {limited.run.seconds:.1f} s = "
                      f"{limited.run.per_second:,.0f} listens/s, {limited.run.per_second / limited.bound_per_s:.0%} "
                      f"of the {limited.bound_per_s:,.0f} listens/s bound")
    if as_json:
        out: dict[str, object] = {r.database: {"listens": r.listens, "seconds": round(r.seconds, 2),
                                               "listens_per_s": round(r.per_second)} for r in results}
        if limited is not None:
            out["lastfm_limited"] = limited.to_json_dict()
        print(json.dumps(out))
