"""`sonance train` and `sonance demo`: train the recommender from the database, and show it working.

`sonance train` trains against the configured DATABASE_URL (the same function the bot's nightly
retrain uses), stores a versioned artifact under SONANCE_DATA_DIR/models and an active
`model_artifacts` row, and prints the metrics; a running bot picks the new model up within a minute.

`sonance demo` needs nothing but the HetRec files (or internet once): it uses its own SQLite file,
by default ``$SONANCE_DATA_DIR/demo/sonance-demo.db`` (``--db`` to change; ``--fresh`` to rebuild),
so it never touches a real database. It imports HetRec if that file has no plays yet, trains (or
reuses the model it trained on the same data: ``--retrain`` forces a new one), and prints
recommendations for a few listeners with their evidence and the artists most like ``--artist``. A
misspelt ``--artist`` is refused before any training, with the closest name it knows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from bot.cli_app import app, console, err_console, run_async, run_cli
from core.config import load_settings
from core.errors import ConfigError, InvalidInput, NotFound

if TYPE_CHECKING:
    from core.config import Settings
    from core.services import Services


#: Each model metric in words an operator without a recommender background can read.
METRIC_WORDS: dict[str, tuple[str, str]] = {
    "n_users": ("listeners", "listening histories it learnt from"),
    "n_items": ("artists", "artists it can recommend"),
    "n_pairs": ("listener-artist pairs", "who played whom: what it learns from"),
    "n_tags": ("tags", "genre and mood tags that describe the artists"),
    "train_seconds": ("training time (s)", "how long this model took to build"),
    "validation_ndcg@10": ("ranking quality", "hide some of a listener's artists: how near the top of 10 picks "
                           "they come back (0 = never, 1 = always first)"),
    "validation_cold_ndcg@10": ("ranking quality, new listeners", "the same for listeners with only a few "
                                "artists so far"),
    "validation_users": ("listeners checked", "how many listeners that check used"),
    "weights": ("blend", "how much each method counts in a pick"),
    "cold_weights": ("blend, new listeners", "the blend for listeners with little history"),
}


def _metrics_table(metrics: dict[str, Any]) -> Table:
    table = Table(title=f"Model {metrics.get('version', '')}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_column("what it means", style="dim")
    for key, value in metrics.items():
        if key in ("version", "path", "artifact_id"):
            continue
        label, meaning = METRIC_WORDS.get(key, (key.replace("_", " "), ""))
        shown = (_shares(value) if isinstance(value, dict)
                 else f"{value:,}" if isinstance(value, int) else str(value))
        table.add_row(label, shown, meaning)
    return table


def _shares(weights: dict[str, float]) -> str:
    """Blend weights as each method's share of the whole ("ease 40%, knn 25%, …")."""
    total = sum(v for v in weights.values() if v > 0) or 1.0
    return ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(weights.items(), key=lambda kv: -kv[1]) if v > 0)


@contextmanager
def training_progress(tune: bool) -> Iterator[Callable[[str], None]]:
    """A progress bar that advances one step per training step (read, each method fitted, tuned,
    saved), with the step's name; the callback may be called from the training thread."""
    from core.recommender.components import default_components

    methods = len(default_components())
    total = 5 + methods * (2 if tune else 1) + (2 if tune else 0)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task("training", total=total)

        def step(message: str) -> None:
            done = progress.tasks[0].completed + 1
            progress.update(task, completed=done, total=max(total, done + 1), description=message[:70])

        yield step
        progress.update(task, completed=progress.tasks[0].total, description="trained")


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
            with training_progress(not no_tune) as step:
                _, metrics = await train_from_db(services, kind=kind, tune=not no_tune, progress=step)
            return metrics
        finally:
            await services.close()

    metrics = run_async(main)
    console.print(_metrics_table(metrics))
    console.print(f"[green]active model:[/] {metrics['version']} at {metrics['path']}", highlight=False)


DEMO_STATE = "demo-model.json"


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
    retrain: bool = typer.Option(False, "--retrain", help="Train a new model even if the data are unchanged."),
) -> None:
    """Import HetRec into a demo database, train (or reuse the model trained on the same data), and
    show recommendations with their evidence."""
    run_cli(lambda: _demo(path, artist, listeners, count, db, fresh, not no_tune, retrain))


def _hetrec_folder(path: Path | None, settings: Settings) -> Path:
    """The HetRec folder to use; an explicit --path or SONANCE_DATASET_DIR without the files is an
    error (never silently another copy), and a failed download is one line (ConfigError)."""
    from core.datasets import fetch_hetrec, locate_hetrec

    if path is not None:
        folder = locate_hetrec(settings, path)  # an explicit path is the only place looked at
        if folder is None:
            raise typer.BadParameter(f"{path} does not contain user_artists.dat", param_hint="--path")
        return folder
    configured = settings.dataset_dir
    if configured and locate_hetrec(settings, configured) is None:
        raise ConfigError(f"SONANCE_DATASET_DIR={configured} has no HetRec files (user_artists.dat): point it at "
                          "the unpacked hetrec2011-lastfm-2k folder, or unset it to download the dataset.")
    folder = locate_hetrec(settings)
    if folder is None:
        console.print("HetRec files not found locally; downloading the public archive…")
        folder = fetch_hetrec(settings)
    return folder


