"""House rules that a machine can check."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_core_never_imports_discord() -> None:
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "discord" or n.startswith("discord.") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"core/ must not import discord: {offenders}"


def test_every_personal_table_reaches_users() -> None:
    """A new table either references users (so /forget covers it) or is declared user-less."""
    from core.db.models import USERLESS_TABLES, Base
    from core.db.repositories.personal_data import personal_links

    covered = {link.table.name for link in personal_links()} | {"users"}
    unclassified = set(Base.metadata.tables) - covered - USERLESS_TABLES
    assert not unclassified, f"tables neither personal nor declared user-less: {unclassified}"
