"""Hostile or odd import files end as ONE `ImportFileError` line naming the file and the position,
with control characters escaped, nothing written, bounded memory and a non-zero CLI exit.

`SHAPES` is the catalogue of hostile file shapes; every one is run through the importer API (fast,
with a small line cap) and a representative set through the real `sonance import` CLI.
"""

from __future__ import annotations

import codecs
import json
import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db.models import Album, Artist, Base, Listen, Track
from core.db.repositories import UserRepository
from core.errors import ImportFileError
from core.import_files import iter_json_array
from core.services import Services
from core.sync.imports import import_listen_file, import_listens_tsv, read_lastfm_csv, read_spotify_history
from tests.foundation.test_cli_and_web import sonance

TSV_HEAD = "user\tartist\ttrack\talbum\tplayed_at\n"
GOOD_TSV = TSV_HEAD + "".join(f"ana\tA{i}\tT{i}\t\t2026-01-01T00:{i:02d}:00Z\n" for i in range(5))
GOOD_CSV = "".join(f"Band {i},Album,Song {i},31 Jan 2021 14:{i:02d}\n" for i in range(5))
SMALL_CAP = 64 * 1024  # the importer-level cap; the CLI runs with the default (1 MiB)
BIG_LINE = 3 * 1024 * 1024  # "a 200 MB line", scaled down: larger than both caps


def stream(i: int, **fields: object) -> dict[str, object]:
    entry: dict[str, object] = {"ts": f"2025-03-01T10:{i:02d}:00Z", "ms_played": 200_000,
                                "master_metadata_track_name": f"Song {i}",
                                "master_metadata_album_artist_name": "Band",
                                "master_metadata_album_album_name": "Album",
                                "spotify_track_uri": f"spotify:track:abc{i}"}
    entry.update(fields)
    return entry


def good_json(*extra: dict[str, object]) -> bytes:
    return json.dumps([stream(i) for i in range(3)] + list(extra)).encode()


Writer = Callable[[Path], Path]


def file(name: str, content: bytes | str) -> Writer:
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path
    return write


def device(path: str) -> Writer:
    return lambda _folder: Path(path)


