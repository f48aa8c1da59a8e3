"""Importers: HetRec 2011, a generic listens TSV, Last.fm scrobble CSV exports, Spotify's extended
streaming history.

Every importer is idempotent (re-importing adds nothing: listens are unique per user, time and
track; aggregated play counts are replaced, not added), streams its input, reports progress through
a callback, and runs in one transaction: a malformed line raises `ImportFileError` naming the file
and the position (line, or JSON entry and byte), and nothing of that import is kept. Reading is
bounded and strict (`core.import_files`); names are cleaned where they enter (`core.sync.ingest`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from core.cleaning import clean_name, clean_token
from core.datasets import (
    iter_rows,
    read_artist_names,
    read_artist_tag_counts,
    read_tag_names,
    read_user_artists,
)
from core.db.repositories import CatalogRepository, ListenRepository, UserRepository
from core.db.repositories.listens import PlayRow
from core.errors import ImportFileError
from core.import_files import MAX_LINE_BYTES, field_text, iter_json_array, read_lines
from core.matching import artist_key
from core.sync.ingest import MAX_NAME, MAX_URL, RawListen, ingest_listens

Progress = Callable[[int], None]
BATCH = 2000
SPOTIFY_MIN_MS = 30_000  # Spotify counts a stream as a play from 30 s
MAX_IMPORT_USER = 190  # "tsv:" + name fits User.external_ref (200)


@dataclass
class ImportReport:
    """Final counts, printed by the CLI."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


def _noop(_: int) -> None:
    return None


# --- HetRec 2011 -------------------------------------------------------------------------------


async def import_hetrec(session: AsyncSession, folder: Path, progress: Progress = _noop) -> ImportReport:
    """Users, artists (with Last.fm URLs), per-user play counts and artist tag counts.

    Artists whose names normalise to the same key (e.g. "Beyoncé" and "Beyonce") become one row and
    their plays are summed. Tag counts keep only the artist column, as the product does.
    """
    report = ImportReport()
    names = read_artist_names(folder / "artists.dat")
    plays = read_user_artists(folder / "user_artists.dat")
    tag_counts = read_artist_tag_counts(folder / "user_taggedartists.dat")
    tag_names = read_tag_names(folder / "tags.dat")
    progress(0)

    catalog = CatalogRepository(session)
    artist_rows = {}
    key_of: dict[int, str] = {}
    for hetrec_id, (name, url) in names.items():
        key = artist_key(name)[:300] or f"hetrec-{hetrec_id}"
        key_of[hetrec_id] = key
        artist_rows.setdefault(key, {"name_key": key, "name": clean_name(name, MAX_NAME) or key,
                                     "lastfm_url": clean_token(url, MAX_URL),
                                     "external_ref": f"hetrec:{hetrec_id}"})
    artist_ids = await catalog.ensure_artists(artist_rows.values())
    report.add("artists", len(artist_ids))
    progress(len(names))

    refs = sorted({f"hetrec:{u}" for u in plays.users.tolist()})
    user_ids = await UserRepository(session).ensure_dataset_users("hetrec", refs)
    report.add("users", len(user_ids))

    summed: dict[tuple[int, int], int] = {}
    for u, a, w in zip(plays.users.tolist(), plays.artists.tolist(), plays.weights.tolist(), strict=True):
        key = key_of.get(a)
        if key is None:
            raise ImportFileError(folder / "user_artists.dat", None, f"artistID {a} is not in artists.dat")
        pair = (user_ids[f"hetrec:{u}"], artist_ids[key])
        summed[pair] = summed.get(pair, 0) + int(w)
    rows = [PlayRow(u, a, n, None) for (u, a), n in summed.items()]
    await ListenRepository(session).set_artist_plays(rows)
    report.add("play_counts", len(rows))
    progress(len(plays.users))

    used_tags = {t for counts in tag_counts.values() for t in counts if t in tag_names}
    tag_ids = await catalog.ensure_tags(tag_names[t] for t in used_tags)
    weights: dict[int, dict[int, float]] = {}
    for hetrec_artist, counts in tag_counts.items():
        key = key_of.get(hetrec_artist)
        if key is None:
            continue  # 390 tagged artist ids are not in artists.dat: a known quirk of the dataset
        bucket = weights.setdefault(artist_ids[key], {})
        for tag, n in counts.items():
            name = tag_names.get(tag)
            if name is None:
                continue
            tag_id = tag_ids.get(name.strip().lower()[:200])
            if tag_id is not None:
                bucket[tag_id] = bucket.get(tag_id, 0.0) + float(n)
    report.add("artist_tags", await catalog.set_item_tags("artist", "hetrec", weights))
    progress(sum(len(c) for c in tag_counts.values()))
    return report


