"""SQLite: the embedded default. One connection on one thread.

SQLite has one writer; funnelling every statement through a single thread
keeps transactions short and never contends inside the process. WAL lets
other processes (the CLI) read while we write.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import queue
import socket
import sqlite3
import sys
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from .db import Database, Tx
from .dialect import Dialect, LocalWake, WakeChannel
from .errors import ALREADY_EXISTS, REFERENCE_GONE, Conflict, NotFound, StoreError
from .records import NewEvent

T = TypeVar("T")
log = logging.getLogger("eventstreams.store")
BIND_RETRY_S = 2.0


def sink_shard(sid: str, deliverers: int) -> int:
    """Which of the delivery processes on one SQLite file delivers this sink (and is woken for it)."""
    return zlib.crc32(sid.encode()) % deliverers if deliverers > 1 else 0


class FileWake(LocalWake):
    """In-process wake-ups, and across the processes using one SQLite file: after each commit a datagram
    with the sinks goes to an abstract Unix socket named after the file, which the process that delivers
    (``serve``'s delivery process) binds when it listens. With several delivery processes each binds a name
    of its own (``index``) and hears of its share of the sinks (:func:`sink_shard`). A writer that counts the
    processes otherwise than serve does (a CLI or an embedded caller with other settings) still reaches them:
    what finds no listener goes to the first name, and the first passes on what is not its own. Nothing is
    written to disk and a lost datagram costs only latency (the dispatcher also polls). Linux only;
    elsewhere the in-process part alone."""

    def __init__(self, path: str, deliverers: int = 1, index: int = 0) -> None:
        super().__init__()
        if not 0 <= index < deliverers:
            raise ValueError(f"delivery process {index} of {deliverers} does not exist")
        self.deliverers, self.index = deliverers, index
        self.addresses: list[str] = []
        if path != ":memory:" and sys.platform == "linux":
            digest = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:32]
            base = f"\0eventstreams-wake-{digest}"
            self.addresses = [base if k == 0 else f"{base}-{k}" for k in range(deliverers)]
        self.address = self.addresses[index] if self.addresses else None  # what this process binds to listen
        self._out: socket.socket | None = None
        self._in: socket.socket | None = None
        self._retry: asyncio.TimerHandle | None = None

    def fire(self, sinks: list[str]) -> None:
        super().fire(sinks)
        if not self.addresses or self._in is not None or not sinks:
            return  # this process delivers itself: already told
        for k, share in self._shares(sinks).items():
            self._send(share, k)

    def _shares(self, sinks: list[str]) -> dict[int, list[str]]:
        if self.deliverers == 1:
            return {0: sinks}
        shares: dict[int, list[str]] = {}
        for sid in sinks:
            shares.setdefault(sink_shard(sid, self.deliverers), []).append(sid)
        return shares

    def _send(self, sinks: list[str], k: int, fallback: bool = True) -> None:
        try:
            if self._out is None:
                self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._out.setblocking(False)
            self._out.sendto(",".join(sinks).encode()[:60_000], self.addresses[k])
        except ConnectionRefusedError:
            # nobody on that name: fewer processes deliver than this one counts (a lone worker, or a serve
            # run with another count); the first name's listener takes it or passes it on. Never twice.
            if fallback and k:
                self._send(sinks, 0, fallback=False)
        except OSError:  # its queue is full, or nobody listens at all: polling covers it
            pass

    async def listen(self, callback: Callable[[list[str]], None]) -> None:
        await super().listen(callback)
        if self.address is not None and self._in is None:
            self._bind(first=True)

    def _bind(self, first: bool = False) -> None:
        if self._in is not None or not self._listeners:  # bound meanwhile, or closed
            return
        assert self.address is not None
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.bind(self.address)
        except OSError:
            # another process holds the name (a predecessor still shutting down, or a second deliverer):
            # in-process wake-ups and polling meanwhile, and try again
            if first:
                log.warning("another process listens for this database's wake-ups; polling until it is gone")
            sock.close()
            self._retry = loop.call_later(BIND_RETRY_S, self._bind)
            return
        self._in = sock
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._in is not None
        while True:
            try:
                data = self._in.recv(65_536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sinks = [s for s in data.decode(errors="replace").split(",") if s]
            if self.deliverers > 1:  # sent here by a writer that counts fewer processes: pass on the others'
                shares = self._shares(sinks)
                sinks = shares.pop(self.index, [])
                for k, share in shares.items():
                    self._send(share, k, fallback=False)
            if sinks:
                LocalWake.fire(self, sinks)

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._in is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._in.fileno())
            self._in.close()
            self._in = None
        if self._out is not None:
            self._out.close()
            self._out = None
        await super().close()


class _SqliteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.woken: list[str] = []

    def all(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        cols = [d[0] for d in cur.description] if cur.description else []
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def rows(self, sql: str, **params: Any) -> Sequence[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()  # the connection has no row factory: tuples

    def run(self, sql: str, **params: Any) -> int:
        return self.conn.execute(sql, params).rowcount

    def many(self, sql: str, params: Sequence[dict[str, Any]]) -> None:
        if params:
            self.conn.executemany(sql, params)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        # positional parameters: a quarter cheaper than named ones per row (bench/sandbox_seed.py)
        if rows:
            marks = ", ".join("?" * len(columns))
            self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

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


class SqliteDialect(Dialect):
    name = "sqlite"

    def in_(self, column: str, name: str) -> str:
        return f"{column} IN (SELECT value FROM json_each(:{name}))"

    def list_(self, values: Sequence[Any]) -> Any:
        return orjson.dumps(list(values)).decode()

    # Where a table's counter starts when it has none yet: past every number still in use. For the event
    # log that includes the cursors and batches, which may stand beyond events retention has deleted.
    _SEEDS = {
        "events": "MAX((SELECT COALESCE(MAX(seq), 0) FROM events), (SELECT COALESCE(MAX(position), 0) FROM"
        " sink_cursors), (SELECT COALESCE(MAX(to_seq), 0) FROM delivery_batches))",
    }

    def next_seqs(self, tx: Tx, table: str, n: int) -> list[int]:
        # A counter row per table (seeded from its MAX on first use): MAX(seq) + 1 alone would reuse
        # the numbers of deleted rows, which other tables may still point at.
        seed = self._SEEDS.get(table, f"(SELECT COALESCE(MAX(seq), 0) FROM {table})")
        row = tx.one(
            "INSERT INTO seq_counters (name, value)"
            f" VALUES (:t, {seed} + :n)"
            " ON CONFLICT (name) DO UPDATE SET value = seq_counters.value + :n RETURNING value",
            t=table,
            n=n,
        )
        assert row is not None
        last = int(row["value"])
        return list(range(last - n + 1, last + 1))

    def insert_events(self, tx: Tx, account_sid: str, events: Sequence[NewEvent], now_ms: int) -> list[int]:
        if not events:
            return []
        # The counter, not MAX(seq) + 1: once retention has emptied the log, MAX would start again below
        # where the sinks' cursors stand, and they would never read the new events.
        first = self.next_seqs(tx, "events", len(events))[0]
        assert isinstance(tx, _SqliteTx)
        tx.conn.executemany(  # positional: measurably cheaper than named parameters on the hot path
            "INSERT INTO events (seq, account_sid, id, type, schema_version, received_at, time, payload, packed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (first + i, account_sid, e.id, e.type, e.schema_version, now_ms, e.time, e.payload, e.packed)
                for i, e in enumerate(events)
            ],
        )
        return list(range(first, first + len(events)))

    def claim_ids(self, tx: Tx, account_sid: str, ids: Sequence[str], now_ms: int, cutoff_ms: int) -> set[str]:
        if not ids:
            return set()
        rows = tx.all(
            "INSERT INTO event_ids (account_sid, id, received_at)"
            " SELECT :a, value, :now FROM json_each(:ids) WHERE true"
            " ON CONFLICT (account_sid, id) DO UPDATE SET received_at = excluded.received_at"
            " WHERE event_ids.received_at < :cutoff RETURNING id",
            a=account_sid,
            now=now_ms,
            ids=orjson.dumps(list(ids)).decode(),
            cutoff=cutoff_ms,
        )
        return {r["id"] for r in rows}

    def notify(self, tx: Tx, sinks: Sequence[str]) -> None:
        assert isinstance(tx, _SqliteTx)
        tx.woken.extend(sinks)  # handed to the in-process wake channel after COMMIT

    def translate(self, exc: Exception) -> StoreError | None:
        if isinstance(exc, sqlite3.IntegrityError) and getattr(exc, "sqlite_errorname", "") in (
            "SQLITE_CONSTRAINT_UNIQUE",
            "SQLITE_CONSTRAINT_PRIMARYKEY",
        ):
            return Conflict(ALREADY_EXISTS)
        if isinstance(exc, sqlite3.IntegrityError) and getattr(exc, "sqlite_errorname", "") == (
            "SQLITE_CONSTRAINT_FOREIGNKEY"
        ):
            return NotFound(REFERENCE_GONE)
        return None


class _Job:
    __slots__ = ("fn", "future", "loop", "write")

    def __init__(self, fn: Callable[[Tx], Any], write: bool, loop: asyncio.AbstractEventLoop) -> None:
        self.fn = fn
        self.write = write
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()


BUSY_WAIT_S = 60.0


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """Take the write lock, waiting for another process's transaction (serve's delivery process, the CLI)
    in steps of 50 µs up to 2 ms. SQLite's own busy handler sleeps 1, 2, 5, 10… ms between tries, which
    left the lock idle most of the time two busy processes waited for it."""
    conn.execute("PRAGMA busy_timeout=0")
    try:
        delay, deadline = 5e-5, time.monotonic() + BUSY_WAIT_S
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or (
                    time.monotonic() > deadline
                ):
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.002)
    finally:
        conn.execute("PRAGMA busy_timeout=60000")


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _create_private(path: str) -> None:
    """Create the database file 0600 before SQLite does (it holds message bodies and phone numbers);
    SQLite gives the -wal and -shm files the database file's permissions."""
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


