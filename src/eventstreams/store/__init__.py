"""Storage: pick the implementation from the database URL."""

from __future__ import annotations

from ..config import Settings
from .base import Store


def open_store(settings: Settings) -> Store:
    url = settings.database_url
    if url.startswith("sqlite:"):
        from .sqlite import SqliteStore

        return SqliteStore(url, settings.sqlite_synchronous)
    if url.startswith(("postgresql:", "postgres:")):
        from .postgres import PostgresStore

        return PostgresStore(url, settings.pg_pool_size)
    raise ValueError(f"unsupported EVENTSTREAMS_DATABASE_URL scheme: {url.split(':', 1)[0]}")


__all__ = ["Store", "open_store"]
