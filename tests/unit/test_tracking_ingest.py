"""The ingest (tracking/ingest.py) on the real store in memory: one transaction for the messages and
their events, eventstreams' own messages under the internal source, and a source deleted mid-request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from eventstreams.domain.accounts import Principal
from eventstreams.runtime import Runtime
from eventstreams.store.errors import NotFound
from eventstreams.tracking import rules
from eventstreams.tracking.ingest import INTERNAL_SOURCE


async def _events(rt: Runtime, account_sid: str) -> list[dict[str, Any]]:
    rows = await rt.store.db.run(lambda tx: tx.all("SELECT payload FROM events WHERE account_sid = :a ORDER BY seq",
                                                   a=account_sid))  # fmt: skip
    return [orjson.loads(r["payload"]) for r in rows]


async def test_accepted_messages_become_events_rejected_ones_do_not(runtime: Runtime, principal: Principal) -> None:
    source, _ = await runtime.sources.create(principal.account, "web")
    now = datetime.now(UTC)
    checked = [rules.check({"type": "track", "userId": "7", "event": "Paid", "messageId": "a"}, now),
               rules.check({"type": "track", "event": "No one"}, now),
               rules.check({"type": "identify", "anonymousId": "anon-1", "messageId": "b"}, now)]  # fmt: skip
    _, stored = await runtime.ingest.receive(source, checked, now)
    assert [r.status for r in stored] == ["accepted", "rejected", "accepted"] and all(r.seq for r in stored)
    events = await _events(runtime, principal.account.sid)
    assert [(e["type"], e["id"], e.get("subject")) for e in events] == [
        ("com.segment.tracking.track", f"{source.sid}.a", "7"),
        ("com.segment.tracking.identify", f"{source.sid}.b", "anon-1"),
    ]
    assert events[0]["data"] == checked[0].message and events[0]["time"] == checked[0].message["timestamp"]
    # the same messageIds again: stored nowhere, published never
    _, again = await runtime.ingest.receive(source, [checked[0], checked[2]], now)
    assert again == [] and len(await _events(runtime, principal.account.sid)) == 2


async def test_own_messages_go_to_the_internal_source_through_the_rules(
    runtime: Runtime, principal: Principal
) -> None:
    stored = await runtime.ingest.record(principal.account.sid, [
        {"type": "track", "userId": "42", "event": "SMS Delivered", "properties": {"messageSid": "SM1"}},
        {"type": "track", "userId": "42"},  # no event: rejected with its reason, visible in the debugger
    ])  # fmt: skip
    assert [(r.status, r.reason) for r in stored] == [("accepted", None), ("rejected", "no_event")]
    source = await runtime.ingest.internal_source(principal.account.sid)
    assert source.name == INTERNAL_SOURCE and {r.source_sid for r in stored} == {source.sid}
    assert (await runtime.ingest.internal_source(principal.account.sid)).sid == source.sid  # made once
    events = await _events(runtime, principal.account.sid)
    assert [e["data"]["event"] for e in events] == ["SMS Delivered"]


async def test_a_source_deleted_mid_request_writes_nothing(runtime: Runtime, principal: Principal) -> None:
    source, _ = await runtime.sources.create(principal.account, "web")
    await runtime.sources.delete(source)
    now = datetime.now(UTC)
    with pytest.raises(NotFound):  # the tracking API answers it 401 in Segment's shape
        await runtime.ingest.receive(source, [rules.check({"type": "track", "userId": "1", "event": "E"}, now)], now)
    assert await _events(runtime, principal.account.sid) == []
    left = await runtime.store.db.run(lambda tx: tx.all("SELECT * FROM tracking_message_ids"))
    assert left == []  # the dedupe claim rolled back with the rest
