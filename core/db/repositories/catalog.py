"""Artists, albums, tracks and tags: bulk get-or-create by normalised key.

Sync and imports resolve thousands of names per second, so everything here works on batches: one
INSERT … ON CONFLICT DO NOTHING for the whole batch, then one SELECT for the ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy import delete, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Album, Artist, ArtistPlays, ItemTag, Tag, Track
from core.db.repositories._dialect import chunks, composite_in, upsert_insert

BATCH = 500

#: One step of get-or-create: keys in, (key, id) of the rows it found or inserted out.
_Step = Callable[[list[tuple[Any, ...]]], Awaitable[list[tuple[tuple[Any, ...], int]]]]


def _uniform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """executemany needs every parameter set to name the same columns."""
    columns = {c for row in rows for c in row}
    return [{c: row.get(c) for c in columns} for row in rows]


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _get_or_create(self, model: Any, key_columns: tuple[str, ...],
                             rows: dict[tuple[Any, ...], dict[str, Any]]) -> dict[tuple[Any, ...], int]:
        """Ids for `rows` (keyed by their unique columns), inserting the ones that do not exist.

        Three steps: select what exists, insert only the missing rows with RETURNING, and re-select
        whatever a concurrent writer inserted in between (ON CONFLICT DO NOTHING hides it). How a
        step talks to the database depends on the engine (`_portable_steps`, `_unnest_steps`).
        """
        steps = self._unnest_steps if self.session.get_bind().dialect.name == "postgresql" else self._portable_steps
        lookup, insert = steps(model, key_columns, rows)
        ids = dict(await lookup(list(rows)))
        missing = [k for k in rows if k not in ids]
        if missing:
            ids.update(await insert(missing))
            raced = [k for k in missing if k not in ids]
            if raced:
                ids.update(await lookup(raced))
        return ids

    def _portable_steps(self, model: Any, key_columns: tuple[str, ...],
                        rows: dict[tuple[Any, ...], dict[str, Any]]) -> tuple[_Step, _Step]:
        """Any engine: plain IN lists (both engines answer them from the unique index) and
        executemany inserts, in batches of `BATCH`."""
        columns = [getattr(model, c) for c in key_columns]

        async def lookup(keys: list[tuple[Any, ...]]) -> list[tuple[tuple[Any, ...], int]]:
            found = []
            for batch in chunks(keys, BATCH):
                stmt = select(*columns, model.id).where(composite_in(self.session, columns, batch))
                wanted = set(batch)
                found += [(tuple(key), row_id) for *key, row_id in (await self.session.execute(stmt)).all()
                          if tuple(key) in wanted]
            return found

        async def insert(keys: list[tuple[Any, ...]]) -> list[tuple[tuple[Any, ...], int]]:
            stmt = (upsert_insert(self.session, model).on_conflict_do_nothing(index_elements=list(key_columns))
                    .returning(*columns, model.id))
            found = []
            for batch in chunks(keys, BATCH):
                result = await self.session.execute(stmt, _uniform([rows[k] for k in batch]))
                found += [(tuple(key), row_id) for *key, row_id in result.all()]
            return found

        return lookup, insert

    def _unnest_steps(self, model: Any, key_columns: tuple[str, ...],
                      rows: dict[tuple[Any, ...], dict[str, Any]]) -> tuple[_Step, _Step]:
        """PostgreSQL: each step ONE statement whatever the batch size.

        Why: the keys travel as one array per column (`unnest`), so there are no IN lists for
        SQLAlchemy to expand and compile per value (measured: that compilation cost more than the
        queries), and the lookups join the unique index row by row, whatever the catalog's size.
        Identifiers come from the model, never from input.
        """
        table = model.__table__
        dialect = self.session.get_bind().dialect

        def arrays(names: list[str], prefix: str) -> str:
            return ", ".join(f"CAST(:{prefix}{i} AS {table.c[n].type.compile(dialect=dialect)}[])"
                             for i, n in enumerate(names))

        keys = ", ".join(key_columns)
        match = " AND ".join(f"t.{c} = k.{c}" for c in key_columns)
        select_sql = text(f"SELECT {', '.join('t.' + c for c in key_columns)}, t.id FROM {table.name} t "
                          f"JOIN unnest({arrays(list(key_columns), 'k')}) AS k({keys}) ON {match}")

        async def lookup(wanted: list[tuple[Any, ...]]) -> list[tuple[tuple[Any, ...], int]]:
            params = {f"k{i}": [k[i] for k in wanted] for i in range(len(key_columns))}
            return [(tuple(key), row_id) for *key, row_id in (await self.session.execute(select_sql, params)).all()]

        async def insert(missing: list[tuple[Any, ...]]) -> list[tuple[tuple[Any, ...], int]]:
            columns = sorted({c for k in missing for c in rows[k]})
            insert_sql = text(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                              f"SELECT * FROM unnest({arrays(columns, 'c')}) "
                              f"ON CONFLICT ({keys}) DO NOTHING RETURNING {keys}, id")
            params = {f"c{i}": [rows[k].get(c) for k in missing] for i, c in enumerate(columns)}
            return [(tuple(key), row_id) for *key, row_id in (await self.session.execute(insert_sql, params)).all()]

        return lookup, insert

    async def ensure_artists(self, artists: Iterable[dict[str, Any]]) -> dict[str, int]:
        """Rows need `name_key` and `name` (plus optional lastfm_url, mbid, image_url, external_ref)."""
        rows = {(row["name_key"],): row for row in artists}
        return {key[0]: row_id for key, row_id in (await self._get_or_create(Artist, ("name_key",), rows)).items()}

    async def ensure_tracks(self, tracks: Iterable[dict[str, Any]]) -> dict[tuple[int, str], int]:
        """Rows need `artist_id`, `title_key`, `title` (optional album_id, mbid, lastfm_url, spotify_id)."""
        rows = {(row["artist_id"], row["title_key"]): row for row in tracks}
        return await self._get_or_create(Track, ("artist_id", "title_key"), rows)  # type: ignore[return-value]

    async def ensure_albums(self, albums: Iterable[dict[str, Any]]) -> dict[tuple[int, str], int]:
        rows = {(row["artist_id"], row["title_key"]): row for row in albums}
        return await self._get_or_create(Album, ("artist_id", "title_key"), rows)  # type: ignore[return-value]

    async def ensure_tags(self, names: Iterable[str]) -> dict[str, int]:
        unique = sorted({n.strip().lower()[:200] for n in names if n and n.strip()})
        for batch in chunks(unique, BATCH):
            await self.session.execute(upsert_insert(self.session, Tag).on_conflict_do_nothing(index_elements=["name"]),
                                       [{"name": n} for n in batch])
        ids: dict[str, int] = {}
        for batch in chunks(unique, BATCH):
            ids.update(dict((await self.session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(batch)))).all()))
        return ids

    async def set_item_tags(self, item_kind: str, source: str, weights: dict[int, dict[int, float]]) -> int:
        """Replace the tags of each item for one source: item id -> {tag id: weight}."""
        items = list(weights)
        for batch in chunks(items, BATCH):
            await self.session.execute(delete(ItemTag).where(
                ItemTag.item_kind == item_kind, ItemTag.source == source, ItemTag.item_id.in_(batch)))
        rows = [{"item_kind": item_kind, "item_id": item, "tag_id": tag, "source": source, "weight": w}
                for item, tags in weights.items() for tag, w in tags.items()]
        for batch in chunks(rows, BATCH):
            await self.session.execute(upsert_insert(self.session, ItemTag).on_conflict_do_nothing(), batch)
        return len(rows)

    async def item_tags(self, item_kind: str) -> dict[int, dict[str, float]]:
        """Item id -> {tag name: summed weight over sources}: the content model's input."""
        rows = await self.session.execute(
            select(ItemTag.item_id, Tag.name, ItemTag.weight).join(Tag, Tag.id == ItemTag.tag_id)
            .where(ItemTag.item_kind == item_kind))
        out: dict[int, dict[str, float]] = {}
        for item, name, weight in rows:
            bucket = out.setdefault(item, {})
            bucket[name] = bucket.get(name, 0.0) + float(weight)
        return out

    async def artists_by_ids(self, ids: Iterable[int]) -> dict[int, Artist]:
        out: dict[int, Artist] = {}
        for batch in chunks(list(set(ids)), BATCH):
            out.update({a.id: a for a in (await self.session.execute(select(Artist).where(Artist.id.in_(batch)))).scalars()})
        return out

    async def artist_ids_by_ref(self, refs: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for batch in chunks(refs, BATCH):
            rows = await self.session.execute(select(Artist.external_ref, Artist.id).where(Artist.external_ref.in_(batch)))
            out.update({r: i for r, i in rows if r is not None})
        return out

    async def search_artists(self, prefix_key: str, limit: int = 25) -> list[Artist]:
        """Autocomplete: artists whose normalised name starts with `prefix_key`."""
        stmt = (select(Artist).where(Artist.name_key.startswith(prefix_key, autoescape=True))
                .order_by(Artist.name_key).limit(limit))
        return list((await self.session.execute(stmt)).scalars())

    async def artist_names_by_plays(self, limit: int) -> list[str]:
        """Artist names, most played (over all listeners) first, then by name: the candidates of
        fuzzy suggestions (core.fuzzy), where the better-known of two close names should win."""
        plays = (select(ArtistPlays.artist_id, func.sum(ArtistPlays.plays).label("plays"))
                 .group_by(ArtistPlays.artist_id).subquery())
        stmt = (select(Artist.name).outerjoin(plays, plays.c.artist_id == Artist.id)
                .order_by(func.coalesce(plays.c.plays, 0).desc(), Artist.name_key).limit(limit))
        return list((await self.session.execute(stmt)).scalars())

    async def artist_by_key(self, name_key: str) -> Artist | None:
        return (await self.session.execute(select(Artist).where(Artist.name_key == name_key))).scalar_one_or_none()

    async def artists_missing_tags(self, source: str, *, limit: int, offset: int = 0
                                   ) -> list[tuple[int, str, str | None]]:
        """(id, name, mbid) of artists with no tag from `source`, most-played (over all users) first.

        Why most-played first: tag enrichment runs under a request budget, and the content model
        gains most from the artists that appear in many listeners' histories.
        """
        plays = (select(ArtistPlays.artist_id, func.sum(ArtistPlays.plays).label("plays"))
                 .group_by(ArtistPlays.artist_id).subquery())
        tagged = exists().where(ItemTag.item_kind == "artist", ItemTag.item_id == Artist.id, ItemTag.source == source)
        stmt = (select(Artist.id, Artist.name, Artist.mbid).outerjoin(plays, plays.c.artist_id == Artist.id)
                .where(~tagged).order_by(func.coalesce(plays.c.plays, 0).desc(), Artist.id)
                .limit(limit).offset(offset))
        return [(row[0], row[1], row[2]) for row in (await self.session.execute(stmt)).all()]

    async def fill_track_spotify_ids(self, ids: dict[tuple[str, str], str]) -> int:
        """Set `tracks.spotify_id` where still empty, by (artist name_key, track title_key).

        Why: `ensure_tracks` never updates an existing row, so a track first seen through Last.fm
        would otherwise never learn its Spotify id (which playlist export needs).
        """
        if not ids:
            return 0
        artist_ids = dict((await self.session.execute(
            select(Artist.name_key, Artist.id).where(Artist.name_key.in_({a for a, _ in ids})))).all())
        wanted = {(artist_ids[a], t): sid for (a, t), sid in ids.items() if a in artist_ids}
        if not wanted:
            return 0
        columns = [Track.artist_id, Track.title_key]
        stmt = (select(Track.id, Track.artist_id, Track.title_key)
                .where(composite_in(self.session, columns, list(wanted)), Track.spotify_id.is_(None)))
        updated = 0
        for track_id, artist_id, title_key in (await self.session.execute(stmt)).all():
            spotify_id = wanted.get((artist_id, title_key))
            if spotify_id is not None:
                await self.session.execute(update(Track).where(Track.id == track_id).values(spotify_id=spotify_id))
                updated += 1
        return updated
