"""The installed package is the product alone: nothing under bot/, cogs/ or core/ reaches tests/.

The wheel ships bot, cogs, core and migrations, never tests/ (pyproject.toml,
[tool.setuptools.packages.find]); a product module that imports `tests` works in the checkout and
fails in the Docker image. The benchmarks and the soak that drive the fakes run from the checkout
with `scripts/bench` instead (README, "Command line").
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_DIRS = ("bot", "cogs", "core")
#: Calls that import a module named by a string.
DYNAMIC_IMPORTS = {"import_module", "__import__", "find_spec", "run_module"}


def _names_tests(module: str | None) -> bool:
    return module is not None and (module == "tests" or module.startswith("tests."))


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def lines_importing_tests(source: str) -> list[int]:
    """Lines of `source` that import `tests`: statically, by a dynamic import of a string, or by
    running `python -m tests…` (a list or tuple with "-m" followed by a `tests` module)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(_names_tests(alias.name) for alias in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _names_tests(node.module):
            lines.append(node.lineno)
        elif (isinstance(node, ast.Call) and _callee(node) in DYNAMIC_IMPORTS and node.args
              and _names_tests(_string(node.args[0]))):
            lines.append(node.lineno)
        elif isinstance(node, ast.List | ast.Tuple):
            words = [_string(element) for element in node.elts]
            if any(word == "-m" and _names_tests(after) for word, after in itertools.pairwise(words)):
                lines.append(node.lineno)
    return sorted(set(lines))



def product_modules() -> list[Path]:
    return sorted(path for folder in PRODUCT_DIRS for path in (ROOT / folder).rglob("*.py"))


def test_no_product_module_imports_tests() -> None:
    modules = product_modules()
    assert len(modules) > 50, "the walk must see the whole product"
    offenders = [f"{path.relative_to(ROOT)}:{line}" for path in modules
                 for line in lines_importing_tests(path.read_text(encoding="utf-8"))]
    assert not offenders, f"the installed package does not ship tests/; these product lines import it: {offenders}"


@pytest.mark.parametrize("source", [
    "import tests",
    "import tests.fakes.discord_server as fake",
    "import json, tests.bot.world",
    "from tests.fakes import lastfm_server",
    "from tests import fakes",
    "def f():\n    from tests.perf.bench_sync import _free_port",
    "import importlib\nimportlib.import_module('tests.fakes.discord_server')",
    "from importlib import import_module\nimport_module('tests')",
    "__import__('tests.bot.world')",
    "import importlib.util\nimportlib.util.find_spec('tests.fakes')",
    "import runpy\nrunpy.run_module('tests.perf')",
    "import subprocess, sys\nsubprocess.Popen([sys.executable, '-m', 'tests.fakes.lastfm_server'])",
    "args = (sys.executable, '-m', 'tests.perf', 'bot')",
])
def test_every_way_of_importing_tests_is_caught(source: str) -> None:
    assert lines_importing_tests(source), source


@pytest.mark.parametrize("source", [
    "import testsuite",
    "from testing import tests",
    "from . import tests",
    "from .tests import helper",
    "importlib.import_module('core.tests_helpers')",
    "importlib.import_module(name)",
    "subprocess.run(['python', '-m', 'bot.cli', 'tests'])",
    "log.info('see tests/fakes for the wire format')",
])
def test_names_that_only_look_alike_are_not_flagged(source: str) -> None:
    assert lines_importing_tests(source) == [], source
