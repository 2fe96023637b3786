"""Storage: pick the database from its URL; the ``Store`` exposes one repository per area."""

from __future__ import annotations

import os

from ..config import DELIVERY_INDEX_ENV, Settings
from .base import Store
from .db import Database


def open_database(url: str, settings: Settings | None = None) -> Database:
    if url.startswith("sqlite:"):
        from .sqlite import SqliteDatabase

        if settings is None:
            return SqliteDatabase(url)
        # serve's delivery processes each listen on a wake-up address of their own (delivery/process.py)
        index = int(os.environ.get(DELIVERY_INDEX_ENV) or 0)
        return SqliteDatabase(url, settings.sqlite_synchronous, settings.serve_deliverers(), index)
    if url.startswith(("postgresql:", "postgres:")):
        from .postgres import PostgresDatabase

        return PostgresDatabase(url, settings.pg_pool_size if settings else 8)
    raise ValueError(f"unsupported EVENTSTREAMS_DATABASE_URL scheme: {url.split(':', 1)[0]}")


def open_store(settings: Settings) -> Store:
    return Store(open_database(settings.database_url, settings))


__all__ = ["Database", "Store", "open_database", "open_store"]
