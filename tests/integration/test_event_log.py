"""The event log and its per-sink cursors on both backends (store.deliveries): a publish writes the events
once and nothing per sink; each sink's cursor reads its account's events in log order; a batch left by a dead
worker is sent again; failures become retry rows; a cursor never steps over an event that commits late
(PostgreSQL, concurrent publishers); retention never takes what a cursor has yet to read."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from eventstreams.runtime import Runtime
from eventstreams.store.records import DeliveryResult, Leased, LeasedDelivery, NewEvent
from tests.unit.conftest import new_principal

TYPE = "com.twilio.messaging.message.delivered"
OTHER = "com.twilio.messaging.message.failed"
TEST_TYPE = "com.twilio.eventstreams.test-event"
LEASE_MS = 60_000


async def _sink(rt: Runtime, account: Any, *types: str) -> str:
    sink = await rt.control.create_sink(account, "log", "webhook", json.dumps({"destination": "http://127.0.0.1:9/x",
                                                                               "method": "POST", "batch_events": False}))  # fmt: skip
    await rt.control.create_subscription(account, "s", sink.row.sid, [json.dumps({"type": t}) for t in types])
    return sink.row.sid


def _events(n: int, type_: str = TYPE, tag: str = "") -> list[NewEvent]:
    return [NewEvent(f"{tag}{uuid.uuid4().hex}", type_, 1, "2026-12-03T00:00:00.000Z", "{}") for _ in range(n)]


async def _publish(rt: Runtime, account_sid: str, events: list[NewEvent], now_ms: int = 1_000) -> list[str]:
    out = await rt.store.deliveries.publish(account_sid, events, now_ms, 60_000)
    return out.stored


async def _lease(rt: Runtime, sink: str, now_ms: int = 2_000, n: int = 500, tag: str = "w") -> Leased:
    return await rt.store.deliveries.lease(sink, now_ms, n, f"{tag}:{uuid.uuid4().hex}", LEASE_MS)


async def _done(rt: Runtime, batch: list[LeasedDelivery], kind: str = "delivered", now_ms: int = 2_000) -> None:
    results = [DeliveryResult(d, kind, due_at=now_ms + 1000 if kind == "retry" else None, code=91304 if kind != "delivered"
                              else None, error=None if kind == "delivered" else "down") for d in batch]  # fmt: skip
    await rt.store.deliveries.complete(results, [], [], now_ms, 1)


async def _count(rt: Runtime, table: str) -> int:
    row = await rt.store.db.run(lambda tx: tx.one(f"SELECT COUNT(*) AS n FROM {table}"))
    assert row is not None
    return int(row["n"])


async def _drain(rt: Runtime, sink: str, now_ms: int = 2_000) -> list[str]:
    got: list[str] = []
    while batch := await _lease(rt, sink, now_ms):
        got += [d.event_id for d in batch]
        await _done(rt, batch, now_ms=now_ms)
    return got


async def test_a_publish_writes_the_events_once_and_each_sink_reads_them_in_order(rt: Runtime) -> None:
    a = await new_principal(rt)
    sinks = [await _sink(rt, a, TYPE) for _ in range(3)]
    ids = await _publish(rt, a.account.sid, _events(7))
    assert await _count(rt, "deliveries") == 0  # nothing per sink
    for sink in sinks:
        batch = await _lease(rt, sink, n=4)
        assert [d.event_id for d in batch] == ids[:4] and all(d.batch and not d.id for d in batch)
        assert [d.window_start for d in batch] == [1_000] * 4  # the retry window runs from arrival
        await _done(rt, batch)
        assert await _drain(rt, sink) == ids[4:]
    assert await _count(rt, "delivery_batches") == 0 and await _count(rt, "deliveries") == 0
    assert await rt.store.deliveries.backlog() == (0, 0, None)


async def test_a_cursor_reads_only_its_accounts_subscribed_types_published_after_it_subscribed(rt: Runtime) -> None:
    a, b = await new_principal(rt, "a"), await new_principal(rt, "b")
    early = await _publish(rt, a.account.sid, _events(2))  # before any subscription: nobody's
    sink = await _sink(rt, a, TYPE)
    tested = await _sink(rt, a, TEST_TYPE)
    mine = await _publish(rt, a.account.sid, _events(3))
    await _publish(rt, a.account.sid, _events(2, OTHER))  # not subscribed
    await _publish(rt, b.account.sid, _events(2))  # another account's
    await rt.operations.test_sink(a, sink)  # for that sink alone: the test-event subscriber must not read it
    got = await _drain(rt, sink, now_ms=10**13)  # the test's retry row is due at the wall clock's now
    assert got == [a.account.sid, *mine] and not set(early) & set(got)  # due retry rows first, then the log
    assert await _drain(rt, tested, now_ms=10**13) == []
    # a type added to the subscription later is read from then on, not from the cursor's old position
    sub = (await rt.store.subscriptions.list(a.account.sid, sink, _page())).items[0]
    before = await _publish(rt, a.account.sid, _events(1, OTHER))
    await rt.control.add_subscribed_event(a, sub.sid, OTHER, None)
    after = await _publish(rt, a.account.sid, _events(1, OTHER))
    assert await _drain(rt, sink) == after and before != after


def _page() -> Any:
    from eventstreams.store.records import PageQuery

    return PageQuery(size=50)


async def test_a_batch_whose_worker_died_is_sent_again_and_its_stale_outcomes_are_ignored(rt: Runtime) -> None:
    a = await new_principal(rt)
    sink = await _sink(rt, a, TYPE)
    ids = await _publish(rt, a.account.sid, _events(5))
    lost = await _lease(rt, sink, now_ms=2_000, tag="dead")  # the worker dies mid-send
    assert [d.event_id for d in lost] == ids
    held = await _lease(rt, sink, now_ms=2_000 + LEASE_MS - 1)
    assert held == [] and held.next_due == 2_000 + LEASE_MS  # still leased: nobody else sends them
    again = await _lease(rt, sink, now_ms=2_000 + LEASE_MS, tag="heir")  # the lease ran out: taken over
    assert [d.event_id for d in again] == ids and again[0].batch == lost[0].batch
    await _done(rt, lost, "retry")  # the dead worker's late answer: the batch is no longer its own
    assert await _count(rt, "deliveries") == 0
    await _done(rt, again)
    assert await _count(rt, "delivery_batches") == 0 and await _lease(rt, sink, now_ms=10**9) == []


async def test_releasing_a_dead_workers_leases_hands_on_its_batches_and_retries_and_no_one_elses(
    rt: Runtime,
) -> None:
    a = await new_principal(rt)
    dead_sink, live_sink = await _sink(rt, a, TYPE), await _sink(rt, a, TYPE)
    await _publish(rt, a.account.sid, _events(4))
    first = await _lease(rt, dead_sink, tag="host:41:dead")
    await _done(rt, first[:1], "retry")  # one retry row, due at 3_000
    await _done(rt, first[1:])
    await _publish(rt, a.account.sid, _events(3))
    lost = await _lease(rt, dead_sink, now_ms=3_000, tag="host:41:dead")  # the retry and the new events
    kept = await _lease(rt, live_sink, now_ms=3_000, tag="host:412:live")  # another worker, a pid that starts alike
    assert len(lost) == 4 and len(kept) == 7
    assert await rt.store.deliveries.release_leases("host:41:") == 2  # its retry row and its batch
    again = await _lease(rt, dead_sink, now_ms=3_000, tag="heir")  # the batch it left, taken over whole
    again += await _lease(rt, dead_sink, now_ms=3_000, tag="heir")  # then its retry
    assert sorted(d.event_id for d in again) == sorted(d.event_id for d in lost)
    assert await _lease(rt, live_sink, now_ms=3_000, tag="heir") == []  # the live worker's batch stays its own


async def test_failures_become_retry_rows_and_dead_letters(rt: Runtime) -> None:
    a = await new_principal(rt)
    sink = await _sink(rt, a, TYPE)
    ids = await _publish(rt, a.account.sid, _events(4))
    batch = await _lease(rt, sink)
    await rt.store.deliveries.complete(
        [DeliveryResult(batch[0], "delivered"), DeliveryResult(batch[1], "retry", due_at=5_000, code=91304, error="x"),
         DeliveryResult(batch[2], "dead", code=91302, error="gone"), DeliveryResult(batch[3], "skipped")],
        [], [], 2_000, 1)  # fmt: skip
    assert await rt.store.deliveries.next_due(sink) == 5_000
    empty = await _lease(rt, sink, now_ms=4_999)
    assert empty == [] and empty.next_due == 5_000  # an idle worker waits for it without asking again
    [retry] = await _lease(rt, sink, now_ms=5_000)
    assert (retry.event_id, retry.attempts, retry.window_start, retry.batch) == (ids[1], 1, 1_000, 0)
    page = await rt.store.dead_letters.list(a.account.sid, sink, _page())
    assert [(d.event_id, d.attempts, d.last_code) for d in page.items] == [(ids[2], 1, 91302)]


async def test_a_down_sinks_expired_window_dead_letters_what_its_cursor_never_reached(rt: Runtime) -> None:
    a = await new_principal(rt)
    sink = await _sink(rt, a, TYPE)
    old = await _publish(rt, a.account.sid, _events(3), now_ms=1_000)
    young = await _publish(rt, a.account.sid, _events(2), now_ms=9_000)
    n = await rt.store.deliveries.expire(sink, 5_000, 10_000, "window exhausted", 91304)
    assert n == 3
    page = await rt.store.dead_letters.list(a.account.sid, sink, _page())
    assert sorted(d.event_id for d in page.items) == sorted(old)
    assert await _drain(rt, sink, 10_000) == young


async def test_retention_keeps_what_a_cursor_has_to_read_and_an_emptied_log_goes_on(rt: Runtime) -> None:
    a = await new_principal(rt)
    sink = await _sink(rt, a, TYPE)
    await _publish(rt, a.account.sid, _events(3), now_ms=1_000)
    keep = {"log": 1, "errors": 1, "dedupe": 1, "events": 1}
    assert (await rt.store.retention.prune(10**9, keep))["events"] == 0  # unread: kept
    await _drain(rt, sink)
    assert (await rt.store.retention.prune(10**9, keep))["events"] == 3
    assert await _count(rt, "events") == 0
    later = await _publish(rt, a.account.sid, _events(2), now_ms=2_000)  # seqs go on above the cursor
    assert await _drain(rt, sink) == later


async def test_retention_deletes_by_ranges_in_chunks_up_to_the_slowest_reader(rt: Runtime) -> None:
    """Chunks of 2 rows, a transaction each: the old events up to the slower cursor go, except one a
    retry row holds; the young ones, and everything past the slower cursor, stay; another account's
    log is pruned by its own bounds."""
    a, b = await new_principal(rt), await new_principal(rt)
    fast, slow = await _sink(rt, a, TYPE), await _sink(rt, a, TYPE)
    other = await _sink(rt, b, TYPE)
    old = await _publish(rt, a.account.sid, _events(7), now_ms=1_000)
    await _publish(rt, b.account.sid, _events(3), now_ms=1_000)
    young = await _publish(rt, a.account.sid, _events(2), now_ms=5_000)
    await _drain(rt, fast)
    await _drain(rt, other)
    first = await _lease(rt, slow, n=5)  # the slow sink has read 5 of the old ones; one of them failed
    await rt.store.deliveries.complete(
        [DeliveryResult(d, "retry", due_at=9_000, code=91304, error="x") if d is first[1]
         else DeliveryResult(d, "delivered") for d in first], [], [], 2_000, 1)  # fmt: skip
    for i in range(3):  # delivery log rows, older than the log window, go in chunks too
        await rt.store.db.run(lambda tx, i=i: tx.run(
            "INSERT INTO delivery_log (account_sid, sink_sid, at, outcome, event_count, event_ids, attempt)"
            " VALUES (:a, :s, 1, 'delivered', 1, '[]', 1)", a=a.account.sid, s=fast), write=True)  # fmt: skip
    keep = {"log": 1_000, "errors": 1_000, "dedupe": 1, "events": 1_000}
    out = await rt.store.retention.prune(3_000, keep, chunk=2)
    assert out["delivery_log"] == 3
    assert out["events"] == 4 + 3  # account a: the slow cursor's 5 but the retried one; account b: all 3
    left = await rt.store.db.run(lambda tx: tx.all("SELECT id FROM events ORDER BY seq"))
    assert [r["id"] for r in left] == [old[1], *old[5:], *young]
    assert await _drain(rt, slow, now_ms=9_000) == [old[1], *old[5:], *young]  # nothing it had to read is gone


async def test_retention_checks_each_events_age_whatever_the_seq_order(rt: Runtime) -> None:
    """received_at is the publishing host's clock: a later event may carry an earlier time (another host,
    a clock stepped back). Only it is old enough; the three before it in the log are not."""
    a = await new_principal(rt)
    sink = await _sink(rt, a, TYPE)
    recent = await _publish(rt, a.account.sid, _events(3), now_ms=100_000)
    await _publish(rt, a.account.sid, _events(1), now_ms=1_000)
    await _drain(rt, sink, now_ms=100_000)
    out = await rt.store.retention.prune(100_500, {"log": 1, "errors": 1, "dedupe": 1, "events": 10_000})
    assert out["events"] == 1
    left = await rt.store.db.run(lambda tx: tx.all("SELECT id FROM events ORDER BY seq"))
    assert [r["id"] for r in left] == recent


async def test_a_lease_that_loses_the_cursor_to_another_worker_looks_again_at_once(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker moves the cursor between this lease's look and its move: nothing is taken twice,
    and the empty lease says the sink is due now (the dispatcher looks again after 5 ms, not a poll)."""
    a = await new_principal(rt)
    sink = await _sink(rt, a, TYPE)
    ids = await _publish(rt, a.account.sid, _events(3))
    deliveries = rt.store.deliveries
    read = deliveries._next_rows

    def other_worker_first(tx: Any, account: str, types: Any, pos: int, head: int, room: int) -> Any:
        tx.run("UPDATE sink_cursors SET position = position + 1 WHERE sink_sid = :s", s=sink)
        return read(tx, account, types, pos, head, room)

    monkeypatch.setattr(deliveries, "_next_rows", other_worker_first)
    lost = await _lease(rt, sink, now_ms=2_000)
    assert lost == [] and lost.next_due == 2_000
    assert await _count(rt, "delivery_batches") == 0
    monkeypatch.undo()
    assert await _drain(rt, sink) == ids[1:]  # the first went to the "other worker" (the cursor moved past it)


