"""PostgreSQL: the scale-out backend shared by many processes.

Sync psycopg on a thread pool: the same ``Tx`` code as SQLite, with real
concurrency (the GIL is released while waiting on the server).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool

from .db import Database, Tx
from .dialect import Dialect, LocalWake, WakeCallback, WakeChannel
from .errors import ALREADY_EXISTS, REFERENCE_GONE, Conflict, NotFound, StoreError
from .records import NewEvent

NOTIFY_CHANNEL = "eventstreams_deliveries"
MIGRATION_LOCK = 727274  # pg_advisory_xact_lock key: migrations and first-account seeding
LOG_LOCK = 727275  # pg_advisory_xact_lock(LOG_LOCK, hashtext(account)): an account's event appends, in seq order
RETRIES = 3  # a whole operation is re-run after a serialization failure, a deadlock or a stale prepared plan

T = TypeVar("T")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
log = logging.getLogger("eventstreams.store")


@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """``:name`` -> ``%(name)s`` (and literal % doubled): the placeholder rewrite."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


class _PgTx(Tx):
    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn = conn
        self.woken: list[str] = []  # sinks to wake in this process once the transaction commits
        self.log_locked: set[str] = set()  # accounts whose log lock this transaction holds

    def all(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        # prepared after psycopg's 5th use of the same text, as run() is: planning was a third of PostgreSQL's
        # CPU at 1,000 events/s (docs/benchmarks.md). A migration that changes a table's columns under a
        # prepared SELECT * makes that transaction run again (_retryable).
        cur = self.conn.execute(to_pyformat(sql), params)
        return cur.fetchall() if cur.description else []

    def rows(self, sql: str, **params: Any) -> Sequence[tuple[Any, ...]]:
        with self.conn.cursor(row_factory=tuple_row) as cur:
            return cur.execute(to_pyformat(sql), params).fetchall()

    def run(self, sql: str, **params: Any) -> int:
        return self.conn.execute(to_pyformat(sql), params).rowcount

    def many(self, sql: str, params: Sequence[dict[str, Any]]) -> None:
        if params:
            with self.conn.cursor() as cur:
                cur.executemany(to_pyformat(sql), params)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        # COPY: several times the rate of executemany's INSERTs (bench/sandbox_seed.py)
        if rows:
            with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def script(self, sql: str) -> None:
        self.conn.execute(sql.encode())


class PostgresDialect(Dialect):
    name = "postgres"
    skip_locked = "FOR UPDATE SKIP LOCKED"
    for_update = " FOR UPDATE"
    redoable_item = "set_config('synchronous_commit', 'off', true)"
    json_pairs = "json_agg(json_build_array({a}, {b}))::text"

    def fanned_params(self, account_sid: str) -> dict[str, Any]:
        return {"lock": LOG_LOCK, "ch": NOTIFY_CHANNEL, "origin": self.origin}

    def fanned(self, tx: Tx, account_sid: str, sinks: Sequence[str]) -> None:
        # postgres/deliveries.sql's fanned_sinks already sent the NOTIFY and took the account's log lock
        assert isinstance(tx, _PgTx)
        tx.woken.extend(sinks)
        tx.log_locked.add(account_sid)

    def redoable(self, tx: Tx) -> None:
        # two WAL flushes per event path (lease, outcome) were most of PostgreSQL's time at 1,000 events/s
        tx.run("SET LOCAL synchronous_commit = off")

    def __init__(self, origin: str | None = None) -> None:
        self.origin = origin or uuid.uuid4().hex[:12]  # tags this database's NOTIFY payloads (see ListenWake)

    def in_(self, column: str, name: str) -> str:
        return f"{column} = ANY(:{name})"

    def list_(self, values: Sequence[Any]) -> Any:
        return list(values)

    def lock_account(self, tx: Tx, sid: str) -> None:
        tx.all("SELECT sid FROM accounts WHERE sid = :sid FOR UPDATE", sid=sid)

    def lock_migrations(self, tx: Tx) -> None:
        tx.all("SELECT pg_advisory_xact_lock(:k) AS locked", k=MIGRATION_LOCK)

    def next_seqs(self, tx: Tx, table: str, n: int) -> list[int]:
        # the identity sequence never goes back; concurrent callers get interleaved, unique values
        rows = tx.all(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'seq')) AS seq FROM generate_series(1, :n) ORDER BY 1",
            n=n,
        )
        return [int(r["seq"]) for r in rows]

    def insert_events(self, tx: Tx, account_sid: str, events: Sequence[NewEvent], now_ms: int) -> list[int]:
        if not events:
            return []
        assert isinstance(tx, _PgTx)
        self._lock_log(tx, account_sid)
        # %(x)b: binary arrays. Text arrays make psycopg escape every quote of every JSON payload
        # in Python (measured: 43 ms vs 4.7 ms per 100-event insert; docs/benchmarks.md).
        rows = tx.conn.execute(
            "INSERT INTO events (account_sid, id, type, schema_version, received_at, time, payload, packed)"
            " SELECT %(a)s, u.id, u.type, u.v, %(now)s, u.time, u.payload, u.packed FROM unnest("
            "%(ids)b::text[], %(types)b::text[], %(vs)s::int[], %(times)b::text[], %(payloads)b::text[],"
            " %(packs)b::bytea[]) WITH ORDINALITY AS u(id, type, v, time, payload, packed, n)"
            " ORDER BY u.n RETURNING seq",
            {
                "a": account_sid,
                "now": now_ms,
                "ids": [e.id for e in events],
                "types": [e.type for e in events],
                "vs": [e.schema_version for e in events],
                "times": [e.time for e in events],
                "payloads": [e.payload for e in events],
                "packs": [e.packed for e in events],
            },
            prepare=False,
        ).fetchall()
        return [int(r["seq"]) for r in rows]

    def append_events(self, tx: Tx, account_sid: str, events: Sequence[NewEvent], now_ms: int) -> None:
        if not events:
            return
        assert isinstance(tx, _PgTx)
        self._lock_log(tx, account_sid)
        # COPY: no seqs to return, and PostgreSQL spends about a third less CPU per row than on the array
        # INSERT (bench/raw.py, docs/benchmarks.md, issue 13)
        with tx.conn.cursor().copy(
            "COPY events (account_sid, id, type, schema_version, received_at, time, payload, packed) FROM STDIN"
        ) as cp:
            for e in events:
                cp.write_row((account_sid, e.id, e.type, e.schema_version, now_ms, e.time, e.payload, e.packed))

    def _lock_log(self, tx: _PgTx, account_sid: str) -> None:
        if account_sid in tx.log_locked:
            return
        tx.log_locked.add(account_sid)
        # The account's log lock, held to COMMIT, before the identity hands out seqs: an account's events
        # then commit in seq order, so a sink's cursor never passes an event that is yet to commit
        # (deliveries.sql, cursor). Other accounts publish in parallel (a hash collision only serialises).
        tx.conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOG_LOCK, account_sid), prepare=True)

    def claim_ids(self, tx: Tx, account_sid: str, ids: Sequence[str], now_ms: int, cutoff_ms: int) -> set[str]:
        if not ids:
            return set()
        rows = tx.all(
            "INSERT INTO event_ids (account_sid, id, received_at) SELECT :a, u, :now FROM unnest(:ids::text[]) AS u"
            " ON CONFLICT (account_sid, id) DO UPDATE SET received_at = excluded.received_at"
            " WHERE event_ids.received_at < :cutoff RETURNING id",
            a=account_sid,
            now=now_ms,
            ids=list(ids),
            cutoff=cutoff_ms,
        )
        return {r["id"] for r in rows}

    def notify(self, tx: Tx, sinks: Sequence[str]) -> None:
        if sinks:
            assert isinstance(tx, _PgTx)
            tx.woken.extend(sinks)  # this process: woken directly after COMMIT, no round trip
            # Other processes (workers on other machines): delivered at commit to every LISTENer. The
            # origin prefix lets this process's own listener skip what it was already told.
            payload = f"{self.origin}:{','.join(sinks)}"[:7900]
            tx.all("SELECT pg_notify(:ch, :p) AS n", ch=NOTIFY_CHANNEL, p=payload)

    def translate(self, exc: Exception) -> StoreError | None:
        if isinstance(exc, pg_errors.UniqueViolation):
            return Conflict(ALREADY_EXISTS)
        if isinstance(exc, pg_errors.ForeignKeyViolation):
            return NotFound(REFERENCE_GONE)
        return None


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, pg_errors.FeatureNotSupported):
        # another process's migration changed what a prepared SELECT * returns; the rollback cleared
        # psycopg's prepared statements, so the operation runs again on fresh ones
        return "cached plan must not change result type" in str(exc)
    return isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected)


