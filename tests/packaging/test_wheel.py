"""The wheel alone is the product: a clean virtualenv with it and its declared dependencies, and no
checkout in reach, runs every command `sonance --help` lists (issue 14, "Done when").

How: build the wheel (`pip wheel --no-deps`) from a copy of the files the Dockerfile copies,
install it into a new virtualenv outside the checkout, then run the installed `sonance` with the
current directory elsewhere and no PYTHONPATH, so neither `tests` nor the checkout's packages can be
imported. Dependencies come from a wheelhouse beside the project virtualenv (`<venv>/wheelhouse`, or
SONANCE_WHEELHOUSE) with `--no-index`; only when it lacks something is it filled once from the
package index, so later runs work offline. A module the commands import that no declared dependency
provides fails here, not in the Docker image.

Every command listed (recursively through its groups) must answer `--help`; the ones that need no
network also run for real on a tiny HetRec-format dataset: secret, db upgrade/current on a fresh
SQLite file, import hetrec, train, eval recommend, bench recommend and bench compat.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.dataset_server import write_hetrec

#: Building and installing take minutes on a busy machine, longer when the wheelhouse is filled.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("SONANCE_WHEELHOUSE") or Path(sys.prefix) / "wheelhouse")
#: Commands that drive the fakes of tests/ and so live in scripts/bench, not in the package.
CHECKOUT_ONLY = {("bench", "bot"), ("bench", "sync"), ("bench", "soak")}
#: What the Dockerfile copies into its build stage: the wheel is built from these alone.
DOCKER_SOURCES = ("pyproject.toml", "README.md", "bot", "cogs", "core", "migrations")
COMMAND_ROW = re.compile(r"^│ ([a-z][a-z0-9_-]*)(?:\s|│|$)")


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]


def _pip(python: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([str(python), "-m", "pip", "--disable-pip-version-check", "--no-input", *args], timeout=1800)


def _ok(result: subprocess.CompletedProcess[str], what: str) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@dataclass(frozen=True)
class Installed:
    """The wheel installed in a clean virtualenv, and a place outside the checkout to run it from."""

    wheel: Path
    venv: Path
    workdir: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self) -> dict[str, str]:
        """Only what a shell needs: no PYTHONPATH, no virtualenv of the checkout, no Sonance or
        database settings of the machine; a fresh SQLite file and data folder in the workdir."""
        keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER")}
        return {**keep, "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "COLUMNS": "200", "PYTHONNOUSERSITE": "1",
                "DATABASE_URL": f"sqlite:///{self.workdir / 'sonance.db'}",
                "SONANCE_DATA_DIR": str(self.workdir / "data"), "SONANCE_WORKER_PROCESSES": "0"}

    def sonance(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return _run([str(self.venv / "bin" / "sonance"), *args], env=self.env(), cwd=self.workdir, timeout=timeout)


def _build_wheel(base: Path) -> Path:
    """Built from a copy of what the Dockerfile copies, as the image is: a `build/` left in the
    checkout by an older build would otherwise slip stale modules into the wheel."""
    source = base / "source"
    source.mkdir()
    for name in DOCKER_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = base / "dist"
    _ok(_pip(sys.executable, "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(source)), "building the wheel")
    [wheel] = out.glob("sonance-*.whl")
    return wheel


def _install(python: Path, wheel: Path) -> None:
    """Offline from the wheelhouse; fill it from the index once when something is missing."""
    # --no-compile: byte-compiling all of scipy, pandas and matplotlib at install costs more than
    # compiling, once, the modules the commands below import.
    offline = ("install", "--quiet", "--no-compile", "--no-index", "--find-links", str(WHEELHOUSE), str(wheel))
    if WHEELHOUSE.is_dir() and _pip(python, *offline).returncode == 0:
        return
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    _ok(_pip(sys.executable, "wheel", "--quiet", "--wheel-dir", str(WHEELHOUSE), str(wheel)),
        "filling the wheelhouse with the declared dependencies")
    for own in WHEELHOUSE.glob("sonance-*.whl"):  # the product is always the wheel just built
        own.unlink()
    _ok(_pip(python, *offline), "installing the wheel offline")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    assert ROOT not in base.parents, "the clean virtualenv must live outside the checkout"
    wheel = _build_wheel(base)
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    _install(env_dir / "bin" / "python", wheel)
    workdir = base / "work"
    workdir.mkdir()
    return Installed(wheel, env_dir, workdir)


def listed_commands(help_text: str) -> list[str]:
    """Command names in the "Commands" panel of a typer help screen."""
    names, inside = [], False
    for line in help_text.splitlines():
        if line.startswith("╭"):
            inside = "Commands" in line
        elif line.startswith("╰"):
            inside = False
        elif inside and (match := COMMAND_ROW.match(line)):
            names.append(match.group(1))
    return names


def test_listed_commands_reads_typer_panels() -> None:
    screen = ("╭─ Options ───╮\n│ --help  Show this message.  │\n╰─────────────╯\n"
              "╭─ Commands ──╮\n│ run     Run the bot: migrate │\n│         and connect.     │\n"
              "│ db      Database schema.     │\n│ drop-base                    │\n╰─────────────╯\n")
    assert listed_commands(screen) == ["run", "db", "drop-base"]


def test_the_wheel_is_built_from_what_the_dockerfile_copies() -> None:
    copied = {word.rstrip("/") for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ") and "--from" not in line for word in line.split()[1:-1]}
    assert copied == set(DOCKER_SOURCES)


def test_the_checkout_is_out_of_reach(installed: Installed) -> None:
    probe = ("import importlib.util, json, bot, core, migrations; "
             "print(json.dumps([importlib.util.find_spec('tests') is None, bot.__file__, migrations.__file__]))")
    result = _ok(_run([str(installed.python), "-c", probe], env=installed.env(), cwd=installed.workdir, timeout=60),
                 "probing the clean virtualenv")
    no_tests, bot_file, migrations_file = json.loads(result.stdout)
    assert no_tests, "`tests` must not be importable from the clean virtualenv"
    for module_file in (bot_file, migrations_file):
        assert Path(module_file).is_relative_to(installed.venv), f"{module_file} is not the installed copy"


def test_the_wheel_holds_the_product_and_every_migration(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert not [n for n in names if n.startswith("tests/")], "tests/ must not ship"
    migration_files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "migrations").rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts}
    assert {"migrations/env.py", "migrations/script.py.mako"} <= migration_files
    assert len([n for n in migration_files if n.startswith("migrations/versions/")]) >= 3
    assert migration_files <= names, f"missing from the wheel: {sorted(migration_files - names)}"


def test_every_listed_command_answers_help(installed: Installed) -> None:
    seen: list[tuple[str, ...]] = []
    pending: list[tuple[str, ...]] = [()]
    while pending:
        path = pending.pop(0)
        result = installed.sonance(*path, "--help", timeout=120)
        assert result.returncode == 0 and "Usage:" in result.stdout, (path, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, (path, result.stderr)
        seen.append(path)
        pending.extend((*path, name) for name in listed_commands(result.stdout))
    commands = {path for path in seen if path}
    expected = {("run",), ("secret",), ("train",), ("demo",), ("db", "upgrade"), ("db", "current"),
                ("import", "hetrec"), ("eval", "recommend"), ("bench", "recommend"), ("bench", "compat"), ("sync",)}
    assert expected <= commands, f"not listed: {sorted(expected - commands)}"
    assert not CHECKOUT_ONLY & commands, "bench bot/sync/soak need tests/ and run from scripts/bench"
    assert len(commands) >= 20


def test_secret_prints_a_key_line(installed: Installed) -> None:
    result = _ok(installed.sonance("secret"), "sonance secret")
    assert re.fullmatch(r"SONANCE_SECRET_KEY=[A-Za-z0-9_-]{32,}\n", result.stdout), result.stdout


def test_migrations_run_from_the_installed_package(installed: Installed) -> None:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(ROOT / "migrations")).get_current_head()
    upgraded = _ok(installed.sonance("db", "upgrade"), "sonance db upgrade")
    assert head in upgraded.stdout
    assert (installed.workdir / "sonance.db").is_file()
    current = _ok(installed.sonance("db", "current"), "sonance db current")
    assert f"database: {head}; code head: {head}" in current.stdout


def test_import_train_eval_and_benchmarks_run_on_a_tiny_dataset(installed: Installed) -> None:
    tiny = write_hetrec(installed.workdir / "tiny-hetrec")
    _ok(installed.sonance("db", "upgrade"), "sonance db upgrade")
    imported = _ok(installed.sonance("import", "hetrec", "--path", str(tiny)), "sonance import hetrec")
    assert re.search(r"play counts\s*│\s*240", imported.stdout), imported.stdout
    trained = _ok(installed.sonance("train", "--no-tune"), "sonance train")
    assert "active model: artist-" in trained.stdout
    assert any((installed.workdir / "data" / "models" / "recommender" / "artist").iterdir())

    evaluated = _ok(installed.sonance("eval", "recommend", "--data-dir", str(tiny), "--split-seed", "0",
                                      "--k", "10", "--no-tune", "--json"), "sonance eval recommend")
    figures = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert 0.0 <= figures["MostPop"]["ndcg@10"] <= 1.0 and figures["MostPop"]["users"] == 40

    bench = _ok(installed.sonance("bench", "recommend", "--data-dir", str(tiny), "--users", "10",
                                  "--skip-synthetic", "--json"), "sonance bench recommend")
    timings = json.loads(bench.stdout.strip().splitlines()[-1])["hetrec"]
    assert timings["users"] == 10 and 0 < timings["p50_ms"] <= timings["p95_ms"] <= timings["max_ms"]

    compat = _ok(installed.sonance("bench", "compat", "--sizes", "20,50", "--repeat", "1",
                                   "--overlap-samples", "0", "--json"), "sonance bench compat")
    leaderboards = json.loads(compat.stdout.strip().splitlines()[-1])["leaderboard_seconds"]
    assert set(leaderboards) == {"20", "50"}
