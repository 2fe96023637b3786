"""SegmentSender against a local Segment-compatible receiver, and end to end
through the real server (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from eventstreams import __version__
from eventstreams.catalog import builtin_examples
from eventstreams.delivery.policy import Outcome, OutcomeKind, error_code, is_retryable, is_throttle_signal
from eventstreams.sinks import create_sender
from eventstreams.sinks.base import NoPacer, OutgoingEvent, SinkContext
from eventstreams.sinks.segment import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    SegmentSender,
    anonymous_id,
    batch_url,
    builtin_schema_lookup,
    identity_fields,
    normalize_phone,
    parse_dataschema,
    split_batches,
)
from tests.conftest import Server
from tests.pacing import RecordingPacer
from tests.segment_double import SegmentDouble

DELIVERED = "com.twilio.messaging.message.delivered"
INBOUND = "com.twilio.messaging.inbound-message.received"
SCHEMAS = "https://events-schemas.twilio.com"
EXAMPLES = builtin_examples()
STATUS_V4 = EXAMPLES["Messaging.MessageStatus"][4]
INBOUND_V6 = EXAMPLES["Messaging.InboundMessageV1"][6]
TIME = "2026-03-29T04:00:58.120Z"
NO_IDENTITY = "not sent: Segment requires an identity"


def expected_anonymous_id(phone: str) -> str:
    """The documented derivation, computed independently of the module."""
    return str(int.from_bytes(hashlib.sha256(phone.encode()).digest()[:8], "big"))


def cloudevent(
    i: int,
    etype: str = DELIVERED,
    schema: str = "Messaging.MessageStatus/4",
    data: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "specversion": "1.0",
        "type": etype,
        "source": f"/2010-04-01/Accounts/AC1/Messages/SM{i:032x}.json",
        "id": f"EZ{i:032x}",
        "datacontenttype": "application/json",
        "dataschema": f"{SCHEMAS}/{schema}",
        "time": TIME,
        "data": copy.deepcopy(STATUS_V4) if data is None else data,
    }
    ev.update(extra)
    return ev


def outgoing(ev: dict[str, Any]) -> OutgoingEvent:
    return OutgoingEvent(str(ev.get("id", "EZx")), str(ev.get("type", "x")), json.dumps(ev).encode())


def status(to: Any, **more: Any) -> dict[str, Any]:
    data = copy.deepcopy(STATUS_V4)
    data["to"] = to
    data.update(more)
    return data


class CountingLookup:
    def __init__(self, extra: dict[tuple[str, int], dict[str, Any]] | None = None, fail: bool = False) -> None:
        self.calls: list[tuple[str, int]] = []
        self.extra = extra or {}
        self.fail = fail

    async def __call__(self, schema_id: str, version: int) -> dict[str, Any] | None:
        self.calls.append((schema_id, version))
        if self.fail:
            raise RuntimeError("store unavailable")
        if (schema_id, version) in self.extra:
            return self.extra[(schema_id, version)]
        return await builtin_schema_lookup(schema_id, version)


def context(endpoint: str | None, write_key: str = "wk_test_segment", **kw: Any) -> SinkContext:
    config: dict[str, Any] = {"write_key": write_key}
    if endpoint is not None:
        config["endpoint"] = endpoint
    extra = {"segment_endpoint": "https://api.segment.io", "schema_lookup": kw.pop("lookup", CountingLookup())}
    return SinkContext(
        "DG" + "0" * 32,
        "AC" + "1" * 32,
        "segment",
        config,
        "token",
        "whsec_x",
        **{"allow_private": True, **kw},
        extra=extra,
    )


@pytest.fixture
def segment() -> Iterator[SegmentDouble]:
    double = SegmentDouble().start()
    yield double
    double.close()


async def send(double: SegmentDouble, events: list[dict[str, Any]], **kw: Any) -> list[Outcome]:
    sender = SegmentSender(context(double.url, **kw))
    try:
        return await sender.send([outgoing(e) for e in events], NoPacer())
    finally:
        await sender.close()


# -- mapping -----------------------------------------------------------------------------------


async def test_message_status_maps_every_field(segment: SegmentDouble) -> None:
    ev = cloudevent(1, data=status("+14155550100"))
    before = datetime.now(UTC)
    (outcome,) = await send(segment, [ev])
    assert outcome.kind is OutcomeKind.SUCCESS and outcome.status == 200
    assert segment.rejected == []
    (req,) = segment.requests
    assert req.method == "POST" and req.path == "/v1/batch"
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"wk_test_segment:").decode()
    assert req.headers["Authorization"] == "Basic d2tfdGVzdF9zZWdtZW50Og=="
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"] == f"eventstreams/{__version__}"
    (batch,) = segment.batches
    assert set(batch) == {"batch", "sentAt"}
    sent_at = datetime.fromisoformat(batch["sentAt"].replace("Z", "+00:00"))
    assert batch["sentAt"].endswith("Z") and len(batch["sentAt"]) == 24
    assert before.replace(microsecond=0) <= sent_at <= datetime.now(UTC)
    (call,) = batch["batch"]
    call.pop("receivedAt")  # added by the receiver, like Segment
    assert call == {
        "type": "track",
        "event": DELIVERED,
        "messageId": f"EZ{1:032x}",
        "anonymousId": expected_anonymous_id("+14155550100"),
        "properties": ev["data"],
        "originalTimestamp": TIME,
        "timestamp": TIME,
        "context": {
            "externalIds": [{"id": "+14155550100", "type": "phone", "collection": "users", "encoding": "none"}],
            "library": {"name": "eventstreams", "version": __version__},
        },
        "integrations": {},
    }
    assert call["properties"]["to"] == "+14155550100" and call["properties"]["from"] == STATUS_V4["from"]


async def test_inbound_message_identity_comes_from_from(segment: SegmentDouble) -> None:
    data = copy.deepcopy(INBOUND_V6)
    data["from"], data["to"] = "+447700900123", "+18126097345"
    ev = cloudevent(2, INBOUND, "Messaging.InboundMessageV1/6.json", data, time="2026-04-01T10:00:00.000Z")
    (outcome,) = await send(segment, [ev])
    assert outcome.kind is OutcomeKind.SUCCESS
    (call,) = segment.calls
    call.pop("receivedAt")
    assert call == {
        "type": "track",
        "event": INBOUND,
        "messageId": f"EZ{2:032x}",
        "anonymousId": expected_anonymous_id("+447700900123"),
        "properties": data,
        "originalTimestamp": "2026-04-01T10:00:00.000Z",
        "timestamp": "2026-04-01T10:00:00.000Z",
        "context": {
            "externalIds": [{"id": "+447700900123", "type": "phone", "collection": "users", "encoding": "none"}],
            "library": {"name": "eventstreams", "version": __version__},
        },
        "integrations": {},
    }


async def test_anonymous_id_is_deterministic(segment: SegmentDouble) -> None:
    assert anonymous_id("+14155550100") == "4671346482189860198"  # pinned: changing it splits profiles
    assert anonymous_id("+14155550100") == expected_anonymous_id("+14155550100")
    assert anonymous_id("+14155550101") != anonymous_id("+14155550100")
    assert all(anonymous_id(f"+1415555{n:04d}").isdigit() for n in range(50))
    assert all(len(anonymous_id(f"+1415555{n:04d}")) <= 20 for n in range(50))
    inbound = copy.deepcopy(INBOUND_V6)
    inbound["from"] = "+14155550100"
    events = [
        cloudevent(1, data=status("+14155550100")),
        cloudevent(2, data=status("+1 (415) 555-0100")),
        cloudevent(3, data=status("whatsapp:+14155550100")),
        cloudevent(4, INBOUND, "Messaging.InboundMessageV1/6", inbound),
        cloudevent(5, data=status("+14155550199")),
    ]
    outcomes = await send(segment, events)
    assert all(o.kind is OutcomeKind.SUCCESS for o in outcomes)
    calls = {c["messageId"]: c for c in segment.calls}
    ids = [calls[f"EZ{i:032x}"]["anonymousId"] for i in range(1, 6)]
    assert ids[:4] == [anonymous_id("+14155550100")] * 4 and ids[4] != ids[0]
    # the external id is the normalised phone; properties keep what was published
    assert calls[f"EZ{3:032x}"]["context"]["externalIds"][0]["id"] == "+14155550100"
    assert calls[f"EZ{3:032x}"]["properties"]["to"] == "whatsapp:+14155550100"
    # the same events again give the same ids (retries land on the same profile and messageId)
    await send(segment, events)
    again = [c["anonymousId"] for c in segment.calls[5:]]
    assert again == ids


def test_helpers() -> None:
    assert parse_dataschema(f"{SCHEMAS}/Messaging.MessageStatus/4") == ("Messaging.MessageStatus", 4)
    assert parse_dataschema(f"{SCHEMAS}/EventStreams.TestSink/1.json") == ("EventStreams.TestSink", 1)
    assert parse_dataschema("http://127.0.0.1:8080/schemas/Acme.Order/12/") == ("Acme.Order", 12)
    assert parse_dataschema(f"{SCHEMAS}/Messaging.MessageStatus/latest") is None
    assert parse_dataschema("https://x/4") is None
    assert normalize_phone(" + 1 812-609-7345 ") == "+18126097345"
    assert normalize_phone("WhatsApp:+34606234664") == "+34606234664"
    assert normalize_phone("messenger:1234567") is None and normalize_phone("alice") is None
    assert batch_url("https://events.eu1.segmentapis.com") == "https://events.eu1.segmentapis.com/v1/batch"
    assert batch_url("https://rudder.example.com/v1/") == "https://rudder.example.com/v1/batch"
    assert batch_url("https://jitsu.example.com/api/s/v1/batch") == "https://jitsu.example.com/api/s/v1/batch"
    with pytest.raises(ValueError):
        batch_url("ftp://segment.example.com")
    with pytest.raises(ValueError):
        batch_url("https://user:pw@segment.example.com")
    nested = {"properties": {"a": {"type": "string"}, "who": {"properties": {"phone": {"identityType": "phone"}}}}}
    assert identity_fields(nested) == (("who", "phone"),)
    # count limit: tiny items split at 2,500; byte limit: big items stay under 500,000 bytes
    assert [len(r) for r in split_batches([10] * 6000)] == [2500, 2500, 1000]
    big = split_batches([MAX_EVENT_BYTES] * 40)
    assert all(len(r) * (MAX_EVENT_BYTES + 1) + 48 <= MAX_BATCH_BYTES for r in big)
    assert sum(len(r) for r in big) == 40 and split_batches([]) == []


async def test_builtin_lookup_is_the_catalogues_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # one index of the built-in schemas (eventstreams.catalog.builtin_schema), not a second copy here
    from eventstreams import catalog

    row = catalog.builtin_schema("Messaging.MessageStatus", 4)
    assert row is not None
    assert await builtin_schema_lookup("Messaging.MessageStatus", 4) == json.loads(row.document)
    fake = dataclasses.replace(row, schema_id="Only.Here", document='{"title": "only here"}')
    monkeypatch.setattr(catalog, "builtin_schema", lambda s, v: fake if (s, v) == ("Only.Here", 1) else None)
    assert await builtin_schema_lookup("Only.Here", 1) == {"title": "only here"}
    assert await builtin_schema_lookup("Messaging.MessageStatus", 4) is None
    # each call parses afresh: a caller mutating its copy cannot corrupt the next lookup
    first = await builtin_schema_lookup("Only.Here", 1)
    assert first is not None
    first["title"] = "changed"
    assert await builtin_schema_lookup("Only.Here", 1) == {"title": "only here"}


async def test_schema_lookup_is_cached_and_custom_schemas_work(segment: SegmentDouble) -> None:
    custom = {
        "type": "object",
        "properties": {"order": {"type": "string"}, "customer": {"properties": {"mobile": {"identityType": "phone"}}}},
    }
    lookup = CountingLookup({("Acme.Order", 2): custom})
    sender = SegmentSender(context(segment.url, lookup=lookup))
    custom_event = cloudevent(
        9, "com.acme.order.shipped", data={"order": "o-1", "customer": {"mobile": "+15005550006"}},
        dataschema="http://127.0.0.1:9/schemas/Acme.Order/2",
    )  # fmt: skip
    try:
        for start in (0, 10):
            events = [cloudevent(i, data=status(f"+1415555{i:04d}")) for i in range(start, start + 10)]
            outcomes = await sender.send([outgoing(e) for e in [*events, custom_event]], NoPacer())
            assert all(o.kind is OutcomeKind.SUCCESS for o in outcomes)
    finally:
        await sender.close()
    assert sorted(lookup.calls) == [("Acme.Order", 2), ("Messaging.MessageStatus", 4)]
    shipped = [c for c in segment.calls if c["event"] == "com.acme.order.shipped"]
    assert shipped[0]["context"]["externalIds"][0]["id"] == "+15005550006"


# -- batching ----------------------------------------------------------------------------------


async def test_many_small_events_are_split_within_limits(segment: SegmentDouble) -> None:
    events = [cloudevent(i, data={"to": f"+1{i:010d}"}) for i in range(3000)]
    pacer = RecordingPacer()
    sender = SegmentSender(context(segment.url))
    try:
        outcomes = await sender.send([outgoing(e) for e in events], pacer)
    finally:
        await sender.close()
    assert len(outcomes) == 3000 and all(o.kind is OutcomeKind.SUCCESS for o in outcomes)
    assert len(segment.requests) >= 2 and segment.rejected == []
    assert all(len(json.loads(r.body)["batch"]) <= 2500 for r in segment.requests)
    assert all(len(r.body) <= MAX_BATCH_BYTES for r in segment.requests)
    assert sorted(c["messageId"] for c in segment.calls) == sorted(e["id"] for e in events)
    # the pacer is asked once per request, for that request's events, and told each outcome
    assert sorted(pacer.waits) == sorted(len(json.loads(r.body)["batch"]) for r in segment.requests)
    assert len(pacer.observed) == len(segment.requests)


async def test_big_events_keep_batches_under_500kb(segment: SegmentDouble) -> None:
    events = [cloudevent(i, data=status(f"+1415555{i:04d}", body="x" * 30_000)) for i in range(40)]
    outcomes = await send(segment, events)
    assert all(o.kind is OutcomeKind.SUCCESS for o in outcomes)
    assert len(segment.requests) >= 3 and segment.rejected == []
    assert all(len(r.body) <= MAX_BATCH_BYTES for r in segment.requests)
    assert len(segment.calls) == 40


# -- events that are not sent ------------------------------------------------------------------


async def test_events_without_identity_are_not_sent(segment: SegmentDouble) -> None:
    no_dataschema = cloudevent(6, data=status("+14155550106"))
    del no_dataschema["dataschema"]
    events = [
        cloudevent(1, data=status("+14155550100")),
        cloudevent(2, data=status("")),
        cloudevent(3, data=status("messenger:123456789")),
        cloudevent(4, "com.twilio.eventstreams.test-event", "EventStreams.TestSink/1.json", {"test_id": "x"}),
        cloudevent(5, data={k: v for k, v in STATUS_V4.items() if k != "to"}),
        no_dataschema,
        cloudevent(7, schema="Messaging.MessageStatus/99"),
    ]
    outcomes = await send(segment, events)
    assert outcomes[0].kind is OutcomeKind.SUCCESS
    for outcome in outcomes[1:]:
        # skipped, visibly: logged with the reason, no dead letter, no alert, never retried
        assert outcome.kind is OutcomeKind.SKIPPED and not is_retryable(outcome)
        assert outcome.message.startswith(NO_IDENTITY)
    assert outcomes[1].message == f"{NO_IDENTITY}; {DELIVERED}: field 'to' is empty"
    assert "field 'to' is not a phone number" in outcomes[2].message
    assert "EventStreams.TestSink v1 has no identityType: phone field" in outcomes[3].message
    assert "field 'to' is empty" in outcomes[4].message
    assert "no dataschema" in outcomes[5].message
    assert "Messaging.MessageStatus version 99 is unknown" in outcomes[6].message
    assert outcomes[1].describe().startswith("skipped: not sent:")
    assert [c["messageId"] for c in segment.calls] == [f"EZ{1:032x}"]


async def test_all_without_identity_makes_no_request(segment: SegmentDouble) -> None:
    pacer = RecordingPacer()
    sender = SegmentSender(context(segment.url))
    try:
        outcomes = await sender.send([outgoing(cloudevent(1, data=status("")))], pacer)
        assert await sender.send([], pacer) == []
    finally:
        await sender.close()
    assert outcomes[0].kind is OutcomeKind.SKIPPED
    assert segment.requests == [] and pacer.waits == []


async def test_oversize_and_broken_events(segment: SegmentDouble) -> None:
    events = [
        cloudevent(1, data=status("+14155550100", body="y" * 40_000)),
        cloudevent(2, data=status("+14155550102")),
    ]
    bad = [OutgoingEvent("EZbad", DELIVERED, b"{not json"), OutgoingEvent("EZarr", DELIVERED, b"[1]")]
    sender = SegmentSender(context(segment.url))
    try:
        outcomes = await sender.send([outgoing(events[0]), *bad, outgoing(events[1])], NoPacer())
    finally:
        await sender.close()
    big, not_json, array, ok = outcomes
    assert big.kind is OutcomeKind.DROPPED and not is_retryable(big) and error_code(big) == 91303
    assert big.message.startswith("not sent: the Segment track call is ") and str(MAX_EVENT_BYTES) in big.message
    assert "not valid JSON" in not_json.message and "not a JSON object" in array.message
    assert not is_retryable(not_json) and not is_retryable(array)
    assert ok.kind is OutcomeKind.SUCCESS
    assert [c["messageId"] for c in segment.calls] == [f"EZ{2:032x}"]


async def test_schema_lookup_failure_is_retried(segment: SegmentDouble) -> None:
    (outcome,) = await send(segment, [cloudevent(1, data=status("+14155550100"))], lookup=CountingLookup(fail=True))
    assert outcome.kind is OutcomeKind.INTERNAL and is_retryable(outcome) and "store unavailable" in outcome.message
    assert segment.requests == []


# -- HTTP answers ------------------------------------------------------------------------------


async def test_http_failures_are_classified(segment: SegmentDouble) -> None:
    segment.plan = [
        (429, {"Retry-After": "7"}),
        (429, {"X-RateLimit-Reset": "3"}),
        (503, {}),
        (400, {}),
    ]
    pacer = RecordingPacer()
    sender = SegmentSender(context(segment.url))
    results: list[Outcome] = []
    try:
        for i in range(5):
            (outcome,) = await sender.send([outgoing(cloudevent(i, data=status("+14155550100")))], pacer)
            results.append(outcome)
    finally:
        await sender.close()
    throttled, reset, unavailable, rejected, ok = results
    assert throttled.status == 429 and throttled.retry_after == "7" and is_retryable(throttled)
    assert error_code(throttled) == 91302 and is_throttle_signal(throttled)
    assert reset.status == 429 and reset.retry_after == "3" and is_retryable(reset)
    assert unavailable.status == 503 and is_retryable(unavailable) and error_code(unavailable) == 91306
    assert rejected.status == 400 and not is_retryable(rejected) and error_code(rejected) == 91305
    assert ok.kind is OutcomeKind.SUCCESS
    assert pacer.observed == results and pacer.waits == [1] * 5
    assert [r.status for r in segment.requests] == [429, 429, 503, 400, 200]
    assert [c["messageId"] for c in segment.calls] == [f"EZ{4:032x}"]


async def test_wrong_write_key_is_not_retried(segment: SegmentDouble) -> None:
    (outcome,) = await send(segment, [cloudevent(1, data=status("+14155550100"))], write_key="nope")
    assert outcome.status == 401 and not is_retryable(outcome)


async def test_connection_failures_and_private_endpoints() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ev = [outgoing(cloudevent(1, data=status("+14155550100")))]
    sender = SegmentSender(context(f"http://127.0.0.1:{port}"))
    try:
        (refused,) = await sender.send(ev, NoPacer())
    finally:
        await sender.close()
    assert refused.kind is OutcomeKind.CONNECT_ERROR and is_retryable(refused)
    guarded = SegmentSender(context(f"http://127.0.0.1:{port}", allow_private=False))
    (blocked,) = await guarded.send(ev, NoPacer())
    assert blocked.kind is OutcomeKind.CONNECT_ERROR and "destination refused" in blocked.message
    assert not is_retryable(blocked)  # dead-lettered at once, not retried for the window
    await guarded.close()


@pytest.mark.parametrize(
    "host", ["\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127\u30020\u30020\u30021", "\u2460\u2461\u2466.0.0.1"]
)
async def test_unicode_spelling_of_loopback_is_refused(segment: SegmentDouble, host: str) -> None:
    # the client IDNA-maps these to 127.0.0.1 (where the double listens); the policy must judge that
    endpoint = segment.url.replace("127.0.0.1", host)
    assert endpoint != segment.url
    sender = SegmentSender(context(endpoint, allow_private=False))
    try:
        (outcome,) = await sender.send([outgoing(cloudevent(1, data=status("+14155550100")))], NoPacer())
    finally:
        await sender.close()
    assert outcome.kind is OutcomeKind.CONNECT_ERROR and not is_retryable(outcome), outcome
    assert "not a public address" in outcome.message
    assert segment.calls == []


async def test_endpoint_name_resolving_inward_is_refused_at_connect() -> None:
    async def dns(host: str, port: int) -> list[str]:
        return ["169.254.169.254"]  # the name was public when the sink was created; now metadata

    sender = SegmentSender(context("https://collector.example.com", allow_private=False), resolver=dns)
    try:
        (outcome,) = await sender.send([outgoing(cloudevent(1, data=status("+14155550100")))], NoPacer())
    finally:
        await sender.close()
    assert outcome.kind is OutcomeKind.CONNECT_ERROR and not is_retryable(outcome)
    assert "not a public address" in outcome.message and "169.254" not in outcome.message


def test_configuration() -> None:
    sender = create_sender(context(None))
    assert isinstance(sender, SegmentSender) and sender.url == "https://api.segment.io/v1/batch"
    eu = SegmentSender(context("https://events.eu1.segmentapis.com"))
    assert eu.url == "https://events.eu1.segmentapis.com/v1/batch"
    with pytest.raises(ValueError, match="write_key"):
        SegmentSender(context(None, write_key=""))
    with pytest.raises(ValueError):
        SegmentSender(context("mailto:x@example.com"))


# -- end to end --------------------------------------------------------------------------------


def test_end_to_end_through_the_server(server: Server, account: tuple[str, str], segment: SegmentDouble) -> None:
    client = server.client(*account)
    sink = client.events.v1.sinks.create(
        description="segment e2e",
        sink_type="segment",
        sink_configuration={"write_key": segment.write_key, "endpoint": segment.url},
    )
    client.events.v1.subscriptions.create(
        description="segment e2e", sink_sid=sink.sid, types=[{"type": DELIVERED}, {"type": INBOUND}]
    )
    status_v = max(EXAMPLES["Messaging.MessageStatus"])
    inbound_v = max(EXAMPLES["Messaging.InboundMessageV1"])
    outbound_data = dict(EXAMPLES["Messaging.MessageStatus"][status_v], to="+14155550100")
    inbound_data = dict(EXAMPLES["Messaging.InboundMessageV1"][inbound_v], **{"from": "+14155550100"})
    anonymous_data = dict(EXAMPLES["Messaging.MessageStatus"][status_v], to="")
    oversize_data = dict(outbound_data, body="x" * (MAX_EVENT_BYTES + 1))
    published = [
        cloudevent(101, DELIVERED, f"Messaging.MessageStatus/{status_v}", outbound_data),
        cloudevent(102, INBOUND, f"Messaging.InboundMessageV1/{inbound_v}", inbound_data),
        cloudevent(103, DELIVERED, f"Messaging.MessageStatus/{status_v}", anonymous_data),
        cloudevent(104, DELIVERED, f"Messaging.MessageStatus/{status_v}", oversize_data),
    ]
    r = requests.post(
        f"{server.url}/v1/Events",
        data=json.dumps(published),
        headers={"Content-Type": "application/cloudevents-batch+json"},
        auth=account,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == [f"EZ{i:032x}" for i in (101, 102, 103, 104)]

    url = f"{server.url}/v1/Sinks/{sink.sid}/Deliveries"
    dead_url = f"{server.url}/v1/Sinks/{sink.sid}/DeadLetters"

    def log() -> list[dict[str, Any]]:
        return list(requests.get(url, auth=account, timeout=5).json()["deliveries"])

    def dead() -> list[dict[str, Any]]:
        return list(requests.get(dead_url, auth=account, timeout=5).json()["dead_letters"])

    segment.wait_for(
        lambda: len(segment.calls) == 2 and any(x["outcome"] == "skipped" for x in log()) and len(dead()) == 1
    )
    server.settled(sink.sid)  # nothing left to deliver: the calls below are all there will be
    assert segment.rejected == [] and len(segment.calls) == 2
    calls = {c["messageId"]: c for c in segment.calls}
    anon = expected_anonymous_id("+14155550100")
    for ev in published[:2]:
        call = calls[ev["id"]]
        assert call["type"] == "track" and call["event"] == ev["type"]
        assert call["properties"] == ev["data"]
        assert call["originalTimestamp"] == call["timestamp"] == TIME
        assert call["anonymousId"] == anon and call["integrations"] == {}
        assert call["context"] == {
            "externalIds": [{"id": "+14155550100", "type": "phone", "collection": "users", "encoding": "none"}],
            "library": {"name": "eventstreams", "version": __version__},
        }
    entries = log()
    delivered = {i for x in entries if x["outcome"] == "delivered" for i in x["event_ids"]}
    assert delivered == {f"EZ{101:032x}", f"EZ{102:032x}"}
    (skipped,) = [x for x in entries if x["outcome"] == "skipped"]
    assert skipped["event_ids"] == [f"EZ{103:032x}"] and skipped["error_code"] is None
    assert f"{NO_IDENTITY}; {DELIVERED}: field 'to' is empty" in skipped["detail"]
    # the oversize event is dead-lettered at once with Segment's limit as the reason; nothing else is
    (oversize,) = dead()
    assert oversize["event_id"] == f"EZ{104:032x}" and oversize["error_code"] == 91303
    assert oversize["attempts"] == 1 and f"Segment accepts at most {MAX_EVENT_BYTES}" in oversize["error"]
    assert not any(c["messageId"] == f"EZ{104:032x}" for c in segment.calls)
    # and it shows in the debugger; the skipped event does not
    (alert,) = alerts_of(server, account, str(sink.sid))
    assert alert["error_code"] == "91303" and f"Segment accepts at most {MAX_EVENT_BYTES}" in alert["alert_text"]


def alerts_of(server: Server, account: tuple[str, str], sink: str) -> list[dict[str, Any]]:
    """The sink's alerts in the debugger (``/v1/Alerts``)."""
    r = requests.get(f"{server.url}/v1/Alerts", auth=account, timeout=5)
    assert r.status_code == 200, r.text
    return [a for a in r.json()["alerts"] if a["resource_sid"] == sink]