async def test_concurrent_publishers_never_leave_an_event_behind_a_cursor(rt: Runtime) -> None:
    """On PostgreSQL the publishes really overlap (a pool of connections); the cursor reads while they
    commit. Every acknowledged event is read exactly once."""
    a = await new_principal(rt)
    sink = await _sink(rt, a, TYPE)
    stop = asyncio.Event()
    got: list[str] = []

    async def reader() -> None:
        while True:
            batch = await _lease(rt, sink, n=37)
            got.extend(d.event_id for d in batch)
            if batch:
                await _done(rt, batch)
            elif stop.is_set():
                return
            else:
                await asyncio.sleep(0)

    async def publisher(i: int) -> list[str]:
        out: list[str] = []
        for _ in range(40):
            out += await _publish(rt, a.account.sid, _events(7, tag=f"p{i}-"))
        return out

    task = asyncio.create_task(reader())
    published = [e for ids in await asyncio.gather(*(publisher(i) for i in range(6))) for e in ids]
    stop.set()
    await task
    got += await _drain(rt, sink)
    assert len(published) == 6 * 40 * 7
    assert sorted(got) == sorted(published)  # none skipped, none twice


async def _subscription(rt: Runtime, account: Any, sink: str) -> str:
    return str((await rt.store.subscriptions.list(account.account.sid, sink, _page())).items[0].sid)


