"""An export too large for Discord: /export's refusal names a command, and that command exists."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.asker import Asker
from core.db.repositories import AccountRepository, UserRepository
from core.errors import SonanceError
from core.services import Services
from core.sync.ingest import RawListen, ingest_listens
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
DISCORD_ID = 7_300_000_000_000_000_001


async def member(services: Services) -> Asker:
    """A member with a verified Last.fm link (an encrypted session key) and 50 listens."""
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(DISCORD_ID, "Big Listener")
        await AccountRepository(s, services.cipher).link(user.id, "lastfm", "big_fm", verified=True,
                                                         access_token="SESSION-KEY-SECRET")
        start = datetime(2026, 11, 1, tzinfo=UTC)
        await ingest_listens(s, user.id, [RawListen(artist=f"Band {i % 7}", track=f"Song {i}", album=None,
                                                    played_at=start + timedelta(minutes=5 * i), source="lastfm")
                                          for i in range(50)])
        return Asker(int(user.id), DISCORD_ID)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`sonance …` as the operator runs it (a sync helper: a subprocess call blocks)."""
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


async def test_too_large_for_discord_names_the_operator_command_which_writes_the_export(
        services: Services, tmp_path: Path) -> None:
    asker = await member(services)
    with pytest.raises(SonanceError) as refused:
        await services.accounts.export(asker, max_bytes=512)
    command = f"sonance export --discord-id {DISCORD_ID}"
    assert command in refused.value.user_message

    out = tmp_path / "big.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DATABASE_URL", "REDIS_URL"))}
    env.update({"DATABASE_URL": services.settings.database_url, "SONANCE_SECRET_KEY": TEST_SECRET,
                "SONANCE_DATA_DIR": str(services.settings.data_dir)})
    done = cli(env, *command.split()[1:], "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in " ".join(done.stdout.split()) and "listens 50" in done.stdout
    document = json.loads(out.read_text())
    assert document["discord_id"] == str(DISCORD_ID) and len(document["tables"]["listens"]) == 50
    assert "SESSION-KEY-SECRET" not in out.read_text()  # secrets are redacted, as in /export
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    unknown = cli(env, "export", "--discord-id", "42")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert "stores nothing about Discord user 42" in unknown.stderr
