"""The `scripts/bench` command: `bot`, `sync` and `soak`, each registered from its own module.

The options and the one-line JSON are those the commands had as `sonance bench bot|sync|soak`, so
scripts that parse them keep working; only the way to call them changed (they need the checkout).
Output helpers and the one-line error handling are the product CLI's (`bot.cli_app`).
"""

from __future__ import annotations

import typer

bench_app = typer.Typer(
    name="bench",
    help="Benchmarks and the soak of the real bot against the local fakes of tests/ (run from the checkout).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
