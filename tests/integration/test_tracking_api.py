"""The Segment-compatible tracking API with the official clients (segment-analytics-python,
rudder-sdk-python: batching, gzip, retries) and raw HTTP for Segment's rules, on both backends."""

from __future__ import annotations

import base64
import gzip as gz
import json
from typing import Any

import orjson
import pytest
import requests
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics import Client as SegmentClient

from tests.conftest import Receiver, Server


def _source(srv: Server, name: str = "web", rate_limit: int | None = None) -> tuple[str, str, str]:
    sid, _ = srv.new_account("Tracking")
    account = srv.call(srv.services.store.accounts.get(sid))
    row, key = srv.call(srv.services.sources.create(account, name, rate_limit))
    return sid, row.sid, key


def test_accepted_messages_become_events_for_subscribed_sinks(server: Server, receiver: Receiver) -> None:
    sid, token = server.new_account("Tracking events")
    account = server.call(server.services.store.accounts.get(sid))
    source, key = server.call(server.services.sources.create(account, "web"))
    client = server.client(sid, token)
    sink = client.events.v1.sinks.create(
        description="segment traffic", sink_type="webhook",
        sink_configuration={"destination": receiver.url + "/seg", "method": "POST", "batch_events": False},
    )  # fmt: skip
    client.events.v1.subscriptions.create(description="tracks", sink_sid=sink.sid,
                                          types=[{"type": "com.segment.tracking.track"}])  # fmt: skip
    seg = SegmentClient(key, host=server.url, sync_mode=True)
    seg.identify("42", {"first_name": "Ada"})  # stored, but nobody subscribed to identify
    seg.track("42", "Trial Expired", {"plan": "pro"}, message_id="m-1")
    seg.track("42", "Trial Expired", {"plan": "pro"}, message_id="m-1")  # a duplicate: no second event
    assert _post(server, "/v1/track", {"event": "No one"}, key).json()["rejected"] == 1  # no event either
    receiver.wait_for(lambda: len(receiver.events("/seg")) >= 1)
    server.settled(sink.sid)
    got = receiver.events("/seg")
    assert len(got) == 1
    ev = got[0]
    assert ev["type"] == "com.segment.tracking.track" and ev["id"] == f"{source.sid}.m-1"
    assert ev["source"] == f"/v1/Sources/{source.sid}" and ev["subject"] == "42"
    assert ev["data"]["event"] == "Trial Expired" and ev["data"]["properties"] == {"plan": "pro"}
    assert ev["dataschema"].endswith("/schemas/Segment.Track/1")  # on EVENTSTREAMS_BASE_URL: served by us
    schema = requests.get(server.url + "/schemas/Segment.Track/1", timeout=5)
    assert schema.status_code == 200 and schema.json()["required"][:2] == ["type", "messageId"]
    types = [t.type for t in client.events.v1.event_types.list(schema_id="Segment.Track")]
    assert types == ["com.segment.tracking.track"]


def _stored(srv: Server, source_sid: str) -> list[dict[str, Any]]:
    rows = srv.call(srv.services.store.db.run(
        lambda tx: tx.all("SELECT * FROM tracking_messages WHERE source_sid = :s ORDER BY seq", s=source_sid)))  # fmt: skip
    return [{**r, "payload": orjson.loads(r["payload"])} for r in rows]


