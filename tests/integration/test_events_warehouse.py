"""The events warehouse end to end: messages sent with segment-analytics-python and Event Streams events
published over HTTP, loaded into Segment's tables in DuckDB (and, for the main path, in PostgreSQL too), on both
store backends."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from segment.analytics import Client as SegmentClient

from eventstreams.catalog import builtin_examples
from eventstreams.sinks.segment import anonymous_id
from eventstreams.store.errors import Conflict
from eventstreams.warehouse.columns import Column
from eventstreams.warehouse.events import EventsWarehouse, LoadReport
from eventstreams.warehouse.targets import Target, WarehouseBusy, open_target
from tests.conftest import Server, drop_pg_database, pg_database

DELIVERED = "com.twilio.messaging.message.delivered"


def _duckdb(tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path}/w.duckdb"


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The warehouse a test loads into: a DuckDB file, or a fresh PostgreSQL database."""
    if request.param == "duckdb":
        yield _duckdb(tmp_path)
        return
    name = f"es_events_wh_{uuid.uuid4().hex[:8]}"
    yield pg_database(name)
    drop_pg_database(name)


def _setup(server: Server, tmp_path: Path, schema: str, url: str | None = None) -> tuple[str, str, str, EventsWarehouse]:
    sid, token = server.new_account("Warehouse")
    account = server.call(server.services.store.accounts.get(sid))
    _, key = server.call(server.services.sources.create(account, "web"))
    wh = EventsWarehouse(server.services.store, url or _duckdb(tmp_path), settle_s=0)
    server.call(wh.configure(sid, schema))
    return sid, token, key, wh


