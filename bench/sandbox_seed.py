"""How fast ``eventstreams sandbox seed`` is, and what bounds it.

    python -m bench.sandbox_seed [--backend sqlite|postgres] [--messages 100000] [--calls 20000]
                                 [--subaccounts 3] [--seed 1] [--profile generate|insert]

Generates the data set (``sandbox.seed.generate``) and inserts it through the store
(``store.sandbox.insert_many``, as the command does) into a fresh database (a temporary SQLite
file, or the PostgreSQL database ``seedbench``, dropped and created again from
EVENTSTREAMS_BENCH_PG_URL's server), then inserts the same rows into another fresh database
with the driver alone, in transactions of the same size: on SQLite ``executemany`` with named
parameters (dicts, the statement the single-row insert uses) and with positional tuples (what the
store's bulk path does); on PostgreSQL ``COPY`` (what the store does) and ``executemany``. The
fastest raw rate is the limit the store's insert compares to. Prints rows/s for each step.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from eventstreams.config import Settings
from eventstreams.runtime import Runtime, build_runtime
from eventstreams.sandbox import seed as seeding
from eventstreams.store.db import asdict
from eventstreams.store.postgres import to_pyformat
from eventstreams.store.queries import load
from eventstreams.store.sqlite import SqliteDialect

from .harness import pg_create, pg_drop

NOW = 1_796_083_200  # 2026-12-01: fixed, so every run measures the same rows
CHUNK = 5000  # store.sandbox.insert_many's default


def settings(url: str, data_dir: Path) -> Settings:
    return Settings(database_url=url, data_dir=data_dir, delivery=False)


async def accounts(rt: Runtime, subaccounts: int) -> list[str]:
    main, _ = await rt.accounts.create("bench main")
    p = await rt.accounts.principal_of(main.sid)
    return [main.sid] + [(await rt.accounts.create_sub(p, f"bench sub {i}"))[0].sid for i in range(subaccounts)]


def raw_sqlite(path: str, data: seeding.Dataset, positional: bool) -> float:
    """Seconds to insert ``data`` with sqlite3 alone: same schema, pragmas and transaction size."""
    q = load("sandbox", SqliteDialect())
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-65536"):
        conn.execute(f"PRAGMA {pragma}")
    batches: list[tuple[str, list[Any]]] = []
    for kind, rows in data.collections():
        sql = q[f"insert_{kind.name}"]
        if positional:  # the same statement with ? marks, the values as tuples
            cols = list(type(rows[0]).__slots__) if rows else []
            for c in sorted(cols, key=len, reverse=True):
                sql = sql.replace(f":{c}", "?")
            params: list[Any] = [tuple(getattr(r, c) for c in cols) for r in rows]
        else:
            params = [asdict(r) for r in rows]
        batches.append((sql, params))
    t = time.perf_counter()
    for sql, params in batches:
        for i in range(0, len(params), CHUNK):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, params[i : i + CHUNK])
            conn.execute("COMMIT")
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed


def raw_postgres(url: str, data: seeding.Dataset, copy: bool) -> float:
    """Seconds to insert ``data`` with psycopg alone, one transaction per chunk."""
    q = load("sandbox", SqliteDialect())
    batches = []
    for kind, rows in data.collections():
        cols = list(type(rows[0]).__slots__) if rows else []
        batches.append((kind, cols, [tuple(getattr(r, c) for c in cols) for r in rows], [asdict(r) for r in rows]))
    with psycopg.connect(url) as conn:
        t = time.perf_counter()
        for kind, cols, tuples, dicts in batches:
            for i in range(0, len(tuples), CHUNK):
                with conn.transaction(), conn.cursor() as cur:
                    if copy:
                        with cur.copy(f"COPY {kind.table} ({', '.join(cols)}) FROM STDIN") as cp:
                            for row in tuples[i : i + CHUNK]:
                                cp.write_row(row)
                    else:
                        cur.executemany(to_pyformat(q[f"insert_{kind.name}"]), dicts[i : i + CHUNK])
        return time.perf_counter() - t


async def fresh(url: str, tmp: Path, account_rows: list[Any]) -> None:
    """Migrate ``url`` and add the same accounts (the rows' foreign keys)."""
    rt = await build_runtime(settings(url, tmp))
    for row in account_rows:
        await rt.store.accounts.create(row)
    await rt.close()


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>10,.0f} rows/s  ({seconds:6.2f} s)"


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pg = args.backend == "postgres"
        url = pg_create("seedbench") if pg else f"sqlite:///{tmp}/store.db"
        rt = await build_runtime(settings(url, tmp))
        try:
            sids = await accounts(rt, args.subaccounts)
            account_rows = [await rt.store.accounts.get(s) for s in sids]
            prof = cProfile.Profile() if args.profile else None
            if prof and args.profile == "generate":
                prof.enable()
            t = time.perf_counter()
            data = seeding.generate(sids, args.messages, args.calls, args.seed, NOW)
            gen = time.perf_counter() - t
            if prof:
                prof.disable()
            n = data.rows()
            per = ", ".join(f"{k.name} {len(r):,}" for k, r in data.collections())
            print(f"rows: {n:,} ({per}); backend {url.split(':', 1)[0]}")
            print(f"generate                      {rate(n, gen)}")
            if prof and args.profile == "insert":
                prof.enable()
            t = time.perf_counter()
            for kind, rows in data.collections():
                await rt.store.sandbox.insert_many(kind, rows)
            ins = time.perf_counter() - t
            if prof:
                prof.disable()
            print(f"insert (store.insert_many)    {rate(n, ins)}")
            print(f"generate + insert             {rate(n, gen + ins)}")
        finally:
            await rt.close()
        for variant in (False, True):
            if pg:
                raw_url = pg_create("seedbench_raw")
                await fresh(raw_url, tmp, account_rows)
                raw = raw_postgres(raw_url, data, copy=variant)
                label = "raw psycopg COPY" if variant else "raw psycopg executemany"
                pg_drop("seedbench_raw")
            else:
                path = f"{tmp}/raw{int(variant)}.db"
                await fresh(f"sqlite:///{path}", tmp, account_rows)
                raw = raw_sqlite(path, data, positional=variant)
                label = f"raw executemany, {'positional' if variant else 'named'}"
            print(f"{label:<30}{rate(n, raw)}")
        if pg:
            pg_drop("seedbench")
        if prof:
            pstats.Stats(prof).sort_stats("tottime").print_stats(20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--subaccounts", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--profile", choices=["generate", "insert"], default=None)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