def test_end_to_end_server_error_is_retried_and_alerted(
    server: Server, account: tuple[str, str], segment: SegmentDouble
) -> None:
    client = server.client(*account)
    sink = client.events.v1.sinks.create(
        description="segment 5xx",
        sink_type="segment",
        sink_configuration={"write_key": segment.write_key, "endpoint": segment.url},
    )
    client.events.v1.subscriptions.create(description="segment 5xx", sink_sid=sink.sid, types=[{"type": DELIVERED}])
    segment.plan = [(503, {})]
    version = max(EXAMPLES["Messaging.MessageStatus"])
    data = dict(EXAMPLES["Messaging.MessageStatus"][version], to="+14155550100")
    r = requests.post(
        f"{server.url}/v1/Events",
        data=json.dumps([cloudevent(201, DELIVERED, f"Messaging.MessageStatus/{version}", data)]),
        headers={"Content-Type": "application/cloudevents-batch+json"},
        auth=account,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    url = f"{server.url}/v1/Sinks/{sink.sid}/Deliveries"

    def log() -> list[dict[str, Any]]:
        return list(requests.get(url, auth=account, timeout=5).json()["deliveries"])

    segment.wait_for(lambda: {x["outcome"] for x in log()} >= {"failed", "delivered"})
    assert [c["messageId"] for c in segment.calls] == [f"EZ{201:032x}"]
    assert [q.status for q in segment.requests] == [503, 200]
    (failed,) = [x for x in log() if x["outcome"] == "failed"]
    assert failed["error_code"] == 91306 and failed["event_ids"] == [f"EZ{201:032x}"]
    (alert,) = alerts_of(server, account, str(sink.sid))
    assert alert["error_code"] == "91306" and "503" in alert["alert_text"]
    assert alert["request_url"] == segment.url  # the configured endpoint
