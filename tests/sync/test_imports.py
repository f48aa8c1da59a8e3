"""Importers: idempotent, all-or-nothing, clear errors naming the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.datasets import find_hetrec_dir, read_user_artists
from core.db.models import ArtistPlays, Listen, User
from core.db.repositories import ListenRepository, UserRepository
from core.errors import ImportFileError
from core.services import Services
from core.sync.imports import import_hetrec, import_listen_file, import_listens_tsv


async def _count(services: Services, model: type) -> int:
    async with services.session() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def test_listens_tsv_is_idempotent_and_matches_names(services: Services, tmp_path: Path) -> None:
    tsv = _write(tmp_path / "l.tsv",
                 "user\tartist\ttrack\talbum\tplayed_at\r\n"
                 "ana\tThe Beatles\tSomething - Remastered 2009\tAbbey Road\t2026-01-01T10:00:00Z\r\n"
                 "ana\tBeatles\tSomething\tAbbey Road (Remastered)\t1767265200\r\n"
                 "bo\tBjörk\tJóga\t\t2026-01-02 09:00:00\r\n")
    for _ in range(2):
        async with services.session() as s:
            report = await import_listens_tsv(s, tsv)
    assert report.counts["rows"] == 3 and report.counts["listens_new"] == 0  # second run adds nothing
    assert await _count(services, Listen) == 3
    async with services.session() as s:
        ana = (await UserRepository(s).by_external_refs(["tsv:ana"]))["tsv:ana"]
        plays = await ListenRepository(s).user_artist_plays(ana)
    assert [p.plays for p in plays] == [2], "both spellings of the Beatles track are one artist"


@pytest.mark.parametrize(("content", "needle"), [
    ("user\tartist\ttrack\talbum\tplayed_at\nana\tA\tT\t\tyesterday\n", "line 2: unreadable time"),
    ("user\tartist\ttrack\talbum\tplayed_at\nana\tA\tT\n", "line 2: expected 5"),
    ("name\tartist\ttrack\n", "line 1: expected columns"),
    ("user\tartist\ttrack\talbum\tplayed_at\nana\t\tT\t\t2026-01-01T00:00:00Z\n", "line 2: user, artist"),
])
async def test_bad_tsv_names_file_and_line_and_imports_nothing(services: Services, tmp_path: Path,
                                                              content: str, needle: str) -> None:
    good = "".join(f"ana\tA{i}\tT\t\t2026-01-01T00:{i % 60:02d}:00Z\n" for i in range(3000))
    header, _, rest = content.partition("\n")
    path = _write(tmp_path / "bad.tsv", f"{header}\n{good}{rest}" if rest else content)
    with pytest.raises(ImportFileError) as info:
        async with services.session() as s:
            await import_listens_tsv(s, path)
    expected_line = needle.split(":")[0]
    if "line 2" in expected_line and rest:
        expected_line = "line 3002"
    assert str(path) in info.value.user_message and expected_line in info.value.user_message
    assert await _count(services, Listen) == 0 and await _count(services, User) == 0


async def test_lastfm_csv_both_layouts(services: Services, tmp_path: Path) -> None:
    plain = _write(tmp_path / "a.csv", 'Radiohead,OK Computer,Airbag,31 Jan 2021 14:05\n'
                                       '"Crosby, Stills & Nash",CSN,Wooden Ships,31 Jan 2021 14:10\n')
    headed = _write(tmp_path / "b.csv", "uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid\n"
                                        "1612101900,x,Radiohead,,OK Computer,,Airbag,\n")
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(42)
        first = await import_listen_file(s, plain, "lastfm-csv", user_id=user.id)
        second = await import_listen_file(s, headed, "lastfm-csv", user_id=user.id)
    assert first.counts["listens_new"] == 2
    assert second.counts["listens_new"] == 0, "same scrobble (same second) from another export"


async def test_spotify_history_skips_podcasts_and_snippets(services: Services, tmp_path: Path) -> None:
    streams = [
        {"ts": "2025-03-01T10:00:00Z", "ms_played": 200000, "master_metadata_track_name": "Jóga",
         "master_metadata_album_artist_name": "Björk", "master_metadata_album_album_name": "Homogenic",
         "spotify_track_uri": "spotify:track:abc123"},
        {"ts": "2025-03-01T10:05:00Z", "ms_played": 4000, "master_metadata_track_name": "Hunter",
         "master_metadata_album_artist_name": "Björk", "master_metadata_album_album_name": "Homogenic"},
        {"ts": "2025-03-01T11:00:00Z", "ms_played": 3600000, "master_metadata_track_name": None,
         "episode_name": "A podcast"},
    ]
    path = _write(tmp_path / "Streaming_History_Audio_2025.json", json.dumps(streams))
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(43)
        report = await import_listen_file(s, path, "spotify-json", user_id=user.id)
    assert report.counts.get("listens_new") == 1
    broken = _write(tmp_path / "broken.json", '[{"ts": "2025-03-01T10:00:00Z",')
    with pytest.raises(ImportFileError, match=r"broken\.json"):
        async with services.session() as s:
            await import_listen_file(s, broken, "spotify-json", user_id=user.id)


HETREC = find_hetrec_dir()


@pytest.mark.slow
@pytest.mark.skipif(HETREC is None, reason="HetRec 2011 dataset not found (set SONANCE_DATASET_DIR)")
async def test_hetrec_import_is_complete_and_idempotent(services: Services) -> None:
    assert HETREC is not None
    for _ in range(2):
        async with services.session() as s:
            report = await import_hetrec(s, HETREC)
    assert report.counts["users"] == 1892
    assert report.counts["artists"] > 17_000
    async with services.session() as s:
        total = (await s.execute(select(func.sum(ArtistPlays.plays)))).scalar_one()
    expected = int(read_user_artists(HETREC / "user_artists.dat").weights.sum())
    assert total == expected, "every play counted once, merged spellings summed"
