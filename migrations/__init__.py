"""Alembic migration environment for Sonance (works on SQLite and PostgreSQL)."""
