"""Repositories: every SQL statement of Sonance lives in this package."""

from core.db.repositories.accounts import AccountRepository
from core.db.repositories.aoty import AotyRepository
from core.db.repositories.catalog import CatalogRepository
from core.db.repositories.listens import ListenRepository
from core.db.repositories.personal_data import PersonalDataRepository
from core.db.repositories.scheduling import SchedulingRepository
from core.db.repositories.users import UserRepository

__all__ = [
    "AccountRepository",
    "AotyRepository",
    "CatalogRepository",
    "ListenRepository",
    "PersonalDataRepository",
    "SchedulingRepository",
    "UserRepository",
]
