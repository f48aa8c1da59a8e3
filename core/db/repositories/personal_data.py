"""Everything stored about one person, found by walking the schema's metadata.

`/forget` and `/export` must cover tables that do not exist yet, so neither lists tables by hand:
a table is personal when one of its columns references `users.id` ("direct"), or when it
references a direct table (e.g. `playlist_items` via `playlists`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Select, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Base

SECRET_SUFFIX = "_enc"


@dataclass(frozen=True)
class PersonalLink:
    table: Table
    column: Column[Any]  # the column that points at the user (or at a direct table)
    via: PersonalLink | None = None  # for indirect tables: the direct link it goes through
    via_column: Column[Any] | None = None  # the referenced column of the direct table


def personal_links() -> list[PersonalLink]:
    """Direct links first, then indirect ones; computed from the metadata every time."""
    users = Base.metadata.tables["users"]
    direct: list[PersonalLink] = []
    for table in Base.metadata.sorted_tables:
        if table is users:
            continue
        for column in table.columns:
            if any(fk.column.table is users for fk in column.foreign_keys):
                direct.append(PersonalLink(table, column))
    direct_tables = {link.table for link in direct}
    indirect: list[PersonalLink] = []
    for table in Base.metadata.sorted_tables:
        if table is users or table in direct_tables:
            continue
        for column in table.columns:
            for fk in column.foreign_keys:
                for link in direct:
                    if fk.column.table is link.table:
                        indirect.append(PersonalLink(table, column, via=link, via_column=fk.column))
    return direct + indirect


def _where(link: PersonalLink, user_id: int | Select[Any]) -> Any:
    """Rows of `link.table` about one user (an id) or about several (a SELECT of user ids)."""
    if link.via is None:
        return link.column.in_(user_id) if isinstance(user_id, Select) else link.column == user_id
    assert link.via_column is not None
    return link.column.in_(select(link.via_column).where(_where(link.via, user_id)))


def _jsonable(value: Any, column_name: str) -> Any:
    if isinstance(value, bytes):
        if column_name.endswith(SECRET_SUFFIX):
            return "[secret stored encrypted; not exported]"
        return base64.b64encode(value).decode()
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class PersonalDataRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def export(self, user_id: int) -> dict[str, list[dict[str, Any]]]:
        users = Base.metadata.tables["users"]
        out: dict[str, list[dict[str, Any]]] = {}
        row = (await self.session.execute(select(users).where(users.c.id == user_id))).mappings().first()
        if row is None:
            return out
        out["users"] = [{k: _jsonable(v, k) for k, v in row.items()}]
        for link in personal_links():
            rows = (await self.session.execute(select(link.table).where(_where(link, user_id)))).mappings()
            records = [{k: _jsonable(v, k) for k, v in r.items()} for r in rows]
            if records:
                out.setdefault(link.table.name, []).extend(records)
        # A playlist blended with someone else names them by row id only; that is about the asker.
        return out

    async def forget(self, user_id: int) -> dict[str, int]:
        """Delete every row about the user; returns the number of rows per table."""
        users = Base.metadata.tables["users"]
        return await self._delete(user_id, users.c.id == user_id)

    async def forget_dataset_listeners(self, origin: str) -> dict[str, int]:
        """Delete every dataset listener of `origin` (e.g. the HetRec base corpus) and every row about
        them; members (users with a Discord id) are never touched, whatever their origin says."""
        users = Base.metadata.tables["users"]
        condition = (users.c.origin == origin) & users.c.discord_id.is_(None)
        return await self._delete(select(users.c.id).where(condition), condition)

    async def _delete(self, who: int | Select[Any], user_condition: Any) -> dict[str, int]:
        counts: dict[str, int] = {}
        for link in reversed(personal_links()):  # indirect (children) before direct (parents)
            result = await self.session.execute(
                delete(link.table).where(_where(link, who)).execution_options(synchronize_session=False))
            if result.rowcount:
                counts[link.table.name] = counts.get(link.table.name, 0) + result.rowcount
        users = Base.metadata.tables["users"]
        result = await self.session.execute(delete(users).where(user_condition))
        counts["users"] = result.rowcount
        return counts
