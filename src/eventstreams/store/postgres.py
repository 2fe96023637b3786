"""PostgreSQL: the scale-out backend shared by many processes.

Sync psycopg on a thread pool: the same ``Tx`` code as SQLite, with real
concurrency (the GIL is released while waiting on the server).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from .sql import SQLStore, Tx

T = TypeVar("T")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """``:name`` -> ``%(name)s`` (and literal % doubled)."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


class _PgTx(Tx):
    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn = conn

    def all(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        cur = self.conn.execute(to_pyformat(sql), params, prepare=False)
        return cur.fetchall() if cur.description else []

    def run(self, sql: str, **params: Any) -> int:
        return self.conn.execute(to_pyformat(sql), params).rowcount

    def many(self, sql: str, params: Sequence[dict[str, Any]]) -> None:
        if params:
            with self.conn.cursor() as cur:
                cur.executemany(to_pyformat(sql), params)

    def script(self, sql: str) -> None:
        self.conn.execute(sql.encode())


class PostgresStore(SQLStore):
    dialect = "postgres"

    def __init__(self, url: str, pool_size: int = 8) -> None:
        self.url = url
        self.pool_size = pool_size
        self._threads = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="pg")
        self._pool: ConnectionPool | None = None

    async def open(self) -> None:
        def make() -> ConnectionPool:
            pool = ConnectionPool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                kwargs={"row_factory": dict_row, "autocommit": False},
                open=False,
            )
            pool.open(wait=True, timeout=10)
            return pool

        self._pool = await asyncio.get_running_loop().run_in_executor(self._threads, make)

    async def close(self) -> None:
        pool = self._pool
        self._pool = None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(self._threads, pool.close)
        self._threads.shutdown(wait=True)

    def _tx_sync(self, fn: Callable[[Tx], T]) -> T:
        if self._pool is None:
            raise RuntimeError("store is not open")
        with self._pool.connection() as conn, conn.transaction():
            return fn(_PgTx(conn))  # type: ignore[arg-type]  # row_factory=dict_row set on the pool

    async def _run(self, fn: Callable[[Tx], T], write: bool = False) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._tx_sync, fn)

    def _lock_account(self, tx: Tx, sid: str) -> None:
        tx.all("SELECT sid FROM accounts WHERE sid = :sid FOR UPDATE", sid=sid)

    def _lock_migrations(self, tx: Tx) -> None:
        tx.all("SELECT pg_advisory_xact_lock(727274) AS locked")