def _demo(path: Path | None, artist: str, listeners: int, count: int, db: Path | None, fresh: bool,
          tune: bool, retrain: bool) -> None:
    base = load_settings()
    folder = _hetrec_folder(path, base)
    db_path = (db or base.data_dir / "demo" / "sonance-demo.db").resolve()
    if fresh and db_path.exists():
        db_path.unlink()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{db_path}", data_dir=db_path.parent / "data",
                             redis_url=None)
    console.print(f"demo database: {db_path}", highlight=False)

    async def main() -> None:
        from core.services import build_services

        services = await build_services(settings)
        try:
            await _import_once(services, folder)
            seed = await _resolve_artist(services, artist)  # before training: a typo must not cost a minute
            console.print(_metrics_table(await _model(services, tune=tune, retrain=retrain)))
            await _show_listeners(services, listeners, count)
            await _show_similar(services, seed)
        finally:
            await services.close()

    run_async(main)


async def _import_once(services: Services, folder: Path) -> None:
    from core.db.repositories import ListenRepository
    from core.sync.imports import import_hetrec

    async with services.session() as session:
        rows, _, _ = await ListenRepository(session).plays_fingerprint()
    if rows:
        return
    with console.status(f"importing HetRec from {folder}…"):
        async with services.session() as session:
            report = await import_hetrec(session, folder)
    console.print("imported: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in report.counts.items()))


async def _resolve_artist(services: Services, query: str) -> str:
    """The demo's --artist as the catalogue names it; a misspelling is refused with a suggestion."""
    from core.db.repositories import CatalogRepository
    from core.fuzzy import did_you_mean, suggest_artist
    from core.matching import artist_key

    key = artist_key(query)
    async with services.session() as session:
        catalog = CatalogRepository(session)
        found = await catalog.artist_by_key(key) if key else None
    if found is not None:
        return found.name
    raise NotFound(did_you_mean(f"The demo data have no artist called “{query}”.",
                                await suggest_artist(services, query), markdown=False))


async def _model(services: Services, *, tune: bool, retrain: bool) -> dict[str, Any]:
    """Reuse the active demo model while the data it was trained on are unchanged; else train.

    The data are fingerprinted by `plays_fingerprint` (rows, plays, newest play), recorded with
    the model version in DEMO_STATE beside the demo database.
    """
    from core.db.repositories import ListenRepository, SchedulingRepository
    from core.recommender.training import ARTIFACT_KIND, train_from_db

    state_file = services.settings.data_dir / DEMO_STATE
    async with services.session() as session:
        fingerprint = list(await ListenRepository(session).plays_fingerprint())
        artifact = await SchedulingRepository(session).active_artifact(ARTIFACT_KIND, "artist")
    wanted = {"fingerprint": fingerprint, "tune": tune}
    if not retrain and artifact is not None and _trained_on(state_file, artifact.version, artifact.path) == wanted:
        console.print(f"reusing model {artifact.version}: the demo data are unchanged "
                      "(--retrain trains a new one)", highlight=False)
        return {"version": artifact.version, **artifact.metrics}
    with training_progress(tune) as step:
        _, metrics = await train_from_db(services, kind="artist", tune=tune, progress=step)
    _remember_training(state_file, {**wanted, "version": metrics["version"]})
    return metrics


def _trained_on(state_file: Path, version: str, path: str) -> dict[str, Any] | None:
    """What the model `version` was trained on (fingerprint, tune), if it is the recorded one and
    its files still exist."""
    if not (state_file.is_file() and Path(path).is_dir()):
        return None
    state = json.loads(state_file.read_text())
    return {"fingerprint": state.get("fingerprint"), "tune": state.get("tune")} if state.get("version") == version \
        else None


def _remember_training(state_file: Path, state: dict[str, Any]) -> None:
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state))


async def _show_listeners(services: Services, listeners: int, count: int) -> None:
    from sqlalchemy import select

    from core.asker import Asker
    from core.db.models import User
    from core.db.repositories import ListenRepository
    from core.recommender.service import RecommendService

    service = RecommendService.of(services)
    async with services.session() as session:
        users = (await session.execute(select(User.id, User.external_ref).where(User.origin == "hetrec")
                                       .order_by(User.id).limit(listeners))).all()
    if not users:
        raise InvalidInput("The demo database has no HetRec listeners; run again with --fresh.")
    for user_id, ref in users:
        # A dataset listener has no Discord account: 0 is no snowflake, and nothing here mentions or DMs.
        result = await service.recommend(Asker(user_id, 0), count=count, record=False)
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


async def _show_similar(services: Services, seed: str) -> None:
    from core.recommender.service import RecommendService

    try:
        similar = await RecommendService.of(services).similar(seed)
    except NotFound as exc:  # known, but too little data about it: tell, don't fail the demo
        console.print(f"[yellow]{exc.user_message}[/]")
        return
    table = Table(title=Text(f"Artists most like {similar.seed}"))
    for column in ("#", "artist", "shared tags", "known by"):
        table.add_column(column)
    for rank, rec in enumerate(similar.items, start=1):
        table.add_row(str(rank), rec.name, ", ".join(w.name for w in rec.evidence.tags[:3]),
                      f"{(rec.evidence.popularity or 0) * 100:.1f}%")
    console.print(table)
