"""`scripts/bench`: loads the command modules (each registers itself on `bench_app`), then runs typer.

The same shape as `bot.cli` for `sonance`; a separate module from `__main__` so that tests can load
the commands without running them.
"""

from __future__ import annotations

import typer

from core.runtime import tune_gc
from tests.perf.cli_app import bench_app


def load_commands() -> typer.Typer:
    """The `scripts/bench` command with `bot`, `sync` and `soak` registered."""
    from tests.perf import bench_bot_cmds, bench_sync_cmds, soak_cmds  # noqa: F401  (import = register)

    return bench_app


def main() -> None:
    app = load_commands()
    tune_gc()  # after imports, as `sonance` does: the loaded modules are the first long-lived heap
    app(prog_name="scripts/bench")
