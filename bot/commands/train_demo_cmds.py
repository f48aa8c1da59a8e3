"""`sonance train` and `sonance demo`: train the recommender from the database, and show it working.

`sonance train` trains against the configured DATABASE_URL (the same function the bot's nightly
retrain uses), stores a versioned artifact under SONANCE_DATA_DIR/models and an active
`model_artifacts` row, and prints the metrics; a running bot picks the new model up within a minute.

`sonance demo` needs nothing but the HetRec files (or internet once): it uses its own SQLite file,
by default ``$SONANCE_DATA_DIR/demo/sonance-demo.db`` (``--db`` to change; ``--fresh`` to rebuild),
so it never touches a real database. It imports HetRec if that file has no plays yet, trains, and
prints recommendations for a few listeners with their evidence and the artists most like ``--artist``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from bot.cli_app import app, console, err_console, run_async
from core.config import load_settings
from core.errors import InvalidInput, NotFound


def _say(message: str) -> None:
    err_console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)


def _metrics_table(metrics: dict[str, Any]) -> Table:
    table = Table(title=f"Model {metrics.get('version', '')}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if key in ("version",):
            continue
        shown = ", ".join(f"{k}={v:g}" for k, v in value.items() if v) if isinstance(value, dict) else str(value)
        table.add_row(key.replace("_", " "), shown)
    return table


@app.command("train")
def train_cmd(
    kind: str = typer.Option("artist", "--kind", help="Granularity: artist, album or track."),
    no_tune: bool = typer.Option(False, "--no-tune", help="Skip weight tuning (faster, default weights)."),
) -> None:
    """Train the recommender from the database and make it the active model."""
    if kind not in ("artist", "album", "track"):
        raise typer.BadParameter("kind must be artist, album or track", param_hint="--kind")

    async def main() -> dict[str, Any]:
        from core.recommender.training import train_from_db
        from core.services import build_services

        services = await build_services(load_settings())
        try:
            with console.status(f"training the {kind} recommender…"):
                _, metrics = await train_from_db(services, kind=kind, tune=not no_tune, progress=_say)
            return metrics
        finally:
            await services.close()

    metrics = run_async(main)
    console.print(_metrics_table(metrics))
    console.print(f"[green]active model:[/] {metrics['version']} at {metrics['path']}", highlight=False)


@app.command("demo")
def demo_cmd(
    path: Path | None = typer.Option(None, "--path", help="HetRec folder. Default: $SONANCE_DATASET_DIR, "
                                     "the shared copy, else download."),
    artist: str = typer.Option("Radiohead", "--artist", help="Show the artists most similar to this one."),
    listeners: int = typer.Option(3, "--listeners", min=1, max=10, help="How many listeners to show."),
    count: int = typer.Option(8, "--count", min=1, max=25, help="Recommendations per listener."),
    db: Path | None = typer.Option(None, "--db", help="SQLite file for the demo "
                                   "(default: $SONANCE_DATA_DIR/demo/sonance-demo.db)."),
    fresh: bool = typer.Option(False, "--fresh", help="Delete the demo database first."),
    no_tune: bool = typer.Option(False, "--no-tune", help="Skip weight tuning (faster)."),
) -> None:
    """Import HetRec into a demo database, train, and show recommendations with their evidence."""
    from core.datasets import download_hetrec, find_hetrec_dir

    base = load_settings()
    folder = find_hetrec_dir(path)
    if folder is None:
        if path is not None:
            raise typer.BadParameter(f"{path} does not contain user_artists.dat", param_hint="--path")
        console.print("HetRec files not found locally; downloading the public archive…")
        folder = download_hetrec(base.data_dir / "datasets")
    db_path = (db or base.data_dir / "demo" / "sonance-demo.db").resolve()
    if fresh and db_path.exists():
        db_path.unlink()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{db_path}", data_dir=db_path.parent / "data",
                             redis_url=None)
    console.print(f"demo database: {db_path}", highlight=False)

    async def main() -> None:
        from sqlalchemy import select

        from core.db.models import User
        from core.db.repositories import ListenRepository
        from core.recommender.service import RecommendService
        from core.services import build_services
        from core.sync.imports import import_hetrec

        services = await build_services(settings)
        try:
            async with services.session() as session:
                rows, _, _ = await ListenRepository(session).plays_fingerprint()
            if rows == 0:
                with console.status(f"importing HetRec from {folder}…"):
                    async with services.session() as session:
                        report = await import_hetrec(session, folder)
                console.print("imported: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in report.counts.items()))
            service = RecommendService.of(services)
            with console.status("training the recommender (a minute or so on two cores)…"):
                metrics = await service.retrain("artist", tune=not no_tune)
            console.print(_metrics_table(metrics))
            async with services.session() as session:
                users = (await session.execute(select(User.id, User.external_ref).where(User.origin == "hetrec")
                                               .order_by(User.id).limit(listeners))).all()
            if not users:
                raise InvalidInput("The demo database has no HetRec listeners; run again with --fresh.")
            for user_id, ref in users:
                result = await service.recommend_for_user(user_id, count=count, record=False)
                async with services.session() as session:
                    top = await ListenRepository(session).top_artists(user_id, None, limit=5)
                title = Text(f"Listener {ref}: plays {', '.join(n for n, _ in top)}")  # Text: no ":100:" emoji
                table = Table(title=title, show_lines=False)
                for column in ("#", "artist", "because you play", "shared tags", "known by"):
                    table.add_column(column, justify="right" if column in ("#", "known by") else "left")
                for rank, shown in enumerate(result.items, start=1):
                    ev = shown.rec.evidence
                    table.add_row(str(rank), shown.rec.name, ", ".join(w.name for w in ev.items[:3]),
                                  ", ".join(w.name for w in ev.tags[:3]),
                                  f"{(ev.popularity or 0) * 100:.1f}%")
                console.print(table)
                if result.note:
                    console.print(f"[dim]{result.note}[/]")
            try:
                similar = await service.similar(artist)
            except NotFound as exc:  # tell, don't crash the demo
                console.print(f"[yellow]{exc.user_message}[/]")
                return
            table = Table(title=Text(f"Artists most like {similar.seed}"))
            for column in ("#", "artist", "shared tags", "known by"):
                table.add_column(column)
            for rank, rec in enumerate(similar.items, start=1):
                table.add_row(str(rank), rec.name, ", ".join(w.name for w in rec.evidence.tags[:3]),
                              f"{(rec.evidence.popularity or 0) * 100:.1f}%")
            console.print(table)
        finally:
            await services.close()

    run_async(main)
