"""Locating and reading the HetRec 2011 Last.fm dataset.

The dataset is never copied into the project: it is read from a folder (``--path``,
``SONANCE_DATASET_DIR``, or ``../shared/data/hetrec2011-lastfm-2k`` beside the project) or downloaded
from GroupLens and verified by its SHA-256. The readers stream rows and fail with the file and line
of the first malformed row, because a half-understood dataset silently ruins every metric.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import ConfigError, ImportFileError
from core.import_files import MAX_LINE_BYTES, read_lines
from core.private_files import private_dir

HETREC_URL = "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip"
HETREC_SHA256 = "6738f48195667ff03caaab4d32ca9a3133d8cc026b7c3cdaf6ce1010e913c59c"
HETREC_DIRNAME = "hetrec2011-lastfm-2k"
HETREC_FILES = ("user_artists.dat", "artists.dat", "tags.dat", "user_taggedartists.dat", "user_friends.dat")
# tags.dat is Latin-1; the others are UTF-8 (artists.dat) or plain ASCII digits.
_ENCODINGS = {"tags.dat": "latin-1"}

if TYPE_CHECKING:
    from core.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_dataset_dir() -> Path:
    """Where the shared copy lives on development and CI machines."""
    return PROJECT_ROOT.parent / "shared" / "data" / HETREC_DIRNAME


def find_hetrec_dir(path: Path | str | None = None, *, configured: Path | str | None = None,
                    downloads: Path | str | None = None) -> Path | None:
    """The folder holding ``user_artists.dat`` (directly or in a ``hetrec2011-lastfm-2k`` folder).

    An explicit `path` is the only place looked at: a mistyped --path or --data-dir must be an
    error, never a silent run on another copy. Otherwise: the configured folder (`configured`, else
    $SONANCE_DATASET_DIR), then `downloads`, where an earlier download was unpacked (so it is not
    fetched again), then the shared copy beside the project (development and CI machines).
    """
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    else:
        chosen = configured or os.environ.get("SONANCE_DATASET_DIR")
        if chosen:
            candidates.append(Path(chosen))
        if downloads is not None:
            candidates.append(Path(downloads))
        candidates.append(default_dataset_dir())
    for candidate in candidates:
        if (candidate / "user_artists.dat").is_file():
            return candidate
        if (candidate / HETREC_DIRNAME / "user_artists.dat").is_file():
            return candidate / HETREC_DIRNAME
    return None


def downloads_dir(settings: Settings) -> Path:
    """Where the CLI unpacks a downloaded HetRec archive (under SONANCE_DATA_DIR)."""
    return settings.data_dir / "datasets"


def fetch_hetrec(settings: Settings) -> Path:
    """Download SONANCE_BASE_DATASET_URL (checksum-verified) into `downloads_dir`, where
    `locate_hetrec` and the base corpus find it again; returns the unpacked folder. Needs the internet.

    Unpacked into a scratch folder, then moved into place in one rename: the copy later runs reuse
    without downloading is never a half-unpacked one (a kill, a full disk or a bad archive midway
    would otherwise leave a folder that passes for complete and fails every import after it).
    """
    datasets = downloads_dir(settings)
    final = datasets / HETREC_DIRNAME
    for stale in datasets.glob(".download-*"):  # a killed download's scratch
        shutil.rmtree(stale, ignore_errors=True)
    scratch = private_dir(datasets / f".download-{uuid.uuid4().hex[:8]}")
    try:
        unpacked = download_hetrec(scratch, settings.base_dataset_url, expected_sha256=settings.base_dataset_sha256)
        if final.exists():  # a half copy left by an older version: no user_artists.dat, or we'd not be here
            shutil.rmtree(final)
        unpacked.rename(final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final


def locate_hetrec(settings: Settings, path: Path | str | None = None) -> Path | None:
    """`find_hetrec_dir` with the settings' SONANCE_DATASET_DIR (so a value in .env counts, not only
    an exported variable) and the CLI's download folder."""
    return find_hetrec_dir(path, configured=settings.dataset_dir, downloads=downloads_dir(settings))


def verify_sha256(data: bytes, expected: str = HETREC_SHA256) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected.strip().lower():  # as sha256sum or PowerShell's Get-FileHash print it
        raise ImportFileError("hetrec2011-lastfm-2k.zip", None,
                              f"checksum mismatch (expected {expected}, got {digest}); not importing")


