"""SQLite group commit: operations queued together share one transaction but
succeed or fail alone, and are answered only once committed."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from eventstreams.store.db import Tx
from eventstreams.store.errors import Conflict
from eventstreams.store.sqlite import SqliteDatabase


async def test_one_failing_operation_does_not_sink_its_group(tmp_path: Path) -> None:
    store = SqliteDatabase(f"sqlite:///{tmp_path}/g.db")
    await store.open()
    try:
        await store.run(lambda tx: tx.script("CREATE TABLE t (k INTEGER PRIMARY KEY)"), write=True)

        def insert(k: int):  # type: ignore[no-untyped-def]
            return lambda tx: tx.run("INSERT INTO t (k) VALUES (:k)", k=k)

        def insert_twice(tx: Tx) -> int:
            tx.run("INSERT INTO t (k) VALUES (100)")
            return tx.run("INSERT INTO t (k) VALUES (1)")  # conflicts with the first job's row

        # hold the store thread so the next three queue up and are taken as one group
        gate = threading.Event()
        blocker = asyncio.ensure_future(store.run(lambda tx: gate.wait(5), write=True))
        await asyncio.sleep(0.05)
        jobs = [
            asyncio.ensure_future(store.run(insert(1), write=True)),
            asyncio.ensure_future(store.run(insert_twice, write=True)),
            asyncio.ensure_future(store.run(insert(2), write=True)),
        ]
        await asyncio.sleep(0.05)
        assert store._queue.qsize() == 3
        gate.set()
        await blocker
        results = await asyncio.gather(*jobs, return_exceptions=True)
        assert results[0] == 1 and results[2] == 1
        assert isinstance(results[1], Conflict) and "UNIQUE" in str(results[1].__cause__)  # translated at the seam
        rows = await store.run(lambda tx: tx.all("SELECT k FROM t ORDER BY k"))
        assert [r["k"] for r in rows] == [1, 2]  # the failed job's first insert was rolled back with it
    finally:
        await store.close()
    # and it was all committed: a fresh connection sees it
    again = SqliteDatabase(f"sqlite:///{tmp_path}/g.db")
    await again.open()
    try:
        assert [r["k"] for r in await again.run(lambda tx: tx.all("SELECT k FROM t ORDER BY k"))] == [1, 2]
    finally:
        await again.close()


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SqliteDatabase(f"sqlite:///{tmp_path}/c.db")
    with pytest.raises(RuntimeError):
        await store.run(lambda tx: tx.all("SELECT 1"))


async def test_commits_never_checkpoint_and_the_checkpointer_backfills_the_wal(tmp_path: Path) -> None:
    """A COMMIT that crossed SQLite's automatic checkpoint wrote and fsynced the database file while every
    queued operation waited (the latency benchmark's p99); the store's own thread must leave that to the
    checkpointer's."""
    path = tmp_path / "w.db"
    store = SqliteDatabase(f"sqlite:///{path}")
    assert store.checkpointer is not None
    store.checkpointer.interval = 3600.0  # not yet
    await store.open()
    try:
        await store.run(lambda tx: tx.script("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"), write=True)
        blob = b"x" * 4000
        for i in range(12):  # ~2,400 pages: past the 1,000 at which a commit would have checkpointed
            await store.run(lambda tx, i=i: tx.many("INSERT INTO t (k, v) VALUES (:k, :v)",
                                                    [{"k": i * 200 + j, "v": blob} for j in range(200)]),
                            write=True)  # fmt: skip
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > 9_000_000
        assert path.stat().st_size < 100_000  # nothing was copied back by a commit
        store.checkpointer.stop()
        store.checkpointer.interval = 0.01
        store.checkpointer.start()
        deadline = asyncio.get_running_loop().time() + 10
        while path.stat().st_size < 9_000_000 or not store.checkpointer.done:
            assert asyncio.get_running_loop().time() < deadline, "the checkpointer did not run"
            await asyncio.sleep(0.01)
        rows = await store.run(lambda tx: tx.one("SELECT COUNT(*) AS n FROM t"))
        assert rows is not None and rows["n"] == 2400
    finally:
        await store.close()
    assert store.checkpointer._thread is None


async def test_the_wal_starts_over_under_steady_writes(tmp_path: Path) -> None:
    """PASSIVE checkpoints alone never finish while commits keep coming, and SQLite only rewinds the WAL
    after one that did: the file grew without end (9 GB in 7 minutes of the backlog benchmark)."""
    path = tmp_path / "s.db"
    store = SqliteDatabase(f"sqlite:///{path}")
    assert store.checkpointer is not None
    store.checkpointer.interval = 0.005
    store.checkpointer.restart_bytes = 1 << 20
    await store.open()
    try:
        await store.run(lambda tx: tx.script("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"), write=True)
        wal, biggest = Path(f"{path}-wal"), 0
        for i in range(500):  # ~20 MB, one commit after another
            await store.run(lambda tx, i=i: tx.many("INSERT INTO t (k, v) VALUES (:k, :v)",
                                                    [{"k": i * 10 + j, "v": b"x" * 4000} for j in range(10)]),
                            write=True)  # fmt: skip
            biggest = max(biggest, wal.stat().st_size)
            if i % 25 == 24:  # the thread gets its turns however loaded the machine is (not a sleep: a beat)
                beat, deadline = store.checkpointer.done, asyncio.get_running_loop().time() + 10
                while store.checkpointer.done == beat:
                    assert asyncio.get_running_loop().time() < deadline, "the checkpointer did not run"
                    await asyncio.sleep(0.001)
        assert store.checkpointer.restarts > 0
        assert biggest < 8 << 20, biggest
    finally:
        await store.close()