def _query(where: Path | str, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` on a warehouse URL, or on the DuckDB file in the directory ``where``."""
    t = open_target(where if isinstance(where, str) else _duckdb(where), read_only=True)
    try:
        names, rows = t.query(sql)
    finally:
        t.close()
    return [dict(zip(names, r, strict=True)) for r in rows]


def _publish(server: Server, auth: tuple[str, str], events: list[dict[str, Any]]) -> None:
    r = requests.post(f"{server.url}/v1/Events", data=json.dumps(events), auth=auth, timeout=10,
                      headers={"Content-Type": "application/cloudevents-batch+json"})  # fmt: skip
    assert r.status_code == 201, r.text


def test_segment_calls_and_events_land_in_segment_tables(server: Server, tmp_path: Path, warehouse_url: str) -> None:
    # schema names are claimed across the store (the session's server): one per target
    schema = "web_events" if warehouse_url.startswith("duckdb") else "web_events_pg"
    sid, token, key, wh = _setup(server, tmp_path, schema, warehouse_url)
    errors: list[Any] = []
    seg = SegmentClient(key, host=server.url, sync_mode=True, on_error=lambda e, b: errors.append(e))
    seg.identify("42", {"firstName": "Ada", "plan": "free", "age": 36}, message_id="i-1")
    seg.track("42", "Order Completed", {"orderId": "o-1", "revenue": 9.5, "items": 2, "coupon": True,
              "shipping": {"zipCode": "94107"}, "products": [{"sku": "a"}]}, message_id="t-1")  # fmt: skip
    seg.track(anonymous_id="anon-1", event="Signed Up", properties={"event": "clash"}, message_id="t-2")
    seg.page("42", "Docs", "Pricing", {"url": "https://example.com/p", "title": "P"}, message_id="p-1")
    seg.screen("42", "App", "Home", {"tab": "feed"}, message_id="s-1")
    seg.group("42", "g-1", {"employees": 50}, message_id="g-1")
    seg.alias(previous_id="anon-1", user_id="42", message_id="a-1")
    seg.identify("42", {"plan": "pro"}, message_id="i-2")  # users keeps firstName (merged)
    assert errors == []
    data = builtin_examples()["Messaging.MessageStatus"]
    latest = max(data)
    _publish(server, (sid, token), [{"specversion": "1.0", "type": DELIVERED, "source": "/test", "id": "EZ1",
                                     "time": "2026-03-29T04:00:58.120Z", "data": data[latest]}])  # fmt: skip

    report = server.call(wh.run_once(sid))
    assert report.tracking_messages == 8 and report.events == 1
    assert report.tables == {"identifies": 2, "users": 1, "tracks": 3, "order_completed": 1, "signed_up": 1,
                             "pages": 1, "screens": 1, "groups": 1, "aliases": 1,
                             "com_twilio_messaging_message_delivered": 1}  # fmt: skip

    tracks = _query(warehouse_url, f"SELECT * FROM {schema}.tracks ORDER BY id")
    assert [(t["id"], t["event"], t["event_text"]) for t in tracks] == [
        ("EZ1", "com_twilio_messaging_message_delivered", DELIVERED), ("t-1", "order_completed", "Order Completed"),
        ("t-2", "signed_up", "Signed Up")]  # fmt: skip
    t1 = tracks[1]
    assert t1["user_id"] == "42" and t1["anonymous_id"] is None and t1["context_library_name"] == "analytics-python"
    assert isinstance(t1["received_at"], datetime) and t1["received_at"].tzinfo is not None
    assert "order_id" not in t1  # properties go to the event's table only

    (order,) = _query(warehouse_url, f"SELECT * FROM {schema}.order_completed")
    assert (order["order_id"], order["revenue"], order["items"], order["coupon"]) == ("o-1", 9.5, 2, True)
    assert order["shipping_zip_code"] == "94107" and json.loads(order["products"]) == [{"sku": "a"}]
    assert order["event"] == "order_completed" and order["user_id"] == "42"
    (signed,) = _query(warehouse_url, f"SELECT * FROM {schema}.signed_up")
    assert signed["event"] == "signed_up" and signed["property_event"] == "clash"  # standard column kept

    ids = _query(warehouse_url, f"SELECT id, first_name, plan, age FROM {schema}.identifies ORDER BY id")
    assert ids == [{"id": "i-1", "first_name": "Ada", "plan": "free", "age": 36},
                   {"id": "i-2", "first_name": None, "plan": "pro", "age": None}]  # fmt: skip
    users = _query(warehouse_url, f"SELECT id, first_name, plan, age FROM {schema}.users")
    assert users == [{"id": "42", "first_name": "Ada", "plan": "pro", "age": 36}]

    (page,) = _query(warehouse_url, f"SELECT * FROM {schema}.pages")
    assert (page["name"], page["category"], page["url"], page["title"]) == ("Pricing", "Docs",
                                                                           "https://example.com/p", "P")  # fmt: skip
    (screen,) = _query(warehouse_url, f"SELECT name, category, tab FROM {schema}.screens")
    assert screen == {"name": "Home", "category": "App", "tab": "feed"}
    assert _query(warehouse_url, f"SELECT group_id, employees FROM {schema}.groups") == [{"group_id": "g-1",
                                                                                   "employees": 50}]  # fmt: skip
    aliases = _query(warehouse_url, f"SELECT user_id, previous_id FROM {schema}.aliases")
    assert aliases == [{"user_id": "42", "previous_id": "anon-1"}]

    (ev,) = _query(warehouse_url, f"SELECT * FROM {schema}.com_twilio_messaging_message_delivered")
    to = data[latest]["to"]
    assert ev["id"] == "EZ1" and ev["anonymous_id"] == anonymous_id(to) and ev["to"] == to
    assert ev["timestamp"] == datetime(2026, 3, 29, 4, 0, 58, 120000, tzinfo=UTC)
    assert ev["message_sid"] == data[latest]["messageSid"]

    again = server.call(wh.run_once(sid))
    assert (again.tracking_messages, again.events, again.rows) == (0, 0, 0)
    row = server.call(wh.get(sid))
    assert row is not None and row.tracking_seq == report.tracking_seq and row.rows_loaded == report.rows

    seg.track("42", "Order Completed", {"orderId": "o-2", "revenue": "12"}, message_id="t-3")
    more = server.call(wh.run_once(sid))
    assert (more.tracking_messages, more.tables) == (1, {"tracks": 1, "order_completed": 1})
    revenue = _query(warehouse_url, f"SELECT revenue FROM {schema}.order_completed WHERE id = 't-3'")
    assert revenue == [{"revenue": 12.0}]  # the column stays float: "12" converted


class FailingTarget:
    """A DuckDB target whose ``fail_at``-th upsert raises (a crash between two tables of a batch)."""

    def __init__(self, inner: Target, fail_at: int) -> None:
        self.inner, self.fail_at, self.upserts = inner, fail_at, 0

    def ensure_table(self, schema: str, table: str, columns: Sequence[Column], key: str = "id") -> list[Column]:
        return self.inner.ensure_table(schema, table, columns, key)

    def upsert(self, schema: str, table: str, columns: Sequence[Column], rows: Sequence[Mapping[str, Any]],
               key: str = "id", *, merge: bool = False) -> int:  # fmt: skip
        self.upserts += 1
        if self.upserts == self.fail_at:
            raise RuntimeError("killed mid-batch")
        return self.inner.upsert(schema, table, columns, rows, key, merge=merge)

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        return self.inner.query(sql, params)

    def close(self) -> None:
        self.inner.close()


def test_positions_move_only_after_rows_so_a_failed_batch_loads_again(server: Server, tmp_path: Path) -> None:
    sid, _, key, wh = _setup(server, tmp_path, "crashy")
    seg = SegmentClient(key, host=server.url, sync_mode=True)
    for i in range(5):
        seg.track(f"u{i}", "Clicked", {"n": i}, message_id=f"c-{i}")
    wh.batch_size = 2
    # each batch writes tracks then clicked: the 4th upsert is batch 2's second table
    wh.open = lambda url: FailingTarget(open_target(url), fail_at=4)
    with pytest.raises(RuntimeError, match="killed"):
        server.call(wh.run_once(sid))
    row = server.call(wh.get(sid))
    assert row is not None and row.rows_loaded == 4  # batch 1 only: 2 tracks + 2 clicked
    first_seq = row.tracking_seq
    assert _query(tmp_path, "SELECT count(*) AS n FROM crashy.tracks") == [{"n": 4}]  # batch 2's tracks landed
    assert _query(tmp_path, "SELECT count(*) AS n FROM crashy.clicked") == [{"n": 2}]

    wh.open = open_target
    report = server.call(wh.run_once(sid))
    assert report.tracking_messages == 3  # batch 2 again, then batch 3
    assert server.call(wh.get(sid)).tracking_seq > first_seq  # type: ignore[union-attr]
    assert _query(tmp_path, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM crashy.tracks") == [{"n": 5, "d": 5}]
    assert _query(tmp_path, "SELECT list(n ORDER BY n) AS n FROM crashy.clicked") == [{"n": [0, 1, 2, 3, 4]}]


def test_schema_claims_and_leases(server: Server, tmp_path: Path) -> None:
    a, _, _, wh = _setup(server, tmp_path, "claimed_a")
    b, _ = server.new_account("Other")
    with pytest.raises(Conflict):
        server.call(wh.configure(b, "claimed_a"))
    with pytest.raises(ValueError):
        server.call(wh.configure(b, "Bad-Name"))
    server.call(wh.configure(b, "claimed_b", interval_seconds=60))
    moved = server.call(wh.configure(a, "claimed_a2"))  # a new schema frees the old name
    assert moved.schema_name == "claimed_a2" and moved.tracking_seq == 0
    server.call(wh.configure(b, "claimed_a"))  # b may take it now; b's old name is released
    server.call(wh.configure(a, "claimed_b"))

    repo = server.services.store.events_warehouse
    now = 4_000_000_000.0  # far ahead: both are due, whatever else the session server holds

    async def race() -> list[list[str]]:
        return list(await asyncio.gather(*(repo.claim_due(f"owner-{i}", now, 30, 1000) for i in range(4))))

    claimed = [sid for got in server.call(race()) for sid in got if sid in (a, b)]
    assert sorted(claimed) == sorted([a, b])  # each once: never two owners
    assert [s for s in server.call(repo.claim_due("late", now + 10, 30, 1000)) if s in (a, b)] == []
    owner_of_a = server.call(repo.get(a)).lease_owner  # type: ignore[union-attr]
    assert not server.call(repo.release(a, "someone-else", now + 60, None, "x"))
    assert server.call(repo.release(a, owner_of_a, now + 60, "boom", "x"))
    r = server.call(repo.get(a))
    assert r is not None and r.lease_owner is None and r.next_run_at == now + 60 and r.last_error == "boom"
    assert a not in server.call(repo.claim_due("next", now + 59, 30, 1000))
    assert a in server.call(repo.claim_due("next", now + 61, 30, 1000))
    off = server.call(wh.configure(b, enabled=False))
    assert not off.enabled
    assert b not in server.call(repo.claim_due("next", now + 3600, 30, 1000))


def test_run_due_loads_and_schedules(server: Server, tmp_path: Path) -> None:
    sid, _, key, wh = _setup(server, tmp_path, "scheduled")
    SegmentClient(key, host=server.url, sync_mode=True).track("7", "Opened", {}, message_id="o-1")
    t = [4_100_000_000.0]
    wh.now = lambda: t[0]
    reports: list[LoadReport] = [r for r in server.call(wh.run_due("me")) if r.account_sid == sid]
    assert len(reports) == 1 and reports[0].tables == {"tracks": 1, "opened": 1}
    row = server.call(wh.get(sid))
    assert row is not None and row.next_run_at == t[0] + 3600 and row.lease_owner is None and row.last_error is None


def test_rows_younger_than_the_settle_window_wait_for_the_next_load(server: Server, tmp_path: Path) -> None:
    sid, token, key, wh = _setup(server, tmp_path, "settling")
    SegmentClient(key, host=server.url, sync_mode=True).track("9", "Tapped", {}, message_id="s-1")
    data = builtin_examples()["Messaging.MessageStatus"]
    _publish(server, (sid, token), [{"specversion": "1.0", "type": DELIVERED, "source": "/t", "id": "EZ9",
                                     "data": data[max(data)]}])  # fmt: skip
    wh.settle_s = 30.0
    early = server.call(wh.run_once(sid))
    assert (early.tracking_messages, early.events) == (0, 0)
    wh.now = lambda: time.time() + 31
    later = server.call(wh.run_once(sid))
    assert (later.tracking_messages, later.events) == (1, 1)


def test_a_busy_warehouse_is_retried_soon(server: Server, tmp_path: Path) -> None:
    sid, _, _, wh = _setup(server, tmp_path, "busy")
    server.call(wh.configure(sid, interval_seconds=7200))

    def busy(url: str) -> Target:
        raise WarehouseBusy("the warehouse is being written by another process")

    wh.open = busy
    t = 4_200_000_000.0
    wh.now = lambda: t
    assert [r for r in server.call(wh.run_due("me")) if r.account_sid == sid] == []
    row = server.call(wh.get(sid))
    assert row is not None and row.next_run_at == t + 60 and "another process" in (row.last_error or "")


def test_the_scheduler_of_serve_loads_the_events_warehouse(backend: str, tmp_path: Path, warehouse_url: str) -> None:
    from tests.conftest import own_server

    with own_server(backend, tmp_path, source_syncs=True, warehouse_url=warehouse_url) as srv:
        sid, _ = srv.new_account("Scheduled events")
        account = srv.call(srv.services.store.accounts.get(sid))
        _, key = srv.call(srv.services.sources.create(account, "app"))
        seg = SegmentClient(key, host=srv.url, sync_mode=True)
        seg.track("7", "Plan Chosen", {"plan": "pro"}, message_id="sched-1")
        srv.services.events_warehouse.settle_s = 0.0  # PostgreSQL's settle window would hold the row a minute
        srv.call(srv.services.events_warehouse.configure(sid, "scheduled_events"))  # due at once
        srv.services.scheduler.wake.set()
        deadline = time.monotonic() + 60
        while True:  # the load runs in the server's scheduler, not here
            wh = srv.call(srv.services.store.events_warehouse.get(sid))
            if wh is not None and wh.last_run_at is not None and wh.lease_owner is None:
                break
            assert time.monotonic() < deadline, "the scheduler never loaded the events warehouse"
            time.sleep(0.1)
        assert wh.last_error is None and wh.next_run_at is not None and wh.next_run_at > time.time() + 60
        rows = _query(warehouse_url, "SELECT id, plan FROM scheduled_events.plan_chosen")
        assert rows == [{"id": "sched-1", "plan": "pro"}]