class ListenWake(LocalWake):
    """This process's own commits wake its listeners directly (``fire``, as on SQLite); other
    processes' arrive by LISTEN on a connection of its own in a thread, which reconnects (polling
    covers the gap)."""

    def __init__(self, url: str, origin: str) -> None:
        super().__init__()
        self.url = url
        self.origin = origin
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def listen(self, callback: WakeCallback) -> None:
        await super().listen(callback)
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        own = f"{self.origin}:"
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=1.0):
                            if not n.payload.startswith(own):
                                self.fire([s for s in n.payload.partition(":")[2].split(",") if s])
            except Exception:  # reconnect: polling covers the gap
                log.exception("LISTEN connection lost; retrying")
                self._stop.wait(1.0)

    async def close(self) -> None:
        await super().close()
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
            self._thread = None


class PostgresDatabase(Database):
    def __init__(self, url: str, pool_size: int = 8) -> None:
        self.url = url
        self.pool_size = pool_size
        self.dialect = PostgresDialect()
        self.wake = ListenWake(url, self.dialect.origin)
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

    def wake_channel(self) -> WakeChannel:
        return self.wake

    def _tx_sync(self, fn: Callable[[Tx], T]) -> T:
        for attempt in range(RETRIES):
            if self._pool is None:
                raise RuntimeError("store is not open")
            try:
                with self._pool.connection() as conn:
                    tx = _PgTx(conn)  # type: ignore[arg-type]  # row_factory=dict_row set on the pool
                    with conn.transaction():
                        result = fn(tx)
            except Exception as exc:
                if attempt + 1 == RETRIES or not _retryable(exc):
                    raise
                continue
            if tx.woken:
                self.wake.fire(tx.woken)
            return result
        raise AssertionError("unreachable")

    def _submit(self, fn: Callable[[Tx], T], write: bool) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._threads, self._tx_sync, fn)