CHECKPOINT_S = 0.2  # WAL written at ~100 MB/s (bulk publishing) stays within ~20 MB between checkpoints
WAL_RESTART_BYTES = 64 * 2**20  # past this the checkpointer makes the WAL start over (a few ms for writers)
RESTART_PAGES = 100_000  # the store connection's own automatic checkpoint: a backstop (~400 MB) if the thread fails


class Checkpointer:
    """Copies the WAL back into the database file on a thread and connection of its own.

    SQLite's automatic checkpoint runs inside whichever COMMIT pushes the WAL past 1000 pages: that
    commit then writes ~4 MB and fsyncs the database file while every queued publish and lease waits
    (6-14 ms stalls, the p99 of the latency benchmark). Here the store's connection leaves that to this
    thread, which runs a PASSIVE checkpoint (it never blocks the writer) every ``interval`` seconds.

    A PASSIVE checkpoint that commits keep outrunning never finishes, and SQLite only starts the WAL
    again from its beginning after one that did: under steady writes the file grew without end (9 GB in
    7 minutes of the backlog benchmark). So once the WAL passes ``restart_bytes`` the thread runs a
    RESTART checkpoint: it waits for the current transaction, holds new writers off while it copies what
    the PASSIVE ones have not yet (little) and syncs, and the next write starts the WAL over; the file is
    then cut back to ``restart_bytes`` (journal_size_limit). A second process on the same file (serve's
    delivery process) runs its own: of two concurrent checkpoints one gives way."""

    def __init__(self, path: str, interval: float = CHECKPOINT_S, restart_bytes: int = WAL_RESTART_BYTES) -> None:
        self.path = path
        self.interval = interval
        self.restart_bytes = restart_bytes
        self.done = 0  # completed checkpoints (tests wait on it)
        self.restarts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:  # the store's connection still has its backstop (RESTART_PAGES)
            log.exception("sqlite: the checkpointer could not open %s", self.path)
            return
        try:
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute(f"PRAGMA journal_size_limit={self.restart_bytes}")
            while not self._stop.wait(self.interval):
                self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            try:
                big = os.stat(f"{self.path}-wal").st_size > self.restart_bytes
            except FileNotFoundError:
                big = False
            if big:
                conn.execute("PRAGMA busy_timeout=2000")  # wait out the transaction under way
                try:
                    conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                finally:
                    conn.execute("PRAGMA busy_timeout=0")
                self.restarts += 1
            else:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.done += 1
        except sqlite3.Error:  # busy (another checkpoint) or I/O: the next beat tries again
            log.debug("sqlite: checkpoint skipped", exc_info=True)


