"""The warehouse targets on real databases: DuckDB in a temporary file, PostgreSQL, and dlt (on DuckDB)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from eventstreams.warehouse.columns import Column
from eventstreams.warehouse.targets import DltTarget, Target, WarehouseBusy, WarehouseError, open_target
from tests.conftest import drop_pg_database, pg_database

COLS = [Column("id", "varchar"), Column("n", "integer"), Column("x", "float"), Column("ok", "boolean"),
        Column("sent_at", "timestamp"), Column("from", "varchar")]  # fmt: skip


@pytest.fixture(params=["duckdb", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "duckdb":
        t = open_target(f"duckdb:///{tmp_path}/w.duckdb")
        yield t
        t.close()
        return
    name = f"es_wh_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    t = open_target(pg_database(name))
    try:
        yield t
    finally:
        t.close()
        drop_pg_database(name)


def _all(t: Target, sql: str) -> list[dict[str, object]]:
    names, rows = t.query(sql)
    return [dict(zip(names, r, strict=True)) for r in rows]


def test_create_evolve_and_types_round_trip(target: Target) -> None:
    got = target.ensure_table("s1", "msgs", COLS[:3])
    assert [(c.name, c.type) for c in got] == [("id", "varchar"), ("n", "integer"), ("x", "float")]
    got = target.ensure_table("s1", "msgs", [*COLS, Column("n", "varchar")])  # n keeps its first type
    assert {c.name: c.type for c in got} == {c.name: c.type for c in COLS}
    at = datetime(2026, 3, 29, 6, 0, 58, 120000, tzinfo=timezone(timedelta(hours=2)))
    row = {"id": "SM1", "n": 2**62, "x": 0.1, "ok": False, "sent_at": at, "from": "+15005550006"}
    assert target.upsert("s1", "msgs", COLS, [row]) == 1
    (back,) = _all(target, 'SELECT id, n, x, ok, sent_at, "from" FROM s1.msgs')
    assert back == {**row, "sent_at": at.astimezone(UTC)}
    assert back["sent_at"].utcoffset() == timedelta(0)  # type: ignore[union-attr]


def test_upsert_last_write_wins_and_replaces_given_columns(target: Target) -> None:
    target.ensure_table("s2", "t", COLS)
    target.upsert("s2", "t", COLS, [{"id": "a", "n": 1, "x": 1.0}, {"id": "b", "n": 1}])
    # within one call the last row of a key wins; a key seen again replaces the given columns
    n = target.upsert("s2", "t", COLS[:2], [{"id": "a", "n": 2}, {"id": "a", "n": 3}, {"id": "c", "n": 1}])
    assert n == 2
    assert _all(target, "SELECT id, n, x FROM s2.t ORDER BY id") == [
        {"id": "a", "n": 3, "x": 1.0}, {"id": "b", "n": 1, "x": None}, {"id": "c", "n": 1, "x": None}]  # fmt: skip
    target.upsert("s2", "t", COLS[:3], [{"id": "a", "n": 4}])  # x given as a column, absent from the row: NULL
    assert _all(target, "SELECT n, x FROM s2.t WHERE id = 'a'") == [{"n": 4, "x": None}]


def test_merge_updates_only_the_columns_a_row_has(target: Target) -> None:
    cols = [Column("id", "varchar"), Column("name", "varchar"), Column("plan", "varchar"), Column("age", "integer")]
    target.ensure_table("s3", "users", cols)
    target.upsert("s3", "users", cols, [{"id": "42", "name": "Ada", "plan": "free"}], merge=True)
    target.upsert("s3", "users", cols, [{"id": "42", "plan": "pro"}, {"id": "42", "age": 36},
                                        {"id": "7", "name": "Bo"}], merge=True)  # fmt: skip
    assert _all(target, "SELECT * FROM s3.users ORDER BY id") == [
        {"id": "42", "name": "Ada", "plan": "pro", "age": 36}, {"id": "7", "name": "Bo", "plan": None, "age": None}]


@pytest.mark.parametrize("bad", ["Users", "a-b", "x; drop table y", "1abc", "", "a" * 64, 'q"uote'])
def test_bad_identifiers_are_refused(target: Target, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid warehouse"):
        target.ensure_table(bad, "t", COLS)
    with pytest.raises(ValueError, match="invalid warehouse"):
        target.ensure_table("ok", bad, COLS)
    with pytest.raises(ValueError, match="invalid warehouse"):
        target.upsert("ok", "t", [Column(bad, "varchar")], [{bad: "x", "id": "1"}])


def test_a_failed_upsert_writes_nothing(target: Target) -> None:
    target.ensure_table("s4", "t", COLS)
    with pytest.raises(Exception):  # the driver's own error for a value of the wrong type
        target.upsert("s4", "t", COLS[:2], [{"id": "a", "n": 1}, {"id": "b", "n": "not a number"}])
    assert _all(target, "SELECT count(*) AS c FROM s4.t") == [{"c": 0}]


def test_100k_rows_in_pages(target: Target) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"id": f"SM{i:032x}", "n": i, "x": i / 2, "ok": i % 3 == 0, "sent_at": start + timedelta(seconds=i),
             "from": f"+1500555{i % 100:04d}"} for i in range(100_000)]  # fmt: skip
    target.ensure_table("s5", "messages", COLS)
    for i in range(0, len(rows), 1000):
        target.upsert("s5", "messages", COLS, rows[i : i + 1000])
    # a second pass over half of them, changed: still 100k rows, the new values
    for i in range(0, 50_000, 1000):
        target.upsert("s5", "messages", COLS, [{**r, "n": -r["n"]} for r in rows[i : i + 1000]])  # type: ignore[operator]
    (got,) = _all(target, "SELECT count(*) AS c, count(DISTINCT id) AS d, sum(n) AS s, max(sent_at) AS m FROM s5.messages")
    expected = sum(range(50_000, 100_000)) - sum(range(50_000))
    assert (got["c"], got["d"], int(got["s"]), got["m"]) == (100_000, 100_000, expected,  # type: ignore[call-overload]
                                                             start + timedelta(seconds=99_999))  # fmt: skip


def test_urls() -> None:
    with pytest.raises(WarehouseError, match="unsupported"):
        open_target("mysql://u:secret@h/db")
    with pytest.raises(WarehouseError) as info:
        open_target("ftp://u:secret@h/db")
    assert "secret" not in str(info.value)
    with pytest.raises(WarehouseError, match="nothing has been loaded"):
        open_target("duckdb:///./no/such/file.duckdb", read_only=True)


def test_duckdb_file_held_by_another_process_is_busy(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/busy.duckdb"
    t = open_target(url)
    t.ensure_table("s", "t", COLS[:1])
    t.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.read()", f"{tmp_path}/busy.duckdb"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy, match="being written by another process"):
            open_target(url, read_only=True)
        with pytest.raises(WarehouseBusy):
            open_target(url)
    finally:
        holder.communicate("", timeout=10)
    t = open_target(url, read_only=True)  # free again once the writer is gone
    assert t.query("SELECT count(*) FROM s.t") == (["count_star()"], [(0,)])
    t.close()


def test_dlt_target_on_duckdb(tmp_path: Path) -> None:
    t = DltTarget("duckdb", f"/{tmp_path}/dlt.duckdb", pipelines_dir=str(tmp_path / "pipelines"))
    cols = [Column("id", "varchar"), Column("n", "integer"), Column("sent_at", "timestamp"), Column("name", "varchar")]
    at = datetime(2026, 3, 29, 4, 0, 58, tzinfo=UTC)
    t.ensure_table("dl", "users", cols)
    assert t.upsert("dl", "users", cols, [{"id": "a", "n": 1, "sent_at": at, "name": "Ada"}, {"id": "b", "n": 1}]) == 2
    t.upsert("dl", "users", cols, [{"id": "a", "n": 2, "sent_at": at}, {"id": "a", "n": 3, "sent_at": at}])
    t.upsert("dl", "users", cols, [{"id": "b", "name": "Bo"}], merge=True)  # n of b stays
    names, rows = t.query("SELECT id, n, sent_at, name FROM users ORDER BY id")
    assert [dict(zip(names, r, strict=True)) for r in rows] == [
        {"id": "a", "n": 3, "sent_at": at, "name": None}, {"id": "b", "n": 1, "sent_at": None, "name": "Bo"}]  # fmt: skip
    assert {c.name: c.type for c in t.ensure_table("dl", "users", ())} == {c.name: c.type for c in cols}
    t.close()


def test_duckdb_schema_named_like_the_file(tmp_path: Path) -> None:
    t = open_target(f"duckdb:///{tmp_path}/warehouse.duckdb")  # DuckDB's catalog is "warehouse" too
    t.ensure_table("warehouse", "t", COLS[:2])
    t.upsert("warehouse", "t", COLS[:2], [{"id": "a", "n": 1}])
    assert t.query("SELECT n FROM warehouse.warehouse.t") == (["n"], [(1,)])
    t.close()


def test_the_sql_questions_in_docs_run(target: Target) -> None:
    """docs/warehouse.md's example questions, on tables shaped like the object source's."""
    text = (Path(__file__).parents[2] / "docs" / "warehouse.md").read_text()
    questions = [block.split("```", 1)[0] for block in text.split("```sql\n")[1:]]
    assert len(questions) == 3
    v, i, f, ts = "varchar", "integer", "float", "timestamp"
    shapes = {
        "messages": [("id", v), ("account_sid", v), ("status", v), ("direction", v), ("date_sent", ts),
                     ("date_created", ts), ("from", v), ("to", v), ("error_code", i), ("price", f)],
        "calls": [("id", v), ("status", v), ("start_time", ts), ("end_time", ts), ("duration", i), ("from", v),
                  ("to", v)],
        "call_feedback": [("id", v), ("quality_score", i), ("issues", v)],
    }  # fmt: skip
    day = datetime(2026, 3, 1, 12, tzinfo=UTC)
    rows = {
        "messages": [{"id": f"SM{n}", "status": "undelivered" if n % 4 == 0 else "delivered", "direction": "outbound-api",
                      "date_sent": day + timedelta(hours=n), "date_created": day + timedelta(hours=n),
                      "from": "+15005550006"} for n in range(40)],
        "calls": [{"id": "CA1", "start_time": day, "duration": 30, "from": "+1", "to": "+2"},
                  {"id": "CA2", "start_time": day, "duration": 5, "from": "+1", "to": "+3"}],
        "call_feedback": [{"id": "CA1", "quality_score": 5}, {"id": "CA2", "quality_score": 1, "issues": "echo"}],
    }  # fmt: skip
    for table, shape in shapes.items():
        cols = [Column(n, t) for n, t in shape]  # type: ignore[arg-type]
        target.ensure_table("twilio", table, cols)
        target.upsert("twilio", table, cols, rows[table])
    by_day = target.query(questions[0])[1]
    assert [(str(r[0]), r[1], r[2]) for r in by_day] == [
        ("2026-03-01", "delivered", 9), ("2026-03-01", "undelivered", 3), ("2026-03-02", "delivered", 18),
        ("2026-03-02", "undelivered", 6), ("2026-03-03", "delivered", 3), ("2026-03-03", "undelivered", 1)]
    (sender,) = target.query(questions[1])[1]
    assert (sender[0], sender[1], sender[2], float(sender[3])) == ("+15005550006", 40, 10, 25.0)
    low = target.query(questions[2])[1]
    assert [(r[0], r[5], r[6]) for r in low] == [("CA2", 1, "echo")]


def test_an_integer_column_widens_to_float(target: Target) -> None:
    from eventstreams.warehouse.events import Batch, load_batch

    batch = Batch()
    batch.tables["orders"] = [{"id": "a", "total": 3}, {"id": "b", "total": 2.5}]  # 3 first, then a fraction
    load_batch(target, "widen", batch)
    later = Batch()
    later.tables["orders"] = [{"id": "c", "qty": 1}]
    load_batch(target, "widen", later)
    later = Batch()
    later.tables["orders"] = [{"id": "d", "qty": 1.25}]  # an integer column from an earlier load widens
    load_batch(target, "widen", later)
    rows = dict((r[0], (r[1], r[2])) for r in target.query("SELECT id, total, qty FROM widen.orders")[1])
    assert rows == {"a": (3.0, None), "b": (2.5, None), "c": (None, 1.0), "d": (None, 1.25)}
