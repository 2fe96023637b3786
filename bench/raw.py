"""Raw insert limits for the publish path (issue 13): the ``events`` rows the publish scenario
stores, inserted by the database driver alone, in 100-row transactions, for a fixed time.

    python -m bench.raw sqlite   [--seconds 10] [--dir DIR]   # fresh SQLite file, the store's pragmas
    python -m bench.raw postgres [--seconds 10]               # fresh databases on EVENTSTREAMS_BENCH_PG_URL's server

Prints one JSON object (``bench.run`` runs this as a subprocess for its ``raw-sqlite`` and
``raw-postgres`` scenarios, so the figure never shares a process with ``serve``).

* Schema: the ``events`` table and its two indexes, taken verbatim from the store's
  ``002_delivery.sql`` for the backend (no ``event_ids`` dedupe rows, no deliveries).
* Rows: the columns ``insert_events`` writes (account_sid, id, type, schema_version, received_at,
  time, payload), payload = the benchmark's 783-byte CloudEvent as text, a unique id per row. The
  100 payloads of a transaction are built once and reused (only the ids change: the payload is
  stored, never indexed, and 783 bytes is under PostgreSQL's TOAST threshold, so its content does
  not change the cost); building the row tuples is inside the timed loop (~0.3 µs a row).
* SQLite: one connection, ``journal_mode=WAL``, ``synchronous=NORMAL``, ``foreign_keys=ON``,
  ``cache_size=-65536`` (store/sqlite.py), ``BEGIN IMMEDIATE`` + positional ``executemany`` (seq
  given explicitly, as the store does) + ``COMMIT`` per 100 rows.
* PostgreSQL, two ways, each on its own fresh database: ``COPY … FROM STDIN`` (psycopg
  ``cursor.copy`` + ``write_row``) and the store's ``INSERT … SELECT … FROM unnest(binary
  arrays) … RETURNING seq`` (store/postgres.py), one transaction (COMMIT) per 100 rows. The higher
  of the two is "the raw rate".
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

ACCOUNT = "AC" + "0" * 31 + "1"
EVENT_TYPE = "com.twilio.messaging.message.delivered"
COLUMNS = "account_sid, id, type, schema_version, received_at, time, payload"
BATCH = 100


def events_ddl(backend: str) -> list[str]:
    """The ``events`` table and its indexes from the store's migration, verbatim."""
    text = (resources.files("eventstreams.store") / "sql" / backend / "002_delivery.sql").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    out = []
    for stmt in "\n".join(lines).split(";"):
        s = stmt.strip()
        if s.startswith("CREATE TABLE events ") or (s.startswith("CREATE INDEX") and " ON events(" in s):
            out.append(s)
    assert len(out) == 3, out  # table + events_account_received + events_account_id
    return out


class Rows:
    """Batches of 100 ``events`` rows with unique ids."""

    def __init__(self) -> None:
        from .harness import EventFactory

        # a 9-character run id like bench.run's factories, so the events are the same 783 bytes
        f = EventFactory(f"{int(time.time()) & 0xFFFFFF:06x}r00")
        self.payloads = [f.one().decode() for _ in range(BATCH)]
        self.payload_bytes = len(self.payloads[0])
        self.n = 0
        self.time = "2026-12-03T10:00:00.000Z"

    def batch(self) -> list[tuple[Any, ...]]:
        n0 = self.n
        self.n += BATCH
        now_ms = time.time_ns() // 1_000_000
        t = self.time
        return [(ACCOUNT, f"EZ{n0 + i:030x}", EVENT_TYPE, 8, now_ms, t, p) for i, p in enumerate(self.payloads)]


def timed(seconds: float, step: Callable[[], int], warmup: int = 5) -> dict[str, Any]:
    """Run ``step`` (one 100-row transaction) for ``seconds``; rows/s and client CPU per row."""
    for _ in range(warmup):
        step()
    rows = 0
    c0, t0 = time.process_time(), time.perf_counter()
    end = t0 + seconds
    while True:
        rows += step()
        t = time.perf_counter()
        if t >= end:
            break
    dt, cpu = t - t0, time.process_time() - c0
    return {
        "rows_per_s": round(rows / dt),
        "rows": rows,
        "seconds": round(dt, 2),
        "client_cpu_us_per_row": round(1e6 * cpu / rows, 2),
    }


