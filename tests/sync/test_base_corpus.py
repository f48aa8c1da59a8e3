"""The base corpus: imported into a near-empty database (local path or checksum-verified download),
idempotent, never fatal, and removable by the operator."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.config import Settings
from core.db.models import Artist, ArtistPlays, Lease, User
from core.db.repositories import CatalogRepository, ListenRepository, SchedulingRepository, UserRepository
from core.db.repositories.listens import PlayRow
from core.matching import artist_key
from core.recommender.training import train_from_db
from core.services import Services
from core.sync.base_corpus import LEASE_NAME, drop_base_corpus, import_base_corpus
from tests.conftest import TEST_SECRET, make_settings
from tests.fakes.dataset_server import DatasetServer, write_hetrec, zip_folder

ROOT = Path(__file__).resolve().parents[2]
BASE_USERS = 40


@pytest.fixture
def hetrec_dir(tmp_path: Path) -> Path:
    return write_hetrec(tmp_path / "hetrec-files", users=BASE_USERS)


@pytest.fixture
async def dataset_server(hetrec_dir: Path) -> AsyncIterator[DatasetServer]:
    async with DatasetServer(zip_folder(hetrec_dir)) as server:
        yield server


@pytest.fixture
def base_choice(hetrec_dir: Path) -> dict[str, object]:
    return {"SONANCE_BASE_DATASET": str(hetrec_dir)}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, base_choice: dict[str, object]) -> Settings:
    return make_settings(database_url, tmp_path, **base_choice)


async def counts(services: Services) -> dict[str, int]:
    async with services.session() as s:
        return await UserRepository(s).listener_counts()


async def members(services: Services, n: int) -> list[int]:
    """`n` Discord members with plays of three artists each."""
    async with services.session() as s:
        ids = await CatalogRepository(s).ensure_artists(
            {"name_key": artist_key(a), "name": a} for a in ("Radiohead", "Slowdive", "Ride", "Burial"))
        users = [await UserRepository(s).get_or_create_discord(500 + i, f"member{i}") for i in range(n)]
        await ListenRepository(s).set_artist_plays(
            [PlayRow(u.id, a, 10 + k, None) for k, u in enumerate(users) for a in list(ids.values())[k % 2:k % 2 + 3]])
        return [int(u.id) for u in users]


async def test_local_path_import_is_idempotent(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="core.sync.base_corpus"):
        first = await import_base_corpus(services, retrain=False)
    assert first.status == "imported" and first.counts["users"] == BASE_USERS
    progress = [r.getMessage() for r in caplog.records if "rows read" in r.getMessage()]
    assert len(progress) >= 3  # progress in the log while it imports
    assert (await counts(services)) == {"hetrec": BASE_USERS}
    again = await import_base_corpus(services, retrain=False)
    assert again.status == "skipped" and "already present" in again.reason
    assert (await counts(services)) == {"hetrec": BASE_USERS}


@pytest.mark.parametrize("base_choice", [{"SONANCE_BASE_DATASET": "none"}])
async def test_none_imports_nothing(services: Services) -> None:
    outcome = await import_base_corpus(services, retrain=False)
    assert outcome.status == "skipped" and outcome.reason == "SONANCE_BASE_DATASET=none"
    assert await counts(services) == {}


async def test_a_server_with_enough_listeners_gets_no_base(services: Services, hetrec_dir: Path) -> None:
    await members(services, 3)
    services.settings.base_max_members = 3
    outcome = await import_base_corpus(services, retrain=False)
    assert outcome.status == "skipped" and "not needed" in outcome.reason
    services.settings.base_max_members = 4  # 3 members < 4: near-empty
    assert (await import_base_corpus(services, retrain=False)).status == "imported"


@pytest.fixture
def download_choice(dataset_server: DatasetServer) -> dict[str, object]:
    return {"SONANCE_BASE_DATASET": "hetrec", "SONANCE_BASE_DATASET_URL": dataset_server.url,
            "SONANCE_BASE_DATASET_SHA256": dataset_server.sha256,
            "SONANCE_DATASET_DIR": None}  # CI points this at the real HetRec: the download is under test


@pytest.mark.parametrize("spelling", ["lower", "upper"])
async def test_hetrec_download_is_checksum_verified_then_imported(database_url: str, tmp_path: Path,
                                                                  dataset_server: DatasetServer,
                                                                  download_choice: dict[str, object],
                                                                  spelling: str) -> None:
    from core.services import build_services

    # An operator may paste the checksum as PowerShell's Get-FileHash prints it: upper case.
    choice = {**download_choice, "SONANCE_BASE_DATASET_SHA256": getattr(dataset_server.sha256, spelling)()}
    services = await build_services(make_settings(database_url, tmp_path, **choice), upgrade_schema=False)
    try:
        outcome = await import_base_corpus(services, retrain=False)
        assert outcome.status == "imported" and dataset_server.requests == 1
        assert (tmp_path / "data" / "datasets" / "hetrec2011-lastfm-2k" / "user_artists.dat").is_file()
        await drop_base_corpus(services)  # a later import reuses the downloaded copy
        assert (await import_base_corpus(services, retrain=False)).status == "imported"
        assert dataset_server.requests == 1
    finally:
        await services.close()


@pytest.mark.parametrize("problem", ["checksum", "http_404"])
async def test_a_failed_download_logs_one_line_and_imports_nothing(
        database_url: str, tmp_path: Path, dataset_server: DatasetServer, download_choice: dict[str, object],
        problem: str, caplog: pytest.LogCaptureFixture) -> None:
    from core.services import build_services

    overrides = dict(download_choice)
    if problem == "checksum":
        overrides["SONANCE_BASE_DATASET_SHA256"] = "0" * 64
    else:
        dataset_server.status = 404
    services = await build_services(make_settings(database_url, tmp_path, **overrides), upgrade_schema=False)
    try:
        with caplog.at_level(logging.INFO, logger="core.sync.base_corpus"):
            outcome = await import_base_corpus(services, retrain=False)
        assert outcome.status == "failed"
        warnings = [r for r in caplog.records if r.name == "core.sync.base_corpus" and r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and warnings[0].exc_info is None
        assert ("checksum mismatch" if problem == "checksum" else "Could not download") in warnings[0].getMessage()
        assert await counts(services) == {}
        assert not (tmp_path / "data" / "datasets" / "hetrec2011-lastfm-2k").exists()
    finally:
        await services.close()


async def test_drop_base_keeps_members_and_catalogue_and_training_forgets_it(services: Services) -> None:
    member_ids = await members(services, 3)
    await import_base_corpus(services, retrain=False)
    async with services.session() as s:
        artists_before = (await s.execute(select(func.count()).select_from(Artist))).scalar_one()
    _, with_base = await train_from_db(services, tune=False)
    assert with_base["n_users"] == 3 + BASE_USERS

    deleted = await drop_base_corpus(services)

    assert deleted["users"] == BASE_USERS and deleted["artist_plays"] > 0
    assert await counts(services) == {"members": 3}
    async with services.session() as s:
        assert (await s.execute(select(func.count()).select_from(Artist))).scalar_one() == artists_before
        kept = (await s.execute(select(ArtistPlays.user_id).distinct())).scalars().all()
        assert sorted(kept) == sorted(member_ids)
        assert (await s.execute(select(func.count()).select_from(User))).scalar_one() == 3
    _, without = await train_from_db(services, tune=False)
    assert without["n_users"] == 3


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DATABASE_URL", "REDIS_URL"))}
    env.update({"DATABASE_URL": settings.database_url, "SONANCE_SECRET_KEY": TEST_SECRET,
                "SONANCE_DATA_DIR": str(settings.data_dir), "SONANCE_BASE_MAX_MEMBERS": "3"})
    return subprocess.run([sys.executable, "-m", "bot.cli", "db", "drop-base", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


async def test_drop_base_cli_refuses_on_a_small_server_unless_forced(services: Services) -> None:
    await members(services, 2)
    await import_base_corpus(services, retrain=False)

    refused = _cli(services.settings)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "fewer than SONANCE_BASE_MAX_MEMBERS=3" in refused.stderr
    assert (await counts(services))["hetrec"] == BASE_USERS

    forced = _cli(services.settings, "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"dropped {BASE_USERS} base listeners" in forced.stdout
    assert await counts(services) == {"members": 2}


async def test_a_lease_left_by_a_killed_import_does_not_block_the_next_start(services: Services) -> None:
    """A process killed mid-import rolls its transaction back but leaves its lease row; the next
    start must import once that lease lapses, not give up."""
    async with services.session() as s:  # the killed process's lease, about to lapse
        assert await SchedulingRepository(s).acquire_lease(LEASE_NAME, "killed-process", timedelta(seconds=1))
    outcome = await asyncio.wait_for(import_base_corpus(services, retrain=False), 60)
    assert outcome.status == "imported" and outcome.counts["users"] == BASE_USERS
    assert (await counts(services)) == {"hetrec": BASE_USERS}


async def test_two_starts_at_once_import_once_and_a_crash_would_free_the_lease_within_minutes(
        database_url: str, tmp_path: Path, dataset_server: DatasetServer,
        download_choice: dict[str, object]) -> None:
    from core.services import build_services

    services = await build_services(make_settings(database_url, tmp_path, **download_choice), upgrade_schema=False)
    try:
        dataset_server.hold = asyncio.Event()
        first = asyncio.create_task(import_base_corpus(services, retrain=False))
        await asyncio.wait_for(dataset_server.started.wait(), 10)
        second = asyncio.create_task(import_base_corpus(services, retrain=False))  # e.g. another process
        await asyncio.sleep(0.5)
        assert not second.done()  # it waits for the first rather than giving up on the base corpus
        async with services.session() as s:  # were the importer killed now, its lease would lapse soon
            lease = (await s.execute(select(Lease).where(Lease.name == LEASE_NAME))).scalar_one()
            expires = lease.expires_at if lease.expires_at.tzinfo else lease.expires_at.replace(tzinfo=UTC)
            assert expires - datetime.now(UTC) <= timedelta(minutes=5)
        dataset_server.hold.set()
        assert (await asyncio.wait_for(first, 60)).status == "imported"
        again = await asyncio.wait_for(second, 60)
        assert again.status == "skipped" and "already present" in again.reason
        assert dataset_server.requests == 1 and (await counts(services)) == {"hetrec": BASE_USERS}
    finally:
        await services.close()


async def test_drop_base_during_an_import_waits_for_it_and_then_drops_everything(
        database_url: str, tmp_path: Path, dataset_server: DatasetServer,
        download_choice: dict[str, object]) -> None:
    """An operator who runs `db drop-base` while a start is importing must not get "dropped 0" with
    the import committing 40 base listeners right after: the drop waits for the import's lease."""
    from core.services import build_services

    services = await build_services(make_settings(database_url, tmp_path, **download_choice), upgrade_schema=False)
    try:
        dataset_server.hold = asyncio.Event()
        importing = asyncio.create_task(import_base_corpus(services, retrain=False))
        await asyncio.wait_for(dataset_server.started.wait(), 10)
        dropping = asyncio.create_task(drop_base_corpus(services))
        await asyncio.sleep(0.5)
        assert not dropping.done()  # it waits for the import rather than dropping nothing
        dataset_server.hold.set()
        assert (await asyncio.wait_for(importing, 60)).status == "imported"
        deleted = await asyncio.wait_for(dropping, 60)
        assert deleted["users"] == BASE_USERS
        assert await counts(services) == {}
        async with services.session() as s:  # and the lease is free for the next start
            assert await SchedulingRepository(s).acquire_lease(LEASE_NAME, "next-start", timedelta(minutes=1))
    finally:
        await services.close()