async def test_events_before_a_type_was_added_are_read_past_not_taken_for_the_end(rt: Runtime) -> None:
    """Review finding: a window of only passed-over events made the lease return nothing and next_due None."""
    a = await new_principal(rt)
    sink = await _sink(rt, a, TYPE)
    await _publish(rt, a.account.sid, _events(5, OTHER))  # behind the cursor's reach while OTHER is not taken
    await rt.control.add_subscribed_event(a, await _subscription(rt, a, sink), OTHER, None)
    ids = await _publish(rt, a.account.sid, _events(1, TYPE))
    assert await rt.store.deliveries.next_due(sink) == 1_000
    assert [d.event_id for d in await _lease(rt, sink, n=3)] == ids


async def test_a_left_batch_with_nothing_left_for_the_sink_is_done_with(rt: Runtime) -> None:
    """Review finding: a taken-over batch whose types went stayed forever and hid the sink's other work."""
    a = await new_principal(rt)
    sink = await _sink(rt, a, TYPE, OTHER)
    await _publish(rt, a.account.sid, _events(3, OTHER))
    assert len(await _lease(rt, sink)) == 3  # its worker dies holding the batch
    await rt.control.delete_subscribed_event(a, await _subscription(rt, a, sink), OTHER)
    ids = await _publish(rt, a.account.sid, _events(1, TYPE))
    assert [d.event_id for d in await _lease(rt, sink, now_ms=2_000 + LEASE_MS)] == ids
    assert await _count(rt, "delivery_batches") == 1  # the new one only


