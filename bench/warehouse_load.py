"""How fast the warehouse targets upsert, the way the object source loads: pages of 1000 rows, one
transaction each.

    python -m bench.warehouse_load [--rows 100000] [--dlt-pages 10] [--pg postgresql://postgres@127.0.0.1/postgres]

Message-shaped rows (17 columns: sids, statuses, phones, body, three timestamps, price, counts) are
upserted into a fresh table by DuckDBTarget (pyarrow page → INSERT … ON CONFLICT), by the same SQL fed
with ``executemany`` (the alternative considered), by PostgresTarget (COPY → INSERT … ON CONFLICT), and by
DltTarget on DuckDB and PostgreSQL (``--dlt-pages`` pages only: each ``pipeline.run`` costs about half a
second, so rows/s is from those pages). Then every lean target upserts the same rows again (all
conflicts: the incremental re-sync case). The limit: one raw DuckDB ``INSERT`` of all rows as one arrow
table into a table without a key. Prints rows/s per case.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from eventstreams.warehouse.columns import Column
from eventstreams.warehouse.targets import DltTarget, Target, _arrow, open_target, q

COLUMNS = [Column(n, t) for n, t in [  # type: ignore[arg-type]
    ("id", "varchar"), ("account_sid", "varchar"), ("messaging_service_sid", "varchar"), ("status", "varchar"),
    ("direction", "varchar"), ("from", "varchar"), ("to", "varchar"), ("body", "varchar"),
    ("date_created", "timestamp"), ("date_sent", "timestamp"), ("date_updated", "timestamp"), ("price", "float"),
    ("price_unit", "varchar"), ("num_segments", "integer"), ("num_media", "integer"), ("error_code", "integer"),
    ("api_version", "varchar")]]  # fmt: skip
STATUSES = ("delivered", "delivered", "delivered", "sent", "undelivered", "failed")


def rows(n: int) -> list[dict[str, Any]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        status = STATUSES[i % len(STATUSES)]
        at = start + timedelta(seconds=i * 7)
        out.append({
            "id": f"SM{uuid.UUID(int=i).hex}", "account_sid": "AC" + "1" * 32, "messaging_service_sid": None,
            "status": status, "direction": "outbound-api", "from": f"+1500555{i % 50:04d}",
            "to": f"+1415{i % 9_999_991:07d}", "body": f"Your code is {i % 1_000_000:06d}. Thanks for shopping!",
            "date_created": at, "date_sent": at + timedelta(seconds=1), "date_updated": at + timedelta(seconds=5),
            "price": -0.0079 * (1 + i % 2), "price_unit": "USD", "num_segments": 1 + i % 2, "num_media": 0,
            "error_code": 30003 if status == "undelivered" else None, "api_version": "2010-04-01",
        })  # fmt: skip
    return out


def pages(data: Sequence[dict[str, Any]], size: int = 1000) -> list[Sequence[dict[str, Any]]]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def timed(label: str, n: int, fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    print(f"{label:<58} {n:>7} rows {dt:7.2f} s {n / dt:>10,.0f} rows/s", flush=True)
    return n / dt


def upsert_all(t: Target, schema: str, data: Sequence[dict[str, Any]]) -> None:
    for page in pages(data):
        t.upsert(schema, "messages", COLUMNS, page)


def duckdb_executemany(path: str, data: Sequence[dict[str, Any]]) -> None:
    import duckdb

    t = open_target(f"duckdb:///{path}")
    t.ensure_table("em", "messages", COLUMNS)
    t.close()
    conn = duckdb.connect(path)
    names = ", ".join(q(c.name) for c in COLUMNS)
    sets = ", ".join(f"{q(c.name)} = excluded.{q(c.name)}" for c in COLUMNS[1:])
    sql = (f"INSERT INTO em.messages ({names}) VALUES ({', '.join('?' * len(COLUMNS))}) "
           f"ON CONFLICT (id) DO UPDATE SET {sets}")  # fmt: skip
    for page in pages(data):
        conn.execute("BEGIN")
        conn.executemany(sql, [[r[c.name] for c in COLUMNS] for r in page])
        conn.execute("COMMIT")
    conn.close()


def _with_password(url: str) -> str:
    # dlt refuses PostgreSQL credentials without a password, even where the server trusts the user
    head, sep, tail = url.partition("@")
    return f"{head}:unused{sep}{tail}" if sep and ":" not in head.split("://", 1)[1] else url


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dlt-pages", type=int, default=10)
    ap.add_argument("--executemany-rows", type=int, default=2_000, help="executemany is slow: fewer rows")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL")
    args = ap.parse_args()
    data = rows(args.rows)
    tmp = tempfile.mkdtemp(prefix="wh-bench-")
    pg_name = f"wh_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{pg_name}"')
    pg_url = args.pg.rsplit("/", 1)[0] + "/" + pg_name
    try:
        duck = open_target(f"duckdb:///{tmp}/lean.duckdb")
        duck.ensure_table("bench", "messages", COLUMNS)
        timed("DuckDBTarget, 1000-row upserts, new rows", len(data), lambda: upsert_all(duck, "bench", data))
        timed("DuckDBTarget, 1000-row upserts, all conflicts", len(data), lambda: upsert_all(duck, "bench", data))
        duck.close()

        few = data[: args.executemany_rows]
        timed("DuckDB executemany ON CONFLICT, 1000-row txns, new rows", len(few),
              lambda: duckdb_executemany(f"{tmp}/executemany.duckdb", few))  # fmt: skip

        pg = open_target(pg_url)
        pg.ensure_table("bench", "messages", COLUMNS)
        timed("PostgresTarget, 1000-row upserts, new rows", len(data), lambda: upsert_all(pg, "bench", data))
        timed("PostgresTarget, 1000-row upserts, all conflicts", len(data), lambda: upsert_all(pg, "bench", data))
        pg.close()

        some = data[: 1000 * args.dlt_pages]
        for dest, rest in (("duckdb", f"/{tmp}/dlt.duckdb"), ("postgres", _with_password(pg_url).split("://", 1)[1])):
            dlt = DltTarget(dest, rest, pipelines_dir=f"{tmp}/pipelines")
            timed(f"DltTarget({dest}), 1000-row runs, new rows", len(some), lambda: upsert_all(dlt, "dltbench", some))  # noqa: B023
            dlt.close()

        import duckdb

        conn = duckdb.connect(f"{tmp}/raw.duckdb")
        body = ", ".join(f"{q(c.name)} {t}" for c, t in zip(COLUMNS, ["VARCHAR"] * 8 + ["TIMESTAMPTZ"] * 3 +
                         ["DOUBLE", "VARCHAR", "BIGINT", "BIGINT", "BIGINT", "VARCHAR"], strict=True))  # fmt: skip
        conn.execute(f"CREATE TABLE raw ({body})")
        table = _arrow(COLUMNS, data)
        conn.register("arrow_rows", table)
        timed("raw DuckDB INSERT of one arrow table, no key (limit)", len(data),
              lambda: conn.execute("INSERT INTO raw SELECT * FROM arrow_rows"))  # fmt: skip
        conn.close()
    finally:
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
