"""The dispatcher, stepped one round at a time: a real store (SQLite in memory), the registry's
stub sink (a scripted sender), a fake clock. No server, no sleeps: retry windows pass in
microseconds."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from eventstreams import clock
from eventstreams.catalog import builtin_examples
from eventstreams.delivery.dispatcher import Dispatcher, SinkWorker
from eventstreams.delivery.hooks import Alerting, Attempt, DeliveryHook, DeliveryLog, Hooks, Round
from eventstreams.delivery.metrics import DeliveryMetrics
from eventstreams.delivery.policy import RetryPolicy
from eventstreams.delivery.service import dispatcher_config
from eventstreams.domain.accounts import Principal
from eventstreams.outcome import Outcome, classify_http
from eventstreams.runtime import Runtime, build_runtime
from eventstreams.sinks import registry, stub
from eventstreams.store.records import AlertRow, LeasedDelivery, PageQuery, SinkRow
from tests.fake_clock import FakeClock
from tests.unit.conftest import memory_settings, new_principal

DELIVERED = "com.twilio.messaging.message.delivered"
EXAMPLE = builtin_examples()["Messaging.MessageStatus"]
LATEST = max(EXAMPLE)
WINDOW = 3600.0


class Recorder(DeliveryHook):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def before_send(self, sink: SinkRow, deliveries: Sequence[LeasedDelivery]) -> None:
        self.calls.append(("before_send", [d.event_id for d in deliveries]))

    def after_outcomes(self, r: Round) -> None:
        self.calls.append(("after_outcomes", len(r.attempts)))

    def on_dead_letter(self, r: Round, attempts: Sequence[Attempt]) -> None:
        self.calls.append(("on_dead_letter", [a.event_id for a in attempts]))

    def after_commit(self, r: Round, alerts: Sequence[AlertRow]) -> None:
        self.calls.append(("after_commit", [a.error_code for a in alerts]))

    def on_expired(self, sink: SinkRow, count: int) -> None:
        self.calls.append(("on_expired", count))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@dataclass
class Rig:
    rt: Runtime
    p: Principal
    sink_sid: str
    clock: FakeClock
    sender: stub.StubSender
    recorder: Recorder
    dispatcher: Dispatcher
    n: int = 0

    async def publish(self, count: int) -> list[str]:
        ids = []
        events = []
        for _ in range(count):
            self.n += 1
            ids.append(f"EZ{self.n:032x}")
            events.append({"specversion": "1.0", "type": DELIVERED, "source": "/t", "id": ids[-1],
                           "data": EXAMPLE[LATEST]})  # fmt: skip
        result = await self.rt.publisher.publish(self.p.account.sid, self.p.catalog_owner, events)
        assert not result.rejected, result.view()
        # the publisher stamps real time; simulated time continues from there
        self.clock.t = max(self.clock.t, clock.now())
        return ids

    @property
    def worker(self) -> SinkWorker:
        return self.dispatcher.workers[self.sink_sid]

    async def _pending_rows(self) -> list[Any]:
        """The retry table's rows for the sink (what the log's cursor has not reached is not here)."""
        rows: list[Any] = await self.rt.store.db.run(
            lambda tx: tx.all("SELECT id, due_at FROM deliveries WHERE sink_sid = :s", s=self.sink_sid)
        )
        return rows

    async def dead_letters(self) -> list[Any]:
        page = await self.rt.store.dead_letters.list(self.p.account.sid, self.sink_sid, PageQuery(size=1000))
        return list(page.items)

    async def log(self) -> list[Any]:
        page = await self.rt.store.delivery_log.list(self.p.account.sid, self.sink_sid, PageQuery(size=1000))
        return list(page.items)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    settings = memory_settings(tmp_path)
    rt = await build_runtime(settings)
    try:
        p = await new_principal(rt)
        name = uuid.uuid4().hex
        sender = stub.prepare(name)
        with registry.registered(stub.SINK_TYPE):
            sink = await rt.control.create_sink(p, "stub", "stub", json.dumps({"name": name}))
        await rt.control.create_subscription(p, "s", sink.row.sid, [json.dumps({"type": DELIVERED})])
        fake = FakeClock(clock.now())
        recorder = Recorder()
        config = dispatcher_config(settings)
        config.retry = RetryPolicy(first_delay=1.0, max_delay=60.0, max_age=WINDOW, jitter=0.0)
        hooks = Hooks([DeliveryLog(), Alerting(), recorder])
        d = Dispatcher(rt.store, rt.box, rt.catalog, config, "", hooks, now=fake.now, sleep=fake.sleep,
                       run_workers=False)  # fmt: skip
        with registry.registered(stub.SINK_TYPE):
            await d.sync()  # builds the stub's sender through the registry, like any sink type
        yield Rig(rt, p, sink.row.sid, fake, sender, recorder, d)
        await d.stop()
        stub.SENDERS.pop(name, None)
    finally:
        await rt.close()


async def test_a_round_delivers_and_logs_and_leaves_nothing_pending(rig: Rig) -> None:
    ids = await rig.publish(3)
    assert await rig.worker.round() is True
    assert calls(rig) == [ids]
    assert await rig._pending_rows() == []
    log = await rig.log()
    assert [(g.outcome, json.loads(g.event_ids)) for g in log] == [("delivered", ids)]
    assert rig.recorder.names() == ["before_send", "after_outcomes", "after_commit"]
    assert await rig.worker.round() is False  # nothing left


async def test_a_5xx_is_retried_when_due_and_not_before(rig: Rig) -> None:
    rig.sender.then(Outcome.internal("boom"), Outcome.success(200))
    [eid] = await rig.publish(1)
    assert await rig.worker.round()
    [row] = await rig._pending_rows()
    assert row["due_at"] == int((rig.clock.now() + 1.0) * 1000)  # first retry after first_delay, no jitter
    assert rig.worker.paused_until > 0  # nothing delivered: the breaker opened too
    rig.worker.paused_until = 0.0  # set it aside: this test is about the retry's due time
    assert await rig.worker.round() is False  # not due yet: the fake clock has not moved
    rig.clock.advance(1.0)
    assert await rig.worker.round()
    assert [e.id for e in rig.sender.events] == [eid, eid]
    assert await rig._pending_rows() == []
    outcomes = [g.outcome for g in await rig.log()]
    assert outcomes == ["failed", "delivered"]


async def test_a_4xx_is_dead_lettered_at_once_and_the_hook_hears_it(rig: Rig) -> None:
    rig.sender.default = classify_http(404)
    [eid] = await rig.publish(1)
    assert await rig.worker.round()
    [dead] = await rig.dead_letters()
    assert (dead.event_id, dead.last_code) == (eid, 91305)
    assert ("on_dead_letter", [eid]) in rig.recorder.calls
    # the dead letter is reported once committed, before the commit's alerts are handed on
    assert rig.recorder.names() == ["before_send", "after_outcomes", "on_dead_letter", "after_commit"]
    # the first error raises an alert, committed with the round
    assert ("after_commit", [91305]) in rig.recorder.calls


async def test_retries_end_when_the_window_does(rig: Rig) -> None:
    rig.sender.default = Outcome.internal("still down")
    [eid] = await rig.publish(1)
    assert await rig.worker.round()  # read from the log; its failure becomes a row of the retry table
    rounds = 1
    while not await rig.dead_letters():
        rows = await rig._pending_rows()
        assert rows, "the delivery vanished without a dead letter"
        rig.clock.t = max(rig.clock.t, rows[0]["due_at"] / 1000)
        rig.worker.paused_until = 0.0  # the breaker is tested below; here only the window counts
        assert await rig.worker.round()
        rounds += 1
        assert rounds < 100
    [dead] = await rig.dead_letters()
    assert dead.event_id == eid and "retry window" in (dead.last_error or "")
    assert 5 <= len(rig.sender.sent) <= 70  # doubling from 1 s, capped at 60 s, over one hour


async def test_a_down_sink_pauses_and_is_probed_with_a_small_chunk(rig: Rig) -> None:
    rig.sender.default = Outcome.connect_error("refused")
    await rig.publish(30)
    assert await rig.worker.round()
    assert len(rig.sender.sent[-1]) == 30
    assert rig.worker.paused_until > rig.clock.now()  # the breaker opened
    rig.clock.advance(120.0)  # every retry is due again
    before = rig.clock.now()
    rig.worker.paused_until = before + 5.0
    assert await rig.worker.round()
    assert rig.clock.slept and rig.clock.slept[-1] == pytest.approx(5.0)  # slept out the pause
    assert len(rig.sender.sent[-1]) == rig.dispatcher.config.probe  # then sent only a probe
    rig.sender.default = Outcome.success(200)
    rig.clock.advance(600.0)
    assert await rig.worker.round()
    assert rig.worker.paused_until == 0.0  # a success closes the breaker


async def test_the_senders_max_chunk_bounds_what_is_leased(rig: Rig) -> None:
    rig.sender.max_chunk = 4
    await rig.publish(10)
    while await rig.worker.round():
        pass
    assert [len(c) for c in rig.sender.sent] == [4, 4, 2]


async def test_metrics_hook_counts_results(rig: Rig) -> None:
    from eventstreams.metrics import Metrics

    metrics = Metrics()
    rig.dispatcher.hooks = Hooks([DeliveryLog(), DeliveryMetrics(metrics)])
    rig.sender.then(Outcome.success(200), classify_http(400), Outcome.internal("x"))
    await rig.publish(3)
    assert await rig.worker.round()
    text = generate_latest(metrics.registry).decode()
    kind = rig.worker.row.sink_type
    for result in ("delivered", "dead_lettered", "retried"):
        assert f'eventstreams_deliveries_total{{outcome="{result}",sink_type="{kind}"}} 1.0' in text, text
    assert f'eventstreams_delivery_latency_seconds_count{{sink_type="{kind}"}} 1.0' in text, text


def calls(rig: Rig) -> list[list[str]]:
    return [[e.id for e in chunk] for chunk in rig.sender.sent]


async def test_an_event_this_build_cannot_read_is_retried_not_sent_and_the_rest_go(rig: Rig) -> None:
    """A frame naming a dictionary this build lacks (packed by a newer one) is neither sent nor lost: it
    is retried like an internal error (91304) while the batch's other events are delivered."""
    import zstandard

    first, second = await rig.publish(2)
    foreign = zstandard.ZstdCompressor(dict_data=zstandard.train_dictionary(
        4096, [b'{"k":%d,"v":"%s"}' % (i, b"x" * (i % 50)) for i in range(300)], dict_id=0x45539999)).compress(b"{}")
    await rig.rt.store.db.run(lambda tx: tx.run("UPDATE events SET packed = :p WHERE id = :id", p=foreign, id=first),
                              write=True)  # fmt: skip
    assert await rig.worker.round()
    assert [e.id for e in rig.sender.events] == [second]
    [row] = await rig._pending_rows()
    assert row["due_at"] == int((rig.clock.now() + 1.0) * 1000)
    failed = [g for g in await rig.log() if g.outcome == "failed"]
    assert [json.loads(g.event_ids) for g in failed] == [[first]]
    assert failed[0].code == 91304 and "unknown dictionary (0x45539999)" in (failed[0].detail or "")


async def test_a_dispatcher_with_a_share_of_the_sinks_runs_and_hears_only_its_own(rig: Rig) -> None:
    """One of several delivery processes on a SQLite file (delivery/process.py): the others' sinks are neither
    delivered here nor a reason to look at the store again when their wake-ups are heard."""
    config = dispatcher_config(memory_settings(Path("/nonexistent")))

    def share(mine: bool) -> Dispatcher:
        return Dispatcher(rig.rt.store, rig.rt.box, rig.rt.catalog, config, run_workers=False,
                          owns=lambda sid: (sid == rig.sink_sid) == mine)  # fmt: skip

    others, ours = share(False), share(True)
    with registry.registered(stub.SINK_TYPE):
        await others.sync()
        await ours.sync()
    try:
        assert list(others.workers) == [] and list(ours.workers) == [rig.sink_sid]
        others.wake([rig.sink_sid])
        assert not others._refresh.is_set()  # not its sink: no refresh
        others.wake(["DG" + "0" * 32])  # a sink it would own but does not know yet: refresh
        assert others._refresh.is_set()
    finally:
        await others.stop()
        await ours.stop()
