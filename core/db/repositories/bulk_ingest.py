"""PostgreSQL fast path for listen ingestion: COPY into a staging table, then set-based SQL.

Why: resolving a 5,000-play batch row by row costs a dozen round trips and per-row conflict
checks; `COPY` moves the batch in one stream and five INSERT … SELECT statements resolve artists,
albums and tracks, insert the new listens and bump `artist_plays` from exactly the rows inserted
(`RETURNING`), so the result is identical to the portable path in `ingest_listens`, only faster.
The staging table is a temporary table emptied at commit, private to the connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

STAGE = "sonance_ingest_stage"
STAGE_COLUMNS = ("artist_key", "artist_name", "artist_mbid", "album_key", "album_title", "album_mbid",
                 "track_key", "track_title", "track_mbid", "track_url", "spotify_id", "played_at", "source")

_CREATE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE} (
  artist_key text NOT NULL, artist_name text NOT NULL, artist_mbid text,
  album_key text, album_title text, album_mbid text,
  track_key text NOT NULL, track_title text NOT NULL, track_mbid text, track_url text, spotify_id text,
  played_at timestamptz NOT NULL, source text NOT NULL
) ON COMMIT DELETE ROWS
"""

_ARTISTS = f"""
INSERT INTO artists (name_key, name, mbid)
SELECT DISTINCT ON (artist_key) artist_key, artist_name, artist_mbid FROM {STAGE}
ON CONFLICT (name_key) DO NOTHING
"""

_ALBUMS = f"""
INSERT INTO albums (artist_id, title_key, title, mbid)
SELECT DISTINCT ON (a.id, s.album_key) a.id, s.album_key, s.album_title, s.album_mbid
FROM {STAGE} s JOIN artists a ON a.name_key = s.artist_key
WHERE s.album_key IS NOT NULL
ON CONFLICT (artist_id, title_key) DO NOTHING
"""

_TRACKS = f"""
INSERT INTO tracks (artist_id, title_key, title, album_id, mbid, lastfm_url, spotify_id)
SELECT DISTINCT ON (a.id, s.track_key) a.id, s.track_key, s.track_title, al.id, s.track_mbid, s.track_url,
       s.spotify_id
FROM {STAGE} s JOIN artists a ON a.name_key = s.artist_key
LEFT JOIN albums al ON al.artist_id = a.id AND al.title_key = s.album_key
ON CONFLICT (artist_id, title_key) DO NOTHING
"""

_LISTENS = f"""
WITH fresh AS (
  INSERT INTO listens (user_id, track_id, played_at, source)
  SELECT :user_id, t.id, s.played_at, s.source
  FROM {STAGE} s JOIN artists a ON a.name_key = s.artist_key
  JOIN tracks t ON t.artist_id = a.id AND t.title_key = s.track_key
  ON CONFLICT (user_id, played_at, track_id) DO NOTHING
  RETURNING track_id, played_at
), per_artist AS (
  INSERT INTO artist_plays (user_id, artist_id, plays, last_played_at)
  SELECT :user_id, t.artist_id, count(*), max(f.played_at) FROM fresh f JOIN tracks t ON t.id = f.track_id
  GROUP BY t.artist_id
  ON CONFLICT (user_id, artist_id) DO UPDATE
  SET plays = artist_plays.plays + excluded.plays,
      last_played_at = GREATEST(artist_plays.last_played_at, excluded.last_played_at)
  RETURNING plays
)
SELECT (SELECT count(*) FROM fresh) AS inserted
"""


async def pg_bulk_ingest(session: AsyncSession, user_id: int, rows: Sequence[tuple[Any, ...]]) -> int:
    """Ingest staged rows (tuples in `STAGE_COLUMNS` order, `played_at` aware); returns new listens."""
    if not rows:
        return 0
    connection = await session.connection()
    await connection.execute(text(_CREATE))
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection  # asyncpg.Connection
    assert driver is not None
    await driver.copy_records_to_table(STAGE, records=rows, columns=STAGE_COLUMNS)
    await connection.execute(text(_ARTISTS))
    await connection.execute(text(_ALBUMS))
    await connection.execute(text(_TRACKS))
    inserted = (await connection.execute(text(_LISTENS), {"user_id": user_id})).scalar_one()
    await connection.execute(text(f"DELETE FROM {STAGE}"))  # several batches may share a transaction
    return int(inserted)


def staged_row(artist_key: str, artist: str, artist_mbid: str | None, album_key: str | None, album: str | None,
               album_mbid: str | None, track_key: str, track: str, track_mbid: str | None, url: str | None,
               spotify_id: str | None, played_at: datetime, source: str) -> tuple[Any, ...]:
    return (artist_key, artist, artist_mbid, album_key, album, album_mbid, track_key, track, track_mbid, url,
            spotify_id, played_at, source)
