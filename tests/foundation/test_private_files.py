"""The database, its WAL companions, the data folder and model artifacts are private to the owner,
whatever the umask, and files left world-readable by an older version are tightened at start."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from core.config import Settings
from core.db.engine import create_engine
from core.recommender.artifacts import ArtifactWriter
from core.services import build_services


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o002)  # the loosest umask in common use: files would be 0664, folders 0775
    yield
    os.umask(old)


async def test_sqlite_database_and_wal_files_are_created_0600(tmp_path: Path, open_umask: None) -> None:
    database = tmp_path / "sonance.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.begin() as conn:  # a write transaction: SQLite creates -wal and -shm
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            wal, shm = Path(f"{database}-wal"), Path(f"{database}-shm")
            assert (mode(database), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
    finally:
        await engine.dispose()


async def test_world_readable_database_and_data_dir_are_tightened_at_start(tmp_path: Path) -> None:
    database, data = tmp_path / "old.db", tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
    await engine.dispose()
    os.chmod(database, 0o644)
    settings = Settings(_env_file=None, DATABASE_URL=f"sqlite:///{database}",  # type: ignore[arg-type]
                        SONANCE_DATA_DIR=str(data))
    services = await build_services(settings)
    await services.close()
    assert mode(database) == 0o600
    assert mode(data) == 0o700


def test_model_artifacts_are_private(tmp_path: Path, open_umask: None) -> None:
    writer = ArtifactWriter()
    writer.put("x", np.arange(3))
    target = tmp_path / "data" / "models" / "recommender" / "hybrid"
    writer.save(target)
    for folder in (tmp_path / "data", tmp_path / "data" / "models", target.parent, target):
        assert mode(folder) == 0o700, folder
    assert {mode(p) for p in target.iterdir()} == {0o600}