#: (id, importer kind, file, what the one error line must say)
SHAPES: list[tuple[str, str, Writer, str]] = [
    ("csv-huge-line", "lastfm-csv", file("big.csv", GOOD_CSV + "A," + "x" * BIG_LINE + ",T,31 Jan 2021 14:05\n"),
     r"line 6: line is longer than"),
    ("tsv-huge-line", "listens", file("big.tsv", GOOD_TSV + "ana\t" + "x" * BIG_LINE + "\tT\t\t1700000000\n"),
     r"line 7: line is longer than"),
    ("json-huge-value", "spotify-json", file("big.json", good_json()[:-1] + b', {"ts": "' + b"9" * BIG_LINE + b'"}]'),
     r"entry 4, near byte [\d,]+: a single value is longer than"),
    ("csv-latin1", "lastfm-csv", file("l1.csv", (GOOD_CSV + "Björk,Homogenic,Jóga,31 Jan 2021 14:05\n").encode("latin-1")),
     r"line 6: not UTF-8 text \(invalid byte at byte [\d,]+\)"),
    ("tsv-latin1", "listens", file("l1.tsv", (GOOD_TSV + "ana\tBjörk\tJóga\t\t1700000000\n").encode("latin-1")),
     r"line 7: not UTF-8 text"),
    ("json-latin1", "spotify-json", file("l1.json", json.dumps([stream(0, master_metadata_track_name="Jóga")],
                                                               ensure_ascii=False).encode("latin-1")),
     r"near byte [\d,]+: not UTF-8 text"),
    ("csv-utf16", "lastfm-csv", file("u16.csv", codecs.BOM_UTF16_LE + GOOD_CSV.encode("utf-16-le")),
     r"byte 0: is UTF-16 text"),
    ("json-utf16", "spotify-json", file("u16.json", codecs.BOM_UTF16_LE + good_json().decode().encode("utf-16-le")),
     r"byte 0: is UTF-16 text"),
    ("json-deep-100k", "spotify-json", file("deep.json", b"[" * 100_000 + b"]" * 100_000),
     r"entry 1, near byte [\d,]+: nested deeper than"),
    ("json-deep-in-field", "spotify-json",
     file("deepf.json", good_json()[:-1] + b', {"ts": "2025-03-01T10:00:00Z", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]"),
     r"entry 4, near byte [\d,]+: nested deeper than"),
    ("json-album-object", "spotify-json",
     file("album.json", good_json(stream(9, master_metadata_album_album_name={"name": {"deep": ["x"]}}))),
     r"entry 4: 'master_metadata_album_album_name' must be text or null, found an object"),
    ("json-track-dict", "spotify-json", file("track.json", good_json(stream(9, master_metadata_track_name={"a": 1}))),
     r"entry 4: 'master_metadata_track_name' must be text or null, found an object"),
    ("json-artist-number", "spotify-json",
     file("artist.json", good_json(stream(9, master_metadata_album_artist_name=12))),
     r"entry 4: 'master_metadata_album_artist_name' must be text or null, found a number"),
    ("json-uri-list", "spotify-json", file("uri.json", good_json(stream(9, spotify_track_uri=[1]))),
     r"entry 4: 'spotify_track_uri' must be text or null, found a list"),
    ("json-ts-number", "spotify-json", file("ts.json", good_json(stream(9, ts=1700000000))),
     r"entry 4: not a stream object with a 'ts' text field"),
    ("json-not-a-list", "spotify-json", file("obj.json", b'{"ts": "2025-03-01T10:00:00Z"}'),
     r"near byte [\d,]+: expected a JSON list"),
    ("json-truncated", "spotify-json", file("cut.json", good_json()[:-20]), r"entry 3, near byte [\d,]+: not valid JSON"),
    ("json-nan", "spotify-json", file("nan.json", good_json()[:-1] + b', {"ts": "2025-03-01T10:00:00Z", "ms_played": NaN}]'),
     r"entry 4, near byte [\d,]+: not valid JSON"),
    ("json-trailing-garbage", "spotify-json", file("trail.json", good_json() + b"\x1b]0;pwned\x07"),
     r"entry 3, near byte [\d,]+: not valid JSON"),
    ("json-empty", "spotify-json", file("empty.json", b""), r"near byte 0: not valid JSON"),
    ("json-random-bytes", "spotify-json", file("rand.json", bytes(range(256)) * 4), r"near byte [\d,]+: not valid JSON"),
    ("csv-markup-in-date", "lastfm-csv", file("markup.csv", GOOD_CSV + "Band,Album,Song,[/x][bold]oops\n"),
     r"line 6: unreadable time '\[/x\]\[bold\]oops'"),
    ("csv-escape-sequences", "lastfm-csv", file("esc.csv", GOOD_CSV + "Band,Album\n\x1b]0;pwned\x07\x1b[2J,x\n"),
     r"line 6: expected artist,album,track,date; found 2 fields"),
    ("tsv-escape-header", "listens", file("esc.tsv", "\x1b]0;pwned\x07user\tartist\x1b[31m\ttrack\n"),
     r"line 1: expected columns user artist track album played_at, found \\x1b\]0;pwned\\x07user"),
    ("csv-quoted-field-over-many-lines", "lastfm-csv", file("field.csv", GOOD_CSV + '"' + ("y" * 999 + "\n") * 200 + '",A,T,1700000000\n'),
     r"line 6: not a valid CSV line"),
    ("csv-unclosed-quote", "lastfm-csv", file("quote.csv", GOOD_CSV + '"Band,Album,Song,31 Jan 2021 14:05\n' * 3),
     r"line \d+: (expected artist|not a valid CSV)"),
    ("tsv-dev-zero", "listens", device("/dev/zero"), r"line 1: line is longer than"),
    ("csv-dev-zero", "lastfm-csv", device("/dev/zero"), r"line 1: line is longer than"),
    ("json-dev-zero", "spotify-json", device("/dev/zero"), r"near byte [\d,]+: not valid JSON"),
    ("json-endless-whitespace", "spotify-json", file("ws.json", b"[" + b" " * BIG_LINE + b"]"),
     r"near byte [\d,]+: a single value is longer than"),
]
SHAPE_IDS = [s[0] for s in SHAPES]
CLI_SHAPES = ["csv-huge-line", "tsv-dev-zero", "csv-latin1", "json-deep-100k", "json-album-object",
              "json-track-dict", "csv-markup-in-date", "csv-escape-sequences"]
CLI_COMMAND = {"listens": ("listens",), "lastfm-csv": ("lastfm-csv", "--discord-id", "7"),
               "spotify-json": ("spotify-history", "--discord-id", "7")}


async def row_counts(services: Services) -> dict[str, int]:
    async with services.engine.connect() as conn:
        return {t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
                for t in Base.metadata.sorted_tables}


async def run_import(services: Services, path: Path, kind: str, **limits: int) -> None:
    async with services.session() as session:
        if kind == "listens":
            await import_listens_tsv(session, path, **limits)
        else:
            user = await UserRepository(session).get_or_create_discord(7)
            await import_listen_file(session, path, kind, user_id=user.id, **limits)


def assert_one_clean_line(message: str, path: Path, needle: str) -> None:
    assert message.startswith(f"{path}, "), message
    assert re.search(needle, message), (needle, message)
    assert "\n" not in message and "\r" not in message
    assert not re.search("[\x00-\x1f\x7f-\x9f]", message), repr(message)


@pytest.mark.parametrize(("name", "kind", "write", "needle"), SHAPES, ids=SHAPE_IDS)
async def test_hostile_file_is_refused_with_one_line_and_nothing_written(
        services: Services, tmp_path: Path, name: str, kind: str, write: Writer, needle: str) -> None:
    path = write(tmp_path)
    async with services.session() as session:
        await UserRepository(session).get_or_create_discord(7)
    before = await row_counts(services)
    limits = {"max_line_bytes": SMALL_CAP} if kind != "spotify-json" else {}
    with pytest.raises(ImportFileError) as info:
        await run_import(services, path, kind, **limits)
    assert_one_clean_line(info.value.user_message, path, needle)
    assert info.value.position, "the error names a position in the file"
    assert await row_counts(services) == before, "a refused import left rows behind"


@pytest.mark.parametrize("shape", CLI_SHAPES)
def test_cli_prints_one_error_line_and_exits_non_zero(database_url: str, tmp_path: Path, shape: str) -> None:
    _, kind, write, needle = SHAPES[SHAPE_IDS.index(shape)]
    path = write(tmp_path)
    result = sonance("import", *CLI_COMMAND[kind], str(path), env={"DATABASE_URL": database_url}, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert_one_clean_line(errors[0].removeprefix("error: "), path, needle)
    assert "\x1b]" not in result.stderr and "\x07" not in result.stderr, "no raw OSC sequence from the file"


def peak_bytes(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        try:
            work()
        except ImportFileError:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_readers_are_bounded_in_memory(tmp_path: Path) -> None:
    huge_line = file("big.csv", "A," + "x" * BIG_LINE + ",T,31 Jan 2021 14:05\n")(tmp_path)
    assert peak_bytes(lambda: list(read_lastfm_csv(huge_line, max_line_bytes=SMALL_CAP))) < 1_000_000
    assert peak_bytes(lambda: list(read_lastfm_csv(Path("/dev/zero"), max_line_bytes=SMALL_CAP))) < 1_000_000
    # a streaming history is read one entry at a time: ~11 MB of JSON, well under 2 MB of Python objects
    entries = 20_000
    history = tmp_path / "Streaming_History_Audio_2025.json"
    history.write_bytes(json.dumps([stream(i % 60, ip_addr="10.0.0.1", platform="android" * 40)
                                    for i in range(entries)]).encode())
    assert history.stat().st_size > 10_000_000
    count = 0

    def read_all() -> None:
        nonlocal count
        count = sum(1 for _ in read_spotify_history(history))

    assert peak_bytes(read_all) < 2_000_000
    assert count == entries


def test_json_stream_reports_entries_in_order(tmp_path: Path) -> None:
    path = file("h.json", b"\xef\xbb\xbf" + good_json())(tmp_path)  # a UTF-8 BOM is fine
    assert [i for i, _ in iter_json_array(path)] == [1, 2, 3]


# --- hostile NAMES are not hostile files: cleaned at ingest, through the real CLI, on both engines --

NAMES = [("Nul\x00l Band", "Al\x00bum", "Tr\x00ack"), ("\x1b[31mRed\x1b[0m", "Alb\x7f", "So\x9bng"),
         ("Beyonce\u0301 🎵", "  spaced  ", "vt\x0bhere"), ("Ω" * 400, "A" * 700, "T" * 700),
         ("\x00", "Skipped", "No artist left"), ("Good", "Good", "Good")]
CLEANED = {("Null Band", "Album", "Track"), ("[31mRed[0m", "Alb", "Song"),
           ("Beyonce\u0301 🎵", "spaced", "vt here"), ("Ω" * 300, "A" * 500, "T" * 500), ("Good", "Good", "Good")}


def name_files(folder: Path) -> dict[str, Path]:
    csv_lines = "".join(f'"{a}","{al}","{t}",31 Jan 2021 14:{i:02d}\n' for i, (a, al, t) in enumerate(NAMES))
    tsv_lines = TSV_HEAD + "".join(f"ana\t{a}\t{t}\t{al}\t2021-01-31T15:{i:02d}:00Z\n"
                                   for i, (a, al, t) in enumerate(NAMES))
    json_doc = json.dumps([stream(i, master_metadata_album_artist_name=a, master_metadata_album_album_name=al,
                                  master_metadata_track_name=t, ts=f"2021-01-31T16:{i:02d}:00Z")
                           for i, (a, al, t) in enumerate(NAMES)])
    paths = {"lastfm-csv": folder / "n.csv", "listens": folder / "n.tsv", "spotify-history": folder / "n.json"}
    paths["lastfm-csv"].write_text(csv_lines, encoding="utf-8")
    paths["listens"].write_text(tsv_lines, encoding="utf-8")
    paths["spotify-history"].write_text(json_doc, encoding="utf-8")
    return paths


async def test_cli_imports_store_cleaned_names_and_count_skipped_rows(
        services: Services, database_url: str, tmp_path: Path) -> None:
    for command, path in name_files(tmp_path).items():
        extra = () if command == "listens" else ("--discord-id", "8")
        result = sonance("import", command, str(path), *extra, env={"DATABASE_URL": database_url}, cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr[-3000:])
        assert re.search(r"listens skipped\s.*\b1\b", result.stdout), (command, result.stdout)
        assert re.search(r"listens new\s.*\b5\b", result.stdout), (command, result.stdout)
    async with services.session() as s:
        stored = {tuple(r) for r in (await s.execute(
            select(Artist.name, Album.title, Track.title).select_from(Listen)
            .join(Track, Track.id == Listen.track_id).join(Artist, Artist.id == Track.artist_id)
            .outerjoin(Album, Album.id == Track.album_id))).all()}
        listens = (await s.execute(select(func.count()).select_from(Listen))).scalar_one()
    assert stored == CLEANED
    assert listens == 3 * len(CLEANED)
