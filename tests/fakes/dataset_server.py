"""A small HetRec-format dataset, and a local server handing it out as GroupLens does (a zip).

Why: the base-corpus import must be tested through its real path (download, checksum, unpack,
import) without the internet, including a download that hangs while the bot keeps answering, and
one that fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from pathlib import Path

from aiohttp import web

from tests.fakes.local_server import LocalServer

HETREC_DIRNAME = "hetrec2011-lastfm-2k"


def write_hetrec(folder: Path, *, users: int = 40, artists: int = 30, first_artist: str = "Base Artist") -> Path:
    """HetRec's five files (same headers, tab-separated) with `users` x a few artists each."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{first_artist} {a}" for a in range(artists)]
    names[0] = "Radiohead"  # one artist members play too: base listeners must never show up for it
    (folder / "artists.dat").write_text(
        "id\tname\turl\tpictureURL\n" + "".join(
            f"{a + 1}\t{n}\thttp://www.last.fm/music/{n.replace(' ', '+')}\t\n" for a, n in enumerate(names)),
        encoding="utf-8")
    rows = [(u + 2, (u * 7 + k * 3) % artists + 1, 50 + (u * 31 + k * 17) % 900) for u in range(users) for k in range(6)]
    rows = list({(u, a): (u, a, w) for u, a, w in rows}.values())
    (folder / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n" + "".join(f"{u}\t{a}\t{w}\n" for u, a, w in rows), encoding="utf-8")
    (folder / "tags.dat").write_text("tagID\ttagValue\n1\trock\n2\tambient\n", encoding="latin-1")
    (folder / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\n" + "".join(
            f"{u}\t{a}\t{1 + a % 2}\t1\t1\t2010\n" for u, a, _ in rows[:50]), encoding="utf-8")
    (folder / "user_friends.dat").write_text(
        "userID\tfriendID\n" + "".join(f"{u + 2}\t{u + 3}\n" for u in range(users - 1)), encoding="utf-8")
    return folder


def zip_folder(folder: Path) -> bytes:
    """The archive layout GroupLens uses: the files under one folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"{HETREC_DIRNAME}/{path.name}")
    return buffer.getvalue()


class DatasetServer(LocalServer):
    """Serves `payload` at /hetrec.zip; `hold` (when set) keeps the answer back until released,
    `status` other than 200 answers with that error instead."""

    def __init__(self, payload: bytes, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.payload = payload
        self.host, self.port = host, port
        self.status = 200
        self.hold: asyncio.Event | None = None
        self.requests = 0
        self.started = asyncio.Event()  # a download has begun
        self._runner = None

    @property
    def url(self) -> str:
        return f"{self.base_url}/hetrec.zip"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/hetrec.zip", self._zip)
        return app

    async def _zip(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.started.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.status != 200:
            return web.Response(status=self.status, text="Not Found")
        return web.Response(body=self.payload, content_type="application/zip")