def download_hetrec(dest: Path, url: str = HETREC_URL, timeout: float = 60.0,
                    expected_sha256: str = HETREC_SHA256) -> Path:
    """Download and verify the public archive, then unpack it under ``dest``. Needs the internet.

    `url` / `expected_sha256` are overridable for mirrors (and local test servers); nothing is
    unpacked unless the bytes match the checksum."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except OSError as exc:
        raise ConfigError(
            f"Could not download the HetRec dataset from {url} ({exc}). "
            "Pass --path DIR or set SONANCE_DATASET_DIR to a folder with its files."
        ) from None
    verify_sha256(data, expected_sha256)
    target = private_dir(dest / HETREC_DIRNAME)  # usually under SONANCE_DATA_DIR, which stays 0700
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.namelist():
            name = Path(member).name
            if name.endswith(".dat") or name == "readme.txt":
                (target / name).write_bytes(archive.read(member))
    return target


def iter_rows(path: Path, columns: tuple[str, ...], *,
              max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of a tab-separated file with a header, CRLF-tolerant.

    The header must start with the expected columns; every row must have at least as many fields.
    Lines are bounded and decoding is strict (`core.import_files.read_lines`).
    """
    lines = read_lines(path, encoding=_ENCODINGS.get(path.name, "utf-8"), max_line_bytes=max_line_bytes)
    first = next(lines, None)
    header = first[1].rstrip("\r\n").split("\t") if first else []
    if [h.strip() for h in header[: len(columns)]] != list(columns):
        raise ImportFileError(path, 1, f"expected columns {' '.join(columns)}, found {' '.join(header)[:200]}")
    for lineno, line in lines:
        line = line.rstrip("\r\n")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) < len(columns):
            raise ImportFileError(path, lineno, f"expected {len(columns)} tab-separated fields, found {len(fields)}")
        yield lineno, fields


def _int(path: Path, lineno: int, value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ImportFileError(path, lineno, f"{what} is not a whole number: {value[:40]!r}") from None


@dataclass(frozen=True)
class UserArtistTable:
    """Plays as parallel arrays: external user id, external artist id, play count."""

    users: np.ndarray
    artists: np.ndarray
    weights: np.ndarray


def read_user_artists(path: Path) -> UserArtistTable:
    """Read a file with HetRec's ``userID artistID weight`` columns (train/test files use it too)."""
    users: list[int] = []
    artists: list[int] = []
    weights: list[float] = []
    for lineno, (u, a, w) in ((n, f[:3]) for n, f in iter_rows(path, ("userID", "artistID", "weight"))):
        users.append(_int(path, lineno, u, "userID"))
        artists.append(_int(path, lineno, a, "artistID"))
        try:
            weight = float(w)
        except ValueError:
            raise ImportFileError(path, lineno, f"weight is not a number: {w[:40]!r}") from None
        if weight < 0 or weight != weight:
            raise ImportFileError(path, lineno, f"weight must be a non-negative number, found {w!r}")
        weights.append(weight)
    return UserArtistTable(np.asarray(users, dtype=np.int64), np.asarray(artists, dtype=np.int64),
                           np.asarray(weights, dtype=np.float64))


def read_artist_tag_counts(path: Path) -> dict[int, dict[int, int]]:
    """Artist -> {tag id: number of times applied}, from ``user_taggedartists.dat``.

    The user column is ignored on purpose: in production Sonance only knows an artist's tags.
    """
    counts: dict[int, dict[int, int]] = {}
    for lineno, fields in iter_rows(path, ("userID", "artistID", "tagID")):
        artist = _int(path, lineno, fields[1], "artistID")
        tag = _int(path, lineno, fields[2], "tagID")
        bucket = counts.setdefault(artist, {})
        bucket[tag] = bucket.get(tag, 0) + 1
    return counts


def read_tag_names(path: Path) -> dict[int, str]:
    return {_int(path, n, f[0], "tagID"): f[1] for n, f in iter_rows(path, ("tagID", "tagValue"))}


def read_artist_names(path: Path) -> dict[int, tuple[str, str]]:
    """Artist id -> (name, Last.fm URL)."""
    return {_int(path, n, f[0], "id"): (f[1], f[2]) for n, f in iter_rows(path, ("id", "name", "url"))}


def read_friend_pairs(path: Path) -> set[tuple[int, int]]:
    """Undirected friend edges as ``(low id, high id)`` pairs."""
    pairs: set[tuple[int, int]] = set()
    for lineno, fields in iter_rows(path, ("userID", "friendID")):
        a = _int(path, lineno, fields[0], "userID")
        b = _int(path, lineno, fields[1], "friendID")
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    return pairs
