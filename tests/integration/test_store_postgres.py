"""The PostgreSQL store's own behaviour under its driver: prepared statements across a migration."""

from __future__ import annotations

import os
import uuid

import psycopg

from eventstreams.store.postgres import PostgresDatabase
from tests.conftest import drop_pg_database, pg_database


async def test_a_migration_that_adds_a_column_under_a_prepared_select_star_is_survived() -> None:
    """Queries are prepared from psycopg's fifth use. Another process's migration then changes the result
    of a prepared SELECT *; PostgreSQL refuses the stale plan ("cached plan must not change result type").
    The transaction's rollback clears psycopg's prepared statements, so running it again answers."""
    name = f"es_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = pg_database(name)
    db = PostgresDatabase(url, pool_size=1)  # one connection: the one that prepared it
    await db.open()
    try:
        await db.run(lambda tx: tx.script("CREATE TABLE t (k INT PRIMARY KEY); INSERT INTO t VALUES (1)"), write=True)
        for _ in range(6):
            assert await db.run(lambda tx: tx.all("SELECT * FROM t")) == [{"k": 1}]
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("ALTER TABLE t ADD COLUMN v TEXT DEFAULT 'x'")
        assert await db.run(lambda tx: tx.all("SELECT * FROM t")) == [{"k": 1, "v": "x"}]
    finally:
        await db.close()
        drop_pg_database(name)