class SqliteDatabase(Database):
    """One connection on one thread, with group commit.

    Operations queued while a transaction runs are taken together into the
    next one (up to ``GROUP``), each inside its own SAVEPOINT so it still
    succeeds or fails alone; callers are answered only after the COMMIT, so
    an acknowledged publish is durable. One BEGIN/COMMIT then serves many
    concurrent requests instead of one each.
    """

    GROUP = 64

    def __init__(self, url: str, synchronous: str = "NORMAL", deliverers: int = 1, index: int = 0) -> None:
        self.path = sqlite_path(url)
        self.synchronous = synchronous
        self.dialect = SqliteDialect()
        self.wake = FileWake(self.path, deliverers, index)
        self._conn: sqlite3.Connection | None = None
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.checkpointer = Checkpointer(self.path) if self.path != ":memory:" else None

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            _create_private(self.path)
        # isolation_level=None: we issue BEGIN ourselves (IMMEDIATE for writes).
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")  # readers in other processes don't block the writer
        # NORMAL survives kill -9 under WAL (may lose the last commits on power loss); FULL survives both.
        conn.execute(f"PRAGMA synchronous={'FULL' if self.synchronous == 'FULL' else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=60000")  # another process (CLI, migrate) may hold the lock briefly
        conn.execute("PRAGMA cache_size=-65536")
        if self.checkpointer is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint={RESTART_PAGES}")  # the Checkpointer's thread does it
            conn.execute(f"PRAGMA journal_size_limit={self.checkpointer.restart_bytes}")
        return conn

    async def open(self) -> None:
        self._conn = await asyncio.to_thread(self._connect)
        self._thread = threading.Thread(target=self._serve, name="sqlite-store", daemon=True)
        self._thread.start()
        if self.checkpointer is not None:
            self.checkpointer.start()

    async def close(self) -> None:
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def wake_channel(self) -> WakeChannel:
        return self.wake

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            while len(jobs) < self.GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # finish this group, then stop
                    break
                jobs.append(more)
            self._transaction(jobs)

    def _transaction(self, jobs: list[_Job]) -> None:
        conn = self._conn
        assert conn is not None
        done: list[tuple[_Job, Any, BaseException | None]] = []
        woken: list[list[str]] = []
        try:
            if any(j.write for j in jobs):
                _begin_immediate(conn)
            else:
                conn.execute("BEGIN")
            for job in jobs:
                conn.execute("SAVEPOINT op")
                tx = _SqliteTx(conn)
                try:
                    result = job.fn(tx)
                except Exception as exc:  # noqa: BLE001 - this operation fails alone; the others still commit
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    done.append((job, None, exc))
                else:
                    conn.execute("RELEASE op")
                    done.append((job, result, None))
                    if tx.woken:
                        woken.append(tx.woken)
            conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - BEGIN/COMMIT failed (disk full, I/O): nothing committed
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            done = [(job, None, exc) for job in jobs]
            woken = []
        for job, result, error in done:
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)
        for sinks in woken:
            self.wake.fire(sinks)

    def _submit(self, fn: Callable[[Tx], T], write: bool) -> asyncio.Future[T]:
        if self._thread is None:
            raise RuntimeError("store is not open")
        job = _Job(fn, write, asyncio.get_running_loop())
        self._queue.put(job)
        return job.future
