"""Which database objects Alembic manages (shared by the migration environment and its tests)."""

from __future__ import annotations

from typing import Any

#: Tables owned by libraries (APScheduler's job store) are not ours to migrate.
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)