def raw_sqlite(seconds: float, directory: Path) -> dict[str, Any]:
    path = directory / "raw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("PRAGMA cache_size=-65536")
    for stmt in events_ddl("sqlite"):
        conn.execute(stmt)
    rows = Rows()
    sql = f"INSERT INTO events (seq, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    seq = [0]

    def step() -> int:
        first = seq[0] + 1
        batch = [(first + i, *r) for i, r in enumerate(rows.batch())]
        seq[0] += len(batch)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, batch)
        conn.execute("COMMIT")
        return len(batch)

    try:
        out = timed(seconds, step)
    finally:
        conn.close()
        size = sum(p.stat().st_size for p in directory.glob("raw.db*"))
        for p in directory.glob("raw.db*"):
            p.unlink()
    return {"method": "executemany", "payload_bytes": rows.payload_bytes, "db_mb": round(size / 2**20), **out}


def raw_postgres(seconds: float) -> dict[str, Any]:
    import os

    import psycopg

    from .harness import cpu_seconds, pg_create, pg_drop, postgres_pids

    rows = Rows()
    insert = (
        f"INSERT INTO events ({COLUMNS})"
        " SELECT %(a)s, u.id, u.type, u.v, %(now)s, u.time, u.payload FROM unnest("
        "%(ids)b::text[], %(types)b::text[], %(vs)s::int[], %(times)b::text[], %(payloads)b::text[])"
        " WITH ORDINALITY AS u(id, type, v, time, payload, n) ORDER BY u.n RETURNING seq"
    )

    def copy_step(conn: psycopg.Connection[Any]) -> Callable[[], int]:
        def step() -> int:
            batch = rows.batch()
            with conn.cursor() as cur, cur.copy(f"COPY events ({COLUMNS}) FROM STDIN") as cp:
                for r in batch:
                    cp.write_row(r)
            conn.commit()
            return len(batch)

        return step

    def unnest_step(conn: psycopg.Connection[Any]) -> Callable[[], int]:
        def step() -> int:
            batch = rows.batch()
            params = {
                "a": ACCOUNT,
                "now": batch[0][4],
                "ids": [r[1] for r in batch],
                "types": [r[2] for r in batch],
                "vs": [r[3] for r in batch],
                "times": [r[5] for r in batch],
                "payloads": [r[6] for r in batch],
            }
            got = conn.execute(insert, params, prepare=False).fetchall()
            conn.commit()
            return len(got)

        return step

    out: dict[str, Any] = {"payload_bytes": rows.payload_bytes}
    for method, make in (("copy", copy_step), ("unnest", unnest_step)):
        name = f"es_raw_{os.getpid()}_{method}"
        url = pg_create(name)
        try:
            with psycopg.connect(url) as conn:
                for stmt in events_ddl("postgres"):
                    conn.execute(stmt)
                conn.commit()
                pg0 = {p: cpu_seconds(p) for p in postgres_pids()}
                res = timed(seconds, make(conn))
                pg_cpu = sum(cpu_seconds(p) - pg0.get(p, 0.0) for p in postgres_pids())
                res["postgres_cpu_us_per_row"] = round(1e6 * pg_cpu / res["rows"], 2)
                out[method] = res
        finally:
            pg_drop(name)
    best = max(("copy", "unnest"), key=lambda m: out[m]["rows_per_s"])
    out.update(method=best, rows_per_s=out[best]["rows_per_s"])
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.raw", description=__doc__.split("\n\n")[0])
    ap.add_argument("backend", choices=["sqlite", "postgres"])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--dir", type=Path, help="where the SQLite file goes (default: a temporary directory)")
    args = ap.parse_args(argv)
    if args.backend == "sqlite":
        if args.dir is not None:
            result = raw_sqlite(args.seconds, args.dir)
        else:
            with tempfile.TemporaryDirectory(prefix="es-raw-") as tmp:
                result = raw_sqlite(args.seconds, Path(tmp))
    else:
        result = raw_postgres(args.seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