async def test_an_emptied_log_never_numbers_new_events_below_a_cursor(rt: Runtime) -> None:
    """Review finding: a database from before the counter (seqs were MAX + 1) whose log retention emptied
    numbered new events from 1 again, below every cursor."""
    a = await new_principal(rt)
    await _publish(rt, a.account.sid, _events(20))
    sink = await _sink(rt, a, TYPE)  # its cursor stands at 20
    await rt.store.db.run(lambda tx: tx.run("DELETE FROM seq_counters WHERE name = 'events'")
                          + tx.run("DELETE FROM events"), write=True)  # fmt: skip
    ids = await _publish(rt, a.account.sid, _events(3))
    assert await _drain(rt, sink) == ids


async def test_a_cursor_reads_across_a_long_stretch_of_other_accounts_events(rt: Runtime) -> None:
    """The log is read in bounded windows of seqs (widening while they hold nothing of the sink's)."""
    a, b = await new_principal(rt, "a"), await new_principal(rt, "b")
    sink = await _sink(rt, a, TYPE)
    first = await _publish(rt, a.account.sid, _events(1))
    for _ in range(60):
        await _publish(rt, b.account.sid, _events(100))  # 6,000 seqs of someone else's
    later = await _publish(rt, a.account.sid, _events(2))
    assert await rt.store.deliveries.next_due(sink) == 1_000
    assert await _drain(rt, sink) == first + later
    old = await _publish(rt, a.account.sid, _events(1), now_ms=1_000)
    for _ in range(30):
        await _publish(rt, b.account.sid, _events(100))
    young = await _publish(rt, a.account.sid, _events(1), now_ms=9_000)
    assert await rt.store.deliveries.expire(sink, 5_000, 10_000, "window", 91304) == 1
    page = await rt.store.dead_letters.list(a.account.sid, sink, _page())
    assert [d.event_id for d in page.items] == old
    assert await _drain(rt, sink, 10_000) == young
