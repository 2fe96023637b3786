"""SQLite: the embedded default. One connection on one thread.

SQLite has one writer; funnelling every statement through a single thread
keeps transactions short and never contends inside the process. WAL lets
other processes (the CLI) read while we write.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .records import NewEvent
from .sql import SQLStore, Tx

T = TypeVar("T")


class _SqliteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def all(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        cols = [d[0] for d in cur.description] if cur.description else []
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def run(self, sql: str, **params: Any) -> int:
        return self.conn.execute(sql, params).rowcount

    def many(self, sql: str, params: Sequence[dict[str, Any]]) -> None:
        if params:
            self.conn.executemany(sql, params)

    def script(self, sql: str) -> None:
        # executescript would COMMIT our transaction; run statements one by one.
        for stmt in _split(sql):
            self.conn.execute(stmt)


def _split(sql: str) -> list[str]:
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def sqlite_path(url: str) -> str:
    """``sqlite:///./data/x.db`` -> ``./data/x.db``; ``sqlite:////abs`` -> ``/abs``."""
    rest = url.split("://", 1)[1]
    return rest[1:] if rest.startswith("/") else rest


class SqliteStore(SQLStore):
    dialect = "sqlite"

    def __init__(self, url: str, synchronous: str = "NORMAL") -> None:
        self.path = sqlite_path(url)
        self.synchronous = synchronous
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN ourselves (IMMEDIATE for writes).
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")  # readers in other processes don't block the writer
        # NORMAL survives kill -9 under WAL (may lose the last commits on power loss); FULL survives both.
        conn.execute(f"PRAGMA synchronous={'FULL' if self.synchronous == 'FULL' else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=60000")  # another process (CLI, migrate) may hold the lock briefly
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._pool, self._connect)

    async def close(self) -> None:
        conn = self._conn
        self._conn = None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, conn.close)
        self._pool.shutdown(wait=True)

    def _tx_sync(self, fn: Callable[[Tx], T], write: bool) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError("store is not open")
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = fn(_SqliteTx(conn))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def _run(self, fn: Callable[[Tx], T], write: bool = False) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._tx_sync, fn, write)

    # -- dialect hooks (see SQLDeliveryMixin)
    def _in(self, column: str, name: str) -> str:
        return f"{column} IN (SELECT value FROM json_each(:{name}))"

    def _list(self, values: Sequence[Any]) -> Any:
        return json.dumps(list(values))

    def _insert_events(self, tx: Tx, account_sid: str, events: Sequence[NewEvent], now_ms: int) -> list[int]:
        if not events:
            return []
        # One writer: rowids allocated in this transaction are contiguous after the current max.
        top = tx.one("SELECT COALESCE(MAX(seq), 0) AS m FROM events")
        first = int(top["m"]) + 1 if top else 1
        assert isinstance(tx, _SqliteTx)
        tx.conn.executemany(
            "INSERT INTO events (seq, account_sid, id, type, schema_version, received_at, time, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (first + i, account_sid, e.id, e.type, e.schema_version, now_ms, e.time, e.payload)
                for i, e in enumerate(events)
            ],
        )
        return list(range(first, first + len(events)))

    def _claim_ids(self, tx: Tx, account_sid: str, ids: Sequence[str], now_ms: int, cutoff_ms: int) -> set[str]:
        if not ids:
            return set()
        rows = tx.all(
            "INSERT INTO event_ids (account_sid, id, received_at)"
            " SELECT :a, value, :now FROM json_each(:ids) WHERE true"
            " ON CONFLICT (account_sid, id) DO UPDATE SET received_at = excluded.received_at"
            " WHERE event_ids.received_at < :cutoff RETURNING id",
            a=account_sid,
            now=now_ms,
            ids=json.dumps(list(ids)),
            cutoff=cutoff_ms,
        )
        return {r["id"] for r in rows}
