"""Entry point of the `sonance` console script: loads every command family, then runs typer."""

from __future__ import annotations

import importlib

from bot.cli_app import app
from core.runtime import tune_gc

# Each module registers its commands on the groups of `bot.cli_app` when imported.
COMMAND_MODULES = (
    "bot.commands.core_cmds",
    "bot.commands.recommend_cmds",
    "bot.commands.import_cmds",
    "bot.commands.sync_cmds",
    "bot.commands.compat_cmds",
    "bot.commands.train_demo_cmds",
)


def _load_commands() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module)


def main() -> None:
    _load_commands()
    tune_gc()  # after imports: the loaded modules are the first long-lived heap (see core.runtime)
    app()


if __name__ == "__main__":
    main()
