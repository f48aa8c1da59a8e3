"""The `sonance` command and the bot's web server, through their public interfaces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.web import MAX_BODY_BYTES, build_web_app
from core.services import Services

ROOT = Path(__file__).resolve().parents[2]


def sonance(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DATABASE_URL", "REDIS_URL"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=120)


def test_help_lists_the_command_groups() -> None:
    result = sonance("--help")
    assert result.returncode == 0
    for group in ("run", "db", "import", "eval", "bench", "sync"):
        assert group in result.stdout


def test_db_upgrade_creates_a_fresh_sqlite_database(tmp_path: Path) -> None:
    result = sonance("db", "upgrade", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "revision" in result.stdout
    assert (tmp_path / "new.db").exists()


@pytest.mark.parametrize(("env", "needle"), [
    ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"}, "Cannot reach the database"),
])
def test_bad_database_settings_give_one_line_and_nonzero_exit(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    result = sonance("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_without_a_token_says_what_to_set(tmp_path: Path) -> None:
    result = sonance("run", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}, cwd=tmp_path)
    assert result.returncode != 0
    assert "set DISCORD_TOKEN" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists(), "no schema is created when the bot cannot start"


def test_unreachable_redis_at_start_is_one_clear_line(tmp_path: Path) -> None:
    result = sonance("run", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "DISCORD_TOKEN": "x",
                                 "REDIS_URL": "redis://127.0.0.1:1/0"}, cwd=tmp_path)
    assert result.returncode != 0
    assert "Redis" in result.stderr and "Traceback" not in result.stderr


async def test_healthz_and_only_known_routes(services: Services) -> None:
    async with TestClient(TestServer(build_web_app(services))) as client:
        response = await client.get("/healthz")
        assert response.status == 200
        body = await response.json()
        assert body["database"] == "ok" and body["status"] == "ok"
        assert (await client.get("/admin")).status == 404
        big = await client.post("/healthz", data=b"x" * (MAX_BODY_BYTES + 1))
        assert big.status in (405, 413)
    assert aiohttp  # imported for the client types above


async def test_healthz_reports_the_explainer_state(database_url: str, tmp_path: Path) -> None:
    """A wrong OpenAI key: /healthz says "failing: http 401" (still 200: templates are served)."""
    from core.services import build_services
    from tests.conftest import make_settings
    from tests.explain.conftest import artist_rec
    from tests.fakes.openai_server import FakeOpenAIServer

    async with FakeOpenAIServer() as llm:
        settings = make_settings(database_url, tmp_path, OPENAI_API_KEY="wrong-key", OPENAI_BASE_URL=llm.base_url)
        services = await build_services(settings, upgrade_schema=False)
        try:
            async with TestClient(TestServer(build_web_app(services))) as client:
                body = await (await client.get("/healthz")).json()
                assert body["explainer"] == "starting"
                await services.start_clients()
                body = await (await client.get("/healthz")).json()
                assert body["explainer"] == "ok"
                assert services.explainer is not None
                await services.explainer.recommendation(artist_rec(), user_id=1)
                response = await client.get("/healthz")
                body = await response.json()
                assert response.status == 200 and body["status"] == "ok"
                assert body["explainer"] == "failing: http 401"
        finally:
            await services.close()


def test_secret_prints_a_new_usable_key(tmp_path: Path) -> None:
    from core.crypto import TokenCipher

    first, second = sonance("secret", cwd=tmp_path), sonance("secret", cwd=tmp_path)
    assert first.returncode == 0 and first.stderr == ""
    [line] = first.stdout.splitlines()
    name, _, value = line.partition("=")
    assert name == "SONANCE_SECRET_KEY" and len(value) >= 48 and value not in second.stdout
    cipher = TokenCipher(value)
    assert cipher.decrypt(cipher.encrypt("a token")) == "a token"


def test_scripts_sonance_works_where_the_user_stands(tmp_path: Path) -> None:
    """`.env`, relative paths and the database are those of the current directory (issue 13 §5)."""
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite:///here.db\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SONANCE_"))}
    env["SONANCE_VENV"] = sys.prefix  # the running virtualenv: nothing to install
    result = subprocess.run([str(ROOT / "scripts" / "sonance"), "db", "upgrade"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "here.db").exists() and not (ROOT / "here.db").exists()