# --- timestamped listens -----------------------------------------------------------------------


def parse_time(value: str, path: Path, line: int, *, unit: str = "line") -> datetime:
    """Unix seconds (or milliseconds) or ISO 8601; naive ISO times are taken as UTC.

    `line` is the position in `unit`s ("line" for text files, "entry" for JSON lists)."""
    text = value.strip()
    where, line_no = f"{unit} {line}", (line if unit == "line" else None)
    try:
        if text.isdigit():
            number = int(text)
            if number > 10_000_000_000:  # milliseconds
                number //= 1000
            moment = datetime.fromtimestamp(number, UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise ImportFileError(path, line_no, f"unreadable time {text[:40]!r} (use ISO 8601 or Unix seconds)",
                              position=where) from None
    if not datetime(2002, 1, 1, tzinfo=UTC) <= moment <= datetime.now(UTC).replace(year=datetime.now(UTC).year + 1):
        raise ImportFileError(path, line_no, f"time {text[:40]!r} is out of range", position=where)
    return moment.astimezone(UTC)


def read_listens_tsv(path: Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[str, RawListen]]:
    """Columns: user, artist, track, album (may be empty), played_at; one header line."""
    for line, fields in iter_rows(path, ("user", "artist", "track", "album", "played_at"),
                                  max_line_bytes=max_line_bytes):
        user, artist, track, album, played = (f.strip() for f in fields[:5])
        user = clean_name(user, MAX_IMPORT_USER) or ""
        if not user or not artist or not track:
            raise ImportFileError(path, line, "user, artist and track must not be empty")
        yield user, RawListen(artist=artist, track=track, album=album or None,
                              played_at=parse_time(played, path, line), source="import", position=line)


_LASTFM_CSV_TIME_FORMATS = ("%d %b %Y %H:%M", "%d %b %Y, %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")


def _lastfm_csv_time(value: str, path: Path, line: int) -> datetime:
    text = value.strip()
    for fmt in _LASTFM_CSV_TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return parse_time(text, path, line)


def _csv_records(path: Path, max_line_bytes: int) -> Iterator[tuple[int, list[str]]]:
    """(first line of the record, fields): bounded lines, strict UTF-8, csv errors with their line."""
    reader = csv.reader(line for _, line in read_lines(path, max_line_bytes=max_line_bytes))
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(path, start, f"not a valid CSV line ({exc}; read up to line {reader.line_num})") \
                from None
        yield start, fields
        start = reader.line_num + 1


def read_lastfm_csv(path: Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[RawListen]:
    """A Last.fm scrobble export: `artist,album,track,date` (no header, the common exporter) or a
    headed file with `uts`/`utc_time`, `artist`, `album`, `track` (+ optional mbid) columns."""
    header: list[str] | None = None
    for line, fields in _csv_records(path, max_line_bytes):
        if not fields or not any(f.strip() for f in fields):
            continue
        lowered = [f.strip().lower() for f in fields]
        if line == 1 and "artist" in lowered and "track" in lowered:
            header = lowered
            continue
        if header is None:
            if len(fields) < 4:
                raise ImportFileError(path, line, f"expected artist,album,track,date; found {len(fields)} fields")
            artist, album, track, date = fields[:4]
            played = _lastfm_csv_time(date, path, line)
            artist_mbid = track_mbid = None
        else:
            row = dict(zip(header, fields, strict=False))
            artist, album, track = row.get("artist", ""), row.get("album", ""), row.get("track", "")
            stamp = row.get("uts") or row.get("utc_time") or row.get("date") or ""
            played = _lastfm_csv_time(stamp, path, line)
            artist_mbid, track_mbid = row.get("artist_mbid") or None, row.get("track_mbid") or None
        if not artist.strip() or not track.strip():
            raise ImportFileError(path, line, "artist and track must not be empty")
        yield RawListen(artist=artist, track=track, album=album or None, played_at=played,
                        source="import", artist_mbid=artist_mbid, track_mbid=track_mbid, position=line)


def read_spotify_history(path: Path) -> Iterator[RawListen]:
    """Spotify's extended streaming history (`Streaming_History_Audio_*.json`): music streams of at
    least 30 s; podcast episodes and skipped snippets are left out.

    Streamed (`iter_json_array`): memory holds one entry, whatever the file size. A name field that
    is not text (an object, a number) refuses the file: Spotify never writes one, so the file is not
    what it claims to be, and storing `str()` of an object would invent a track.
    """
    for index, entry in iter_json_array(path):
        if not isinstance(entry, dict) or not isinstance(entry.get("ts"), str):
            raise ImportFileError(path, None, "not a stream object with a 'ts' text field",
                                  position=f"entry {index}")
        track = field_text(path, index, entry, "master_metadata_track_name")
        artist = field_text(path, index, entry, "master_metadata_album_artist_name")
        album = field_text(path, index, entry, "master_metadata_album_album_name")
        uri = field_text(path, index, entry, "spotify_track_uri") or ""
        if not track or not artist:
            continue  # podcast episode, audiobook or unavailable metadata
        ms = entry.get("ms_played")
        if isinstance(ms, bool) or not isinstance(ms, int | float) or ms < SPOTIFY_MIN_MS:
            continue
        yield RawListen(artist=artist, track=track, album=album,
                        played_at=parse_time(entry["ts"], path, index, unit="entry"), source="spotify",
                        spotify_track_id=uri.rsplit(":", 1)[-1] if uri.startswith("spotify:track:") else None,
                        position=index)


async def _ingest_stream(session: AsyncSession, stream: Iterator[tuple[int, RawListen]], progress: Progress,
                         report: ImportReport) -> None:
    """Batch rows per user and ingest them; all inside the caller's transaction."""
    batches: dict[int, list[RawListen]] = {}
    pending = 0

    async def flush() -> None:
        nonlocal pending
        for user_id, rows in batches.items():
            result = await ingest_listens(session, user_id, rows)
            report.add("listens_new", result.inserted)
            report.add("listens_skipped", result.skipped)
        progress(pending)
        batches.clear()
        pending = 0

    for user_id, raw in stream:
        batches.setdefault(user_id, []).append(raw)
        report.add("rows", 1)
        pending += 1
        if pending >= BATCH:
            await flush()
    await flush()


async def import_listens_tsv(session: AsyncSession, path: Path, progress: Progress = _noop,
                             discord_user_id: int | None = None, *,
                             max_line_bytes: int = MAX_LINE_BYTES) -> ImportReport:
    """Users in the file become import listeners ("tsv:<name>") unless all rows go to one Discord user."""
    report = ImportReport()
    users = UserRepository(session)
    known: dict[str, int] = {}
    fixed = (await users.get_or_create_discord(discord_user_id)).id if discord_user_id else None

    rows: list[tuple[str, RawListen]] = []
    for row in read_listens_tsv(path, max_line_bytes=max_line_bytes):
        rows.append(row)
        if len(rows) >= BATCH:
            await _ingest_stream(session, iter(await _with_users(users, rows, known, fixed)), progress, report)
            rows.clear()
    await _ingest_stream(session, iter(await _with_users(users, rows, known, fixed)), progress, report)
    report.counts["users"] = 1 if fixed else len(known)
    return report


async def _with_users(users: UserRepository, rows: list[tuple[str, RawListen]], known: dict[str, int],
                      fixed: int | None) -> list[tuple[int, RawListen]]:
    if fixed is not None:
        return [(fixed, raw) for _, raw in rows]
    missing = sorted({f"tsv:{name[:190]}" for name, _ in rows} - set(known))
    if missing:
        known.update(await users.ensure_dataset_users("import", missing))
    return [(known[f"tsv:{name[:190]}"], raw) for name, raw in rows]


async def import_listen_file(session: AsyncSession, path: Path, kind: str, *, user_id: int,
                             progress: Progress = _noop, max_line_bytes: int = MAX_LINE_BYTES) -> ImportReport:
    """A single listener's export (`lastfm-csv` or `spotify-json`) into `user_id`'s history."""
    if kind not in ("lastfm-csv", "spotify-json"):
        raise ValueError(f"unknown import kind {kind!r}")
    rows = (read_lastfm_csv(path, max_line_bytes=max_line_bytes) if kind == "lastfm-csv"
            else read_spotify_history(path))
    report = ImportReport()
    await _ingest_stream(session, ((user_id, raw) for raw in rows), progress, report)
    return report
