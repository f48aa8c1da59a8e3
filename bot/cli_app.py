"""The `sonance` command tree (typer + rich).

Groups live here so that each command family can register itself from its own module in
`bot/commands/` without importing the others. Commands report `SonanceError`s as one readable line
and a non-zero exit, never a traceback (see `run_cli`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from core.errors import SonanceError
from core.runtime import run_main

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    name="sonance",
    help="Sonance: a Discord bot that recommends music people will love.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: upgrade, downgrade, current revision.", no_args_is_help=True)
import_app = typer.Typer(help="Import listening data (HetRec, listens TSV, Last.fm CSV, Spotify history).",
                         no_args_is_help=True)
eval_app = typer.Typer(help="Offline evaluation: recommendation quality, compatibility AUC.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks of the hot paths; they print figures.", no_args_is_help=True)

app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red line to stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def run_cli(func: Callable[[], T]) -> T:
    """Run a command body; a `SonanceError` becomes one line and exit code 1."""
    try:
        return func()
    except SonanceError as exc:
        raise fail(exc.user_message) from None


def run_async(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async command body on a fresh event loop, with `run_cli`'s error handling."""
    return run_cli(lambda: run_main(coro_factory()))