def _post(srv: Server, path: str, body: Any, key: str | None, **headers: str) -> requests.Response:
    h = {"Content-Type": "application/json", **headers}
    if key is not None:
        h["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(srv.url + path, data=data, headers=h, timeout=10)


def test_segment_client_identify_and_track(server: Server) -> None:
    _, source, key = _source(server)
    errors: list[Any] = []
    client = SegmentClient(key, host=server.url, sync_mode=True, gzip=True, on_error=lambda e, b: errors.append(e))
    client.identify("42", {"phone": "(415) 555-2671", "first_name": "Ada"})
    client.track("42", "Trial Expired", {"plan": "pro"})
    assert errors == []
    got = _stored(server, source)
    assert [(m["type"], m["status"]) for m in got] == [("identify", "accepted"), ("track", "accepted")]
    track = got[1]["payload"]
    assert track["event"] == "Trial Expired" and track["properties"] == {"plan": "pro"} and track["userId"] == "42"
    assert track["context"]["library"]["name"] == "analytics-python" and "writeKey" not in track
    assert track["receivedAt"].endswith("Z") and track["messageId"] == got[1]["message_id"]


def test_segment_client_batches_in_the_background(server: Server) -> None:
    _, source, key = _source(server)
    client = SegmentClient(key, host=server.url, upload_size=100, upload_interval=0.05)
    for i in range(250):
        client.track(f"user-{i % 7}", "Viewed", {"i": i})
    client.flush()
    client.join()
    got = _stored(server, source)
    assert len(got) == 250 and {m["payload"]["properties"]["i"] for m in got} == set(range(250))


def test_rudder_client(server: Server) -> None:
    _, source, key = _source(server)
    client = RudderClient(key, host=server.url, sync_mode=True, gzip=True)
    client.identify("7", {"email": "a@example.com"})
    client.page("7", "Docs", "Pricing", {"url": "https://x.test/pricing"})
    client.alias("8", "7")
    got = _stored(server, source)
    assert [(m["type"], m["status"]) for m in got] == [("identify", "accepted"), ("page", "accepted"),
                                                       ("alias", "accepted")]  # fmt: skip


def test_segment_client_retries_through_rate_limits(server: Server) -> None:
    _, source, key = _source(server, rate_limit=2)
    answers = [_post(server, "/v1/track", {"userId": "1", "event": "Burst"}, key) for _ in range(3)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited and limited[0].headers["Retry-After"] == "1" and limited[0].json()["code"] == "rate_limited"
    errors: list[Any] = []
    # one message per request, faster than 2/s: some answers are 429 with Retry-After, and the client's
    # consumer (its background uploader, where its retries live) waits and sends them again
    client = SegmentClient(key, host=server.url, upload_size=1, upload_interval=0.01,
                           on_error=lambda e, b: errors.append(e))  # fmt: skip
    for i in range(5):
        client.track("1", "Tick", {"i": i})
    client.flush()
    client.join()
    ticks = [m["payload"]["properties"]["i"] for m in _stored(server, source) if m["payload"]["event"] == "Tick"]
    assert errors == [] and sorted(ticks) == [0, 1, 2, 3, 4]


def test_rules_and_errors(server: Server) -> None:
    _, source, key = _source(server)
    assert _post(server, "/v1/track", b"{nope", key).json()["code"] == "invalid_json"
    big = {"userId": "1", "event": "x", "properties": {"blob": "x" * 33_000}}
    r = _post(server, "/v1/track", big, key)
    assert (r.status_code, r.json()["code"]) == (400, "too_large")
    assert _post(server, "/v1/track", {"userId": "1", "event": "x"}, None).status_code == 401
    assert _post(server, "/v1/track", {"userId": "1", "event": "x"}, "wrong").json()["code"] == "unauthorized"
    # writeKey in the body authenticates too, and is not stored
    ok = _post(server, "/v1/track", {"userId": "1", "event": "Signed Up", "writeKey": key}, None)
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    # rejected, with the reason recorded and counted
    r = _post(server, "/v1/track", {"event": "x"}, key)
    assert r.status_code == 200 and r.json()["rejected"] == 1 and r.json()["reasons"] == ["no_user_anon_id"]
    assert _post(server, "/v1/track", {"userId": "1"}, key).json()["reasons"] == ["no_event"]
    stored = _stored(server, source)
    assert "writeKey" not in stored[0]["payload"]
    assert [(m["status"], m["reason"]) for m in stored[1:]] == [("rejected", "no_user_anon_id"),
                                                                ("rejected", "no_event")]  # fmt: skip


def test_batch_merge_dedupe_and_clock_skew(server: Server) -> None:
    _, source, key = _source(server)
    body = {
        "batch": [
            {"type": "track", "userId": "1", "event": "A", "messageId": "m-1", "context": {"ip": "1.2.3.4"},
             "timestamp": "2026-01-01T10:00:00Z"},
            {"type": "identify", "anonymousId": "anon", "traits": {"x": 1}, "integrations": {"Mixpanel": True}},
            {"type": "track", "userId": "1", "event": "A", "messageId": "m-1"},  # a duplicate of the first
        ],
        "context": {"ip": "9.9.9.9", "library": {"name": "raw"}},
        "integrations": {"All": False, "Mixpanel": False},
        "sentAt": "2026-01-01T11:00:00Z",  # the sender's clock is an hour ahead of its events
    }
    r = _post(server, "/v1/batch", body, key)
    assert r.json() == {"success": True, "accepted": 2, "rejected": 0, "duplicates": 1}
    first, second = (m["payload"] for m in _stored(server, source))
    assert first["context"] == {"ip": "1.2.3.4", "library": {"name": "raw"}}  # the item's own keys win
    assert second["integrations"] == {"All": False, "Mixpanel": True} and second["messageId"].startswith("api-")
    assert first["originalTimestamp"] == "2026-01-01T10:00:00Z"
    received = first["receivedAt"]
    from datetime import datetime, timedelta

    expect = datetime.fromisoformat(received.replace("Z", "+00:00")) - timedelta(hours=1)
    assert first["timestamp"] == expect.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expect.microsecond // 1000:03d}Z"
    again = _post(server, "/v1/batch", {"batch": [body["batch"][0]]}, key)
    assert again.json()["duplicates"] == 1  # within 24 h, in another request


def test_batch_limits_and_gzip(server: Server) -> None:
    _, _, key = _source(server)
    over = {"batch": [{"type": "track", "userId": "1", "event": "e"}] * 2501}
    r = _post(server, "/v1/batch", over, key)
    assert r.status_code == 200 and r.json()["accepted"] == 0 and r.json()["reasons"] == ["too_many_events"]
    huge = {"batch": [{"type": "track", "userId": "1", "event": "e", "properties": {"p": "x" * 20_000}}] * 30}
    assert _post(server, "/v1/batch", huge, key).json()["code"] == "too_large"  # 600 KB > 500 KB
    packed = gz.compress(json.dumps({"batch": [{"type": "track", "userId": "1", "event": "z"}]}).encode())
    r = _post(server, "/v1/import", packed, key, **{"Content-Encoding": "gzip"})
    assert r.json()["accepted"] == 1
    assert _post(server, "/v1/batch", b"not gzip", key, **{"Content-Encoding": "gzip"}).json()["code"] == "invalid_body"


def test_disabled_source_and_rotated_key(server: Server) -> None:
    account, source, key = _source(server)
    acct = server.call(server.services.store.accounts.get(account))
    row = server.call(server.services.sources.get(acct, source))
    fresh, new_key = server.call(server.services.sources.rotate(row))
    assert _post(server, "/v1/track", {"userId": "1", "event": "x"}, key).status_code == 401
    assert _post(server, "/v1/track", {"userId": "1", "event": "x"}, new_key).status_code == 200
    server.call(server.services.sources.update(fresh, None, False, None))
    r = _post(server, "/v1/track", {"userId": "1", "event": "x"}, new_key)
    assert (r.status_code, r.json()["code"]) == (403, "source_disabled")


@pytest.mark.parametrize("body", [b"[]", b"1", b'{"batch": 5}', b"\xff\xfe"])
def test_odd_bodies_are_400(server: Server, body: bytes) -> None:
    _, _, key = _source(server)
    path = "/v1/batch" if b"batch" in body else "/v1/identify"
    assert _post(server, path, body, key).status_code == 400


def test_nul_characters_are_rejected_not_a_500(server: Server) -> None:
    # PostgreSQL text cannot hold NUL: such messages are rejected (and stored, NUL replaced) on both backends
    _, source, key = _source(server)
    for path, body in (
        ("/v1/track", b'{"userId": "a\\u0000b", "event": "x"}'),
        ("/v1/track", b'{"userId": "1", "event": "x", "messageId": "m\\u0000"}'),
        ("/v1/batch", b'{"batch": [{"type": "nope\\u0000", "userId": "a\\u0000"}]}'),  # rejected for its type
    ):
        r = _post(server, path, body, key)
        assert r.status_code == 200 and r.json()["rejected"] == 1, r.text
    stored = _stored(server, source)
    assert [m["reason"] for m in stored] == ["nul_character", "nul_character", "invalid_type"]
    assert stored[2]["payload"]["userId"] == "a\ufffd" and stored[1]["message_id"] == "m\ufffd"


def test_segment_sink_can_point_at_our_own_tracking_api(server: Server) -> None:
    """A Twilio event reaches the tracking API through the Event Streams Segment sink, as it would
    reach a customer's Segment: a track call keyed by the phone (anonymousId + a phone external id)."""
    from eventstreams.catalog import builtin_examples

    sid, token = server.new_account("Loop")
    account = server.call(server.services.store.accounts.get(sid))
    source, key = server.call(server.services.sources.create(account, "twilio"))
    client = server.client(sid, token)
    sink = client.events.v1.sinks.create(description="to ourselves", sink_type="segment",
                                         sink_configuration={"write_key": key, "endpoint": server.url})  # fmt: skip
    delivered = "com.twilio.messaging.message.delivered"
    client.events.v1.subscriptions.create(description="d", sink_sid=sink.sid, types=[{"type": delivered}])
    data = {**builtin_examples()["Messaging.MessageStatus"][1], "to": "+14155552671"}
    r = requests.post(f"{server.url}/v1/Events", auth=(sid, token), timeout=5,
                      headers={"Content-Type": "application/cloudevents+json"},
                      data=json.dumps({"specversion": "1.0", "type": delivered, "source": "/t", "id": "EV1",
                                       "data": data}))  # fmt: skip
    assert r.status_code == 201, r.text
    server.settled(sink.sid)
    got = [m for m in _stored(server, source.sid) if m["status"] == "accepted"]
    assert len(got) == 1
    msg = got[0]["payload"]
    assert msg["type"] == "track" and msg["event"] == delivered and msg["properties"]["to"] == "+14155552671"
    assert {"id": "+14155552671", "type": "phone", "collection": "users", "encoding": "none"} in (
        msg["context"]["externalIds"])  # fmt: skip


def test_concurrent_batches_sharing_message_ids_in_any_order(server: Server) -> None:
    """Each id is accepted exactly once and every request answers 200, however they interleave. (The
    claims are taken in sorted order so PostgreSQL cannot deadlock on them; a review reproduced such
    deadlocks against a `serve` process, which this in-process server only shows as retries.)"""
    import random
    from concurrent.futures import ThreadPoolExecutor

    _, source, key = _source(server)
    ids = [f"shared-{i}" for i in range(40)]

    def send(seed: int) -> requests.Response:
        order = list(ids)
        random.Random(seed).shuffle(order)
        batch = [{"type": "track", "userId": "u", "event": "E", "messageId": m} for m in order]
        return _post(server, "/v1/batch", {"batch": batch}, key)

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(send, range(64)))
    assert [r.status_code for r in answers] == [200] * 64
    assert sum(r.json()["accepted"] for r in answers) == 40
    assert sorted(m["message_id"] for m in _stored(server, source)) == sorted(ids)


def test_a_message_nested_too_deeply_is_rejected(server: Server) -> None:
    _, source, key = _source(server)
    body = b'{"userId": "x", "traits": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    r = _post(server, "/v1/identify", body, key)
    assert r.status_code == 200 and r.json()["rejected"] == 1 and r.json()["reasons"] == ["nested_too_deeply"]
    assert [m["reason"] for m in _stored(server, source)] == ["nested_too_deeply"]
