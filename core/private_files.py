"""Files only the bot's user may read: the SQLite database (+ its -wal/-shm/-journal), the data
directory and model artifacts.

Why: the database holds encrypted tokens, listening histories and Discord ids; a 0644 file on a
shared host hands all of it to every local user. Modes are set AT CREATION (a file created 0600 is
never readable by others, whatever the umask; a chmod afterwards would leave a window), and an
existing file or folder that others can read is tightened when the process starts.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def tighten(path: Path) -> None:
    """Remove group and other permissions from `path` if it exists (owner bits are kept)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & ~0o077)
    except FileNotFoundError:
        return


def private_dir(path: Path) -> Path:
    """`mkdir -p` where every folder it creates is 0700; an existing `path` is tightened."""
    path = Path(path)
    for folder in reversed([path, *path.parents]):
        if not folder.exists():
            try:
                folder.mkdir(mode=PRIVATE_DIR)
            except FileExistsError:  # created by someone else meanwhile
                pass
    tighten(path)
    return path


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist (no window with a wider mode)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
    except FileExistsError:
        pass


def private_sqlite(database: Path) -> None:
    """Before SQLite opens `database`: create it 0600 so that SQLite, which gives its -wal, -shm and
    -journal files the database file's permissions, creates those private too; tighten what exists."""
    if database.parent.is_dir():
        private_file(database)
    for path in (database, *(database.with_name(database.name + s) for s in SQLITE_COMPANIONS)):
        tighten(path)