def _with_a_bad_last_member(archive: bytes) -> bytes:
    """The archive with one byte of its last file flipped: it opens, the first files unpack, then
    the last one fails its CRC (as a download cut short in the unpacking leaves things)."""
    import zipfile
    from io import BytesIO

    with zipfile.ZipFile(BytesIO(archive)) as z:
        last = z.infolist()[-1]
    data = bytearray(archive)
    start = last.header_offset + 30 + len(last.filename.encode()) + len(last.extra)
    data[start] ^= 0xFF
    return bytes(data)


async def test_an_unpacking_cut_short_is_downloaded_again_at_the_next_start(
        database_url: str, tmp_path: Path, dataset_server: DatasetServer,
        download_choice: dict[str, object]) -> None:
    from core.services import build_services

    good = dataset_server.payload
    dataset_server.payload = _with_a_bad_last_member(good)
    broken_mirror = {**download_choice, "SONANCE_BASE_DATASET_SHA256": dataset_server.sha256}
    services = await build_services(make_settings(database_url, tmp_path, **broken_mirror), upgrade_schema=False)
    try:
        assert (await import_base_corpus(services, retrain=False)).status == "failed"
        assert await counts(services) == {}
    finally:
        await services.close()

    dataset_server.payload = good  # the next start (a good archive this time) must not reuse the half copy
    services = await build_services(make_settings(database_url, tmp_path, **download_choice), upgrade_schema=False)
    try:
        outcome = await import_base_corpus(services, retrain=False)
        assert outcome.status == "imported", outcome.reason
        assert dataset_server.requests == 2 and (await counts(services)) == {"hetrec": BASE_USERS}
        assert sorted(p.name for p in (tmp_path / "data" / "datasets").iterdir()) == ["hetrec2011-lastfm-2k"]
    finally:
        await services.close()
