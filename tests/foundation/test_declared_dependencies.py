"""The dependencies in pyproject.toml are the ones the code uses, no more and no fewer.

Runtime: every third-party module that the installed package (bot/, cogs/, core/, migrations/)
imports belongs to a distribution in `[project] dependencies`, and every declared distribution is
imported there or used by name (a database driver picked by URL, a parser picked by string), as
`USED_BY_NAME` records with the text that shows the use. Dev: the same for tests/ against the
runtime dependencies plus the `dev` extra. Import names map to distributions through
`importlib.metadata.packages_distributions()` (`bs4` -> beautifulsoup4, `discord` -> discord.py).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_DIRS = ("bot", "cogs", "core", "migrations")
FIRST_PARTY = frozenset({*PRODUCT_DIRS, "tests"})

#: Declared distributions used without an import statement: (file, text that shows the use).
USED_BY_NAME: dict[str, tuple[str, str]] = {
    "aiosqlite": ("core/config.py", '"aiosqlite"'),  # SQLAlchemy's async SQLite driver, chosen by URL
    "asyncpg": ("core/config.py", '"asyncpg"'),  # SQLAlchemy's async PostgreSQL driver, chosen by URL
    "psycopg2-binary": ("core/scheduler.py", "postgresql+psycopg2"),  # APScheduler's synchronous job store
    "lxml": ("core/sources/aoty_parse.py", 'BeautifulSoup(html, "lxml")'),  # BeautifulSoup's parser
}
DEV_USED_BY_NAME: dict[str, tuple[str, str]] = {
    "pytest-asyncio": ("pyproject.toml", 'asyncio_mode = "auto"'),
    "pytest-timeout": ("pyproject.toml", "\ntimeout = "),
    "ruff": ("pyproject.toml", "[tool.ruff]"),
}


def normalise(name: str) -> str:
    """PEP 503 form, so `discord.py`, `Discord_Py` and `discord-py` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert match, f"unreadable requirement {spec!r}"
    return normalise(match.group(1))


@cache
def declared() -> tuple[frozenset[str], frozenset[str]]:
    """(runtime distributions, dev-extra distributions), normalised."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dev = project.get("optional-dependencies", {}).get("dev", [])
    return (frozenset(requirement_name(s) for s in project["dependencies"]),
            frozenset(requirement_name(s) for s in dev))


@cache
def third_party_imports(*dirs: str) -> dict[str, set[str]]:
    """Top-level third-party module -> the files importing it (lazy and TYPE_CHECKING imports too)."""
    found: dict[str, set[str]] = {}
    for folder in dirs:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for top in (m.partition(".")[0] for m in modules):
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@cache
def installed() -> dict[str, list[str]]:
    return packages_distributions()


def distributions(module: str) -> set[str]:
    return {normalise(d) for d in installed().get(module, [])}


def used_by_name(table: dict[str, tuple[str, str]]) -> set[str]:
    """The entries of `table` whose evidence is still in the code (a removed use frees the entry)."""
    return {dist for dist, (file, text) in table.items() if text in (ROOT / file).read_text(encoding="utf-8")}


def undeclared(imports: dict[str, set[str]], allowed: frozenset[str]) -> list[str]:
    return [f"{module} (from {sorted(distributions(module)) or 'no installed distribution'}) in {sorted(files)[:3]}"
            for module, files in sorted(imports.items()) if not distributions(module) & allowed]


def test_every_product_import_is_a_declared_runtime_dependency() -> None:
    runtime, _ = declared()
    missing = undeclared(third_party_imports(*PRODUCT_DIRS), runtime)
    assert not missing, f"imported by the package but not in [project] dependencies: {missing}"


def test_every_runtime_dependency_is_used_by_the_product() -> None:
    runtime, _ = declared()
    imported = set().union(*(distributions(m) for m in third_party_imports(*PRODUCT_DIRS)))
    unused = runtime - imported - used_by_name(USED_BY_NAME)
    assert not unused, (f"declared in [project] dependencies but neither imported by bot/ cogs/ core/ "
                        f"migrations/ nor in USED_BY_NAME: {sorted(unused)} (used only by tests or tools? "
                        f"move it to the dev extra)")


def test_every_test_import_is_declared() -> None:
    runtime, dev = declared()
    missing = undeclared(third_party_imports("tests"), runtime | dev)
    assert not missing, f"imported by tests/ but declared neither at runtime nor in the dev extra: {missing}"


def test_every_dev_dependency_is_used() -> None:
    runtime, dev = declared()
    imported = set().union(*(distributions(m) for m in third_party_imports("tests")))
    unused = dev - imported - used_by_name(DEV_USED_BY_NAME)
    assert not unused, f"in the dev extra but not imported by tests/ nor in DEV_USED_BY_NAME: {sorted(unused)}"
    assert not dev & runtime, f"declared both at runtime and in the dev extra: {sorted(dev & runtime)}"


def test_the_mapping_sees_through_import_names() -> None:
    """The check above is only as good as the name mapping: an import name unlike its distribution's."""
    assert distributions("bs4") == {"beautifulsoup4"}
    assert distributions("discord") == {"discord-py"}
    assert undeclared({"bs4": {"x.py"}}, frozenset({"beautifulsoup4"})) == []
    assert undeclared({"spotipy": {"x.py"}}, frozenset({"aiohttp"})) != []
