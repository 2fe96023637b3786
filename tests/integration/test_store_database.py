"""The store's seam on both backends: schema parity after migrating, driver
errors translated, the wake channel, and the SQLite file's permissions."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from eventstreams.store import Store, open_database
from eventstreams.store.errors import Conflict, NotFound
from eventstreams.store.queries import load
from eventstreams.store.records import AccountRow, NewEvent, SubscriptionRow
from tests.conftest import database_url, drop_pg_database


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    s = Store(open_database(database))
    await s.open()
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()


def _account(sid: str) -> AccountRow:
    return AccountRow(sid, None, "x", "active", "h", "s", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")


async def test_unique_violation_is_a_conflict(store: Store) -> None:
    await store.accounts.create(_account("AC" + "1" * 32))
    with pytest.raises(Conflict):
        await store.accounts.create(_account("AC" + "1" * 32))
    assert await store.accounts.count() == 1  # and the store goes on working


async def test_a_write_whose_referent_is_gone_is_not_found(store: Store) -> None:
    """A foreign key that finds nothing (the sink deleted by a racing request) is the store's NotFound,
    which the domain answers with Twilio's 404, never a driver error (500)."""
    await store.accounts.create(_account("AC" + "2" * 32))
    sub = SubscriptionRow("DF" + "1" * 32, "AC" + "2" * 32, "DG" + "9" * 32, "d", "t", "t")
    with pytest.raises(NotFound):
        await store.subscriptions.create(sub, [], 100, True)
    assert await store.subscriptions.get("AC" + "2" * 32, sub.sid) is None


async def test_migrating_again_applies_nothing(store: Store) -> None:
    assert await store.migrate() == []


async def test_wake_channel_hears_committed_work(store: Store) -> None:
    heard: asyncio.Queue[list[str]] = asyncio.Queue()
    channel = store.wake_channel()
    await channel.listen(heard.put_nowait)
    try:
        event = NewEvent("EV1", "com.example.t", None, "2026-01-01T00:00:00Z", "{}")
        # PostgreSQL: LISTEN starts on its own connection; publish until the channel hears one
        for _ in range(50):
            await store.deliveries.enqueue_for_sink("AC" + "2" * 32, "DG" + "3" * 32, [event], 1)
            try:
                got = await asyncio.wait_for(heard.get(), 0.2)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("the wake channel heard nothing")
        assert got == ["DG" + "3" * 32]
    finally:
        await channel.close()


def _sqlite_schema(path: Path) -> dict[str, set[str]]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: {r[0] for r in conn.execute("SELECT name FROM pragma_table_info(?)", (t,))} for t in tables}
    finally:
        conn.close()


def _pg_schema(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        ).fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


async def _migrate(url: str) -> None:
    s = Store(open_database(url))
    await s.open()
    try:
        await s.migrate()
    finally:
        await s.close()


async def test_sqlite_and_postgres_schemas_match(tmp_path: Path) -> None:
    """Same tables, same columns per table, after every migration on both dialects."""
    lite_url, _ = database_url("sqlite", tmp_path)
    pg_url, pg_name = database_url("postgres", tmp_path)
    try:
        await _migrate(lite_url)
        await _migrate(pg_url)
        lite = _sqlite_schema(tmp_path / "eventstreams.db")
        pg = _pg_schema(pg_url)
    finally:
        assert pg_name is not None
        drop_pg_database(pg_name)
    assert "events" in lite and "schema_migrations" in lite
    assert sorted(lite) == sorted(pg)
    for table in lite:
        assert lite[table] == pg[table], table


def test_sqlite_database_files_are_private(tmp_path: Path) -> None:
    """Finding 12: the database (and its -wal/-shm) hold message bodies and phone numbers: 0600."""
    old = os.umask(0o022)  # a usual umask, which gave 0644 before
    try:
        url, _ = database_url("sqlite", tmp_path / "data")
        asyncio.run(_migrate(url))

        async def write_and_look() -> list[int]:
            s = Store(open_database(url))
            await s.open()
            try:
                await s.accounts.create(_account("AC" + "4" * 32))
                base = tmp_path / "data" / "eventstreams.db"
                files = [base, Path(f"{base}-wal"), Path(f"{base}-shm")]
                assert all(f.exists() for f in files)  # WAL files exist while a connection is open
                return [stat.S_IMODE(f.stat().st_mode) for f in files]
            finally:
                await s.close()

        assert asyncio.run(write_and_look()) == [0o600, 0o600, 0o600]
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    finally:
        os.umask(old)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_every_area_loads_its_named_queries(dialect: str) -> None:
    from eventstreams.store.postgres import PostgresDialect
    from eventstreams.store.sqlite import SqliteDialect

    d = SqliteDialect() if dialect == "sqlite" else PostgresDialect()
    for area in ("accounts", "catalogue", "sinks", "deliveries", "history", "alerts", "bridge", "retention", "store"):
        q = load(area, d)
        assert q.names(), area
        for name in q.names():
            sql = q[name]
            assert "LIST(" not in sql and "{" not in sql, (area, name)  # markers expanded


async def test_postgres_reruns_an_operation_after_a_serialization_failure_or_deadlock(tmp_path: Path) -> None:
    from psycopg import errors as pg_errors

    url, name = database_url("postgres", tmp_path)
    db = open_database(url)
    await db.open()
    try:
        tries: list[int] = []

        def flaky(tx: object) -> str:
            tries.append(1)
            if len(tries) == 1:
                raise pg_errors.SerializationFailure("could not serialize access")
            if len(tries) == 2:
                raise pg_errors.DeadlockDetected("deadlock detected")
            return "done"

        assert await db.run(flaky, write=True) == "done" and len(tries) == 3

        def always(tx: object) -> None:
            raise pg_errors.SerializationFailure("could not serialize access")

        with pytest.raises(pg_errors.SerializationFailure):  # a bounded number of tries, then the error
            await db.run(always, write=True)
    finally:
        await db.close()
        assert name is not None
        drop_pg_database(name)


GROWING = ("events", "event_ids", "dead_letters", "delivery_log", "alerts")  # tables that grow with traffic


def test_tables_growing_with_traffic_lead_an_index_with_account_sid(tmp_path: Path) -> None:
    """Rule: per-account reads of traffic tables stay index scans on both dialects."""
    import sqlite3

    lite_url, _ = database_url("sqlite", tmp_path)
    asyncio.run(_migrate(lite_url))
    conn = sqlite3.connect(tmp_path / "eventstreams.db")
    try:
        for table in GROWING:
            firsts = set()
            for idx in conn.execute("SELECT name FROM pragma_index_list(?)", (table,)).fetchall():
                cols = conn.execute("SELECT name FROM pragma_index_info(?) ORDER BY seqno", (idx[0],)).fetchall()
                firsts.add(cols[0][0] if cols else None)
            assert "account_sid" in firsts, table
    finally:
        conn.close()
    pg_url, pg_name = database_url("postgres", tmp_path)
    try:
        asyncio.run(_migrate(pg_url))
        with psycopg.connect(pg_url) as pg:
            defs = pg.execute("SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'").fetchall()
    finally:
        assert pg_name is not None
        drop_pg_database(pg_name)
    for table in GROWING:
        assert any(t == table and "(account_sid" in d for t, d in defs), table
