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
from eventstreams.store.packing import unpack
from eventstreams.tracking import rules
from eventstreams.tracking.ingest import INTERNAL_SOURCE


async def _events(rt: Runtime, account_sid: str) -> list[dict[str, Any]]:
    rows = await rt.store.db.run(lambda tx: tx.all("SELECT payload, packed FROM events WHERE account_sid = :a ORDER BY seq",
                                                   a=account_sid))  # fmt: skip
    return [orjson.loads(unpack(r["payload"], r["packed"])) for r in rows]


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


async def test_seqs_never_go_back_after_a_source_is_deleted(runtime: Runtime, principal: Principal) -> None:
    """A deleted source takes the newest messages with it; the next ones must not reuse their seqs
    (profile events still point at them: a reused seq was a 500, and another account's message)."""
    a, _ = await runtime.sources.create(principal.account, "a")
    b, _ = await runtime.sources.create(principal.account, "b")
    now = datetime.now(UTC)
    _, first = await runtime.ingest.receive(a, [rules.check({"type": "identify", "userId": "u1"}, now)], now)
    _, second = await runtime.ingest.receive(b, [rules.check({"type": "identify", "userId": "u2"}, now)], now)
    await runtime.sources.delete(b)
    _, third = await runtime.ingest.receive(
        a, [rules.check({"type": "track", "userId": "u1", "event": "E"}, now) for _ in range(3)], now)  # fmt: skip
    seqs = [r.seq for r in first + second + third]
    assert all(isinstance(q, int) for q in seqs) and seqs == sorted(set(seqs))  # type: ignore[type-var]
    assert third[0].seq is not None and second[0].seq is not None and third[0].seq > second[0].seq


async def test_a_message_nested_too_deeply_is_rejected_not_a_crash(runtime: Runtime, principal: Principal) -> None:
    source, _ = await runtime.sources.create(principal.account, "web")
    now = datetime.now(UTC)
    deep: Any = {}
    for _ in range(300):
        deep = {"x": deep}
    ok: Any = "leaf"
    for _ in range(240):
        ok = [ok]
    checked = [rules.check({"type": "identify", "userId": "1", "traits": {"t": deep}}, now),
               rules.check([deep], now),
               rules.check({"type": "identify", "userId": "1", "traits": {"t": ok}}, now)]  # fmt: skip
    assert [c.reason for c in checked] == ["nested_too_deeply", "nested_too_deeply", None]
    _, stored = await runtime.ingest.receive(source, checked, now)
    assert [r.status for r in stored] == ["rejected", "rejected", "accepted"]
    assert "nested more than" in orjson.loads(stored[0].payload)["note"]
    assert len(await _events(runtime, principal.account.sid)) == 1  # the accepted one, written out whole
