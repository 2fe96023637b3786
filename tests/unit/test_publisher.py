"""The publisher against the real store (SQLite in memory): validation, dedupe, fan-out, wake-ups."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from eventstreams.catalog import builtin_examples
from eventstreams.delivery.dispatcher import Dispatcher
from eventstreams.domain.accounts import Principal
from eventstreams.runtime import Runtime

DELIVERED = "com.twilio.messaging.message.delivered"
EXAMPLE = builtin_examples()["Messaging.MessageStatus"]


def event(i: int, **extra: Any) -> dict[str, Any]:
    ev = {"specversion": "1.0", "type": DELIVERED, "source": "/t", "id": f"EZ{i:032x}", "data": EXAMPLE[max(EXAMPLE)]}
    ev.update(extra)
    return ev


async def subscribed_sink(rt: Runtime, p: Principal) -> str:
    sink = await rt.control.create_sink(p, "s", "webhook", json.dumps(
        {"destination": "http://127.0.0.1:9/x", "method": "POST", "batch_events": True}))  # fmt: skip
    await rt.control.create_subscription(p, "s", sink.row.sid, [json.dumps({"type": DELIVERED})])
    return sink.row.sid


async def test_accepted_events_wake_exactly_the_subscribed_sinks_once(
    runtime: Runtime, principal: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = await subscribed_sink(runtime, principal)
    woken: asyncio.Queue[list[str]] = asyncio.Queue()
    monkeypatch.setattr(Dispatcher, "wake", lambda self, sinks: woken.put_nowait(list(sinks)))
    await runtime.start_delivery()  # the delivery service listens on the store's wake channel
    result = await runtime.publisher.publish(principal.account.sid, principal.catalog_owner, [event(1), event(2)])
    assert result.accepted == [f"EZ{1:032x}", f"EZ{2:032x}"] and not result.rejected
    assert await asyncio.wait_for(woken.get(), 5) == [sink]
    for _ in range(5):  # let anything else already scheduled on the loop run: one wake-up, not two
        await asyncio.sleep(0)
    assert woken.empty()


async def test_an_id_seen_within_the_window_is_stored_once(runtime: Runtime, principal: Principal) -> None:
    await subscribed_sink(runtime, principal)
    first = await runtime.publisher.publish(principal.account.sid, principal.catalog_owner, [event(7)])
    again = await runtime.publisher.publish(principal.account.sid, principal.catalog_owner, [event(7), event(8)])
    assert first.accepted == [f"EZ{7:032x}"]
    assert again.duplicates == [f"EZ{7:032x}"] and again.accepted == [f"EZ{8:032x}"]


async def test_invalid_events_are_rejected_with_the_reason_and_nothing_stored(
    runtime: Runtime, principal: Principal
) -> None:
    sink = await subscribed_sink(runtime, principal)
    bad_data = event(1, data={"to": 5})
    unknown = event(2, type="com.example.nothing")
    result = await runtime.publisher.publish(principal.account.sid, principal.catalog_owner, [bad_data, unknown])
    assert result.accepted == [] and [r.index for r in result.rejected] == [0, 1]
    assert "data" in result.rejected[0].message and "com.example.nothing" in result.rejected[1].message
    assert await runtime.store.deliveries.next_due(sink) is None  # no delivery was created
