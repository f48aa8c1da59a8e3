"""Typed wiring: who is asking is resolved once, components are typed fields, imports point one way."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import func, select

from core.asker import Asker
from core.db.models import GuildMembership, User
from core.services import Services

ROOT = Path(__file__).resolve().parents[2]
GUILD = 555
#: Load and benchmark tools that drive the bot through the fakes in tests/: not the product's wiring.


def _calls_and_imports(path: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(imported module names, (called attribute or function name, line))."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports: list[str] = []
    calls: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imports.append(node.module)
        elif isinstance(node, ast.Call):
            func_node = node.func
            name = func_node.attr if isinstance(func_node, ast.Attribute) else getattr(func_node, "id", "")
            calls.append((name, node.lineno))
            if name == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
                imports.append(str(node.args[0].value))
    return imports, calls


def test_bot_never_imports_cogs() -> None:
    """Dependencies point bot -> core and cogs -> bot/core; the client loads cogs by extension name."""
    offenders = []
    for path in (ROOT / "bot").rglob("*.py"):
        imports, _ = _calls_and_imports(path)
        offenders += [f"{path.relative_to(ROOT)}: {m}" for m in imports if m == "cogs" or m.startswith("cogs.")]
    assert not offenders, f"bot/ must not import cogs: {offenders}"


def test_engine_components_are_typed_fields() -> None:
    """`Services.component(name, factory)` kept whichever factory ran first; every component is now a
    typed property of `Services` (the recommender's `RecommendService.of` returns `services.recommend`)."""
    offenders = []
    for folder in ("bot", "cogs", "core"):
        for path in (ROOT / folder).rglob("*.py"):
            _, calls = _calls_and_imports(path)
            offenders += [f"{path.relative_to(ROOT)}:{line}" for name, line in calls if name == "component"]
    assert not offenders, f"use a typed Services field instead of component(): {offenders}"


def test_components_are_built_once_and_can_be_configured_before_first_use(services: Services) -> None:
    assert services.accounts is services.accounts
    assert services.compat is services.compat
    assert services.playlists is services.playlists
    from core.sync.engine import LastfmSync

    custom = LastfmSync(services, None, prefetch=1)  # type: ignore[arg-type]
    services.lastfm_sync = custom
    assert services.lastfm_sync is custom  # the account service's imports use the same instance


async def _counts(services: Services) -> tuple[int, int]:
    async with services.session() as session:
        users = (await session.execute(select(func.count()).select_from(User))).scalar_one()
        members = (await session.execute(select(func.count()).select_from(GuildMembership))).scalar_one()
    return int(users), int(members)


async def test_resolve_creates_the_asker_once_and_known_never_writes(services: Services) -> None:
    before = await _counts(services)
    assert await services.askers.known(9001, GUILD) is None
    assert await _counts(services) == before, "asking what is stored must not store anything"

    asker = await services.askers.resolve(9001, "Nine", GUILD)
    assert isinstance(asker, Asker) and (asker.discord_id, asker.guild_id) == (9001, GUILD)
    assert await _counts(services) == (before[0] + 1, before[1] + 1)
    again = await services.askers.resolve(9001, "Nine", GUILD)
    assert again == asker and await _counts(services) == (before[0] + 1, before[1] + 1)
    assert await services.askers.known(9001, None) == Asker(asker.user_id, 9001, None)
