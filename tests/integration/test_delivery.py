"""Publish → fan-out → webhook delivery, end to end through a real server
and a real HTTP receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from eventstreams.catalog import builtin_examples
from tests.conftest import Receiver, Server, own_server

DELIVERED = "com.twilio.messaging.message.delivered"
EXAMPLES = builtin_examples()["Messaging.MessageStatus"]
LATEST = max(EXAMPLES)


def event(i: int | None = None, version: int = LATEST, **extra: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"specversion": "1.0", "type": DELIVERED, "source": "/test", "data": EXAMPLES[version]}
    if i is not None:
        ev["id"] = f"EZ{i:032x}"
    if version != LATEST:
        ev["dataschema"] = f"https://events-schemas.twilio.com/Messaging.MessageStatus/{version}"
    ev.update(extra)
    return ev


def publish(server: Server, auth: tuple[str, str], events: list[dict[str, Any]]) -> requests.Response:
    return requests.post(
        f"{server.url}/v1/Events",
        data=json.dumps(events),
        headers={"Content-Type": "application/cloudevents-batch+json"},
        auth=auth,
        timeout=10,
    )


def webhook(
    client: Client, receiver: Receiver, path: str, batch: bool, types: list[dict[str, Any]] | None = None
) -> str:
    sink = client.events.v1.sinks.create(
        description=path,
        sink_type="webhook",
        sink_configuration={"destination": receiver.url + path, "method": "POST", "batch_events": batch},
    )
    client.events.v1.subscriptions.create(description=path, sink_sid=sink.sid, types=types or [{"type": DELIVERED}])
    return str(sink.sid)


def test_publish_delivers_signed_events(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    client = server.client(*account)
    sink = webhook(client, receiver, "/single", batch=False)
    r = requests.post(
        f"{server.url}/v1/Events",
        data=json.dumps(event(1)),
        headers={"Content-Type": "application/cloudevents+json"},
        auth=account,
        timeout=5,
    )
    assert r.status_code == 201 and r.json() == {"accepted": [f"EZ{1:032x}"], "duplicates": [], "rejected": []}
    receiver.wait_for(lambda: len(receiver.events("/single")) == 1)
    req = receiver.requests[0]
    got = json.loads(req["body"])
    assert isinstance(got, dict)  # batch_events=false: one object, not an array
    assert got["id"] == f"EZ{1:032x}" and got["type"] == DELIVERED and got["data"] == EXAMPLES[LATEST]
    assert got["dataschema"] == f"https://events-schemas.twilio.com/Messaging.MessageStatus/{LATEST}"
    assert got["time"].endswith("Z") and got["specversion"] == "1.0"
    assert req["headers"]["Content-Type"] == "application/json"
    # X-Twilio-Signature, checked with the official validator and the account's auth token
    url = receiver.url + req["path"]
    assert "bodySHA256=" in req["path"]
    assert RequestValidator(account[1]).validate(url, req["body"].decode(), req["headers"]["X-Twilio-Signature"])
    assert not RequestValidator("wrong-token").validate(url, req["body"].decode(), req["headers"]["X-Twilio-Signature"])
    # Standard Webhooks, with the sink's secret
    secret = requests.get(f"{server.url}/v1/Sinks/{sink}/SigningSecret", auth=account, timeout=5).json()["secret"]
    headers = {k.lower(): v for k, v in req["headers"].items()}
    Webhook(secret).verify(req["body"], headers)


def test_batches_and_every_id_arrives(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    client = server.client(*account)
    webhook(client, receiver, "/batch", batch=True)
    ids = set()
    for start in range(0, 450, 150):
        r = publish(server, account, [event(i) for i in range(start, start + 150)])
        assert r.status_code == 201
        ids |= set(r.json()["accepted"])
    receiver.wait_for(lambda: {e["id"] for e in receiver.events("/batch")} == ids)
    sizes = [len(json.loads(r["body"])) for r in receiver.requests]
    assert max(sizes) <= 100 and all(isinstance(json.loads(r["body"]), list) for r in receiver.requests)


def test_missing_id_and_time_are_filled(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    webhook(server.client(*account), receiver, "/fill", batch=False)
    r = publish(server, account, [event()])
    (eid,) = r.json()["accepted"]
    assert eid.startswith("EZ") and len(eid) == 34
    receiver.wait_for(lambda: len(receiver.events("/fill")) == 1)
    assert receiver.events("/fill")[0]["id"] == eid


def test_rejections_name_index_and_reason(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    sink = webhook(server.client(*account), receiver, "/rej", batch=True)
    bad_data = dict(EXAMPLES[LATEST])
    bad_data.pop("messageSid")
    batch = [
        event(10),
        {"type": DELIVERED, "source": "/x", "data": EXAMPLES[LATEST]},  # no specversion
        event(11, type="com.example.nope"),
        event(12, data=bad_data),
        event(13, time="yesterday"),
        event(14, dataschema="https://events-schemas.twilio.com/Other.Schema/1"),
        event(15, type="com.twilio.conversations.delivery.updated"),  # discontinued
        "not an object",
    ]
    r = publish(server, account, batch)
    assert r.status_code == 207
    body = r.json()
    assert body["accepted"] == [f"EZ{10:032x}"]
    reasons = {x["index"]: x["message"] for x in body["rejected"]}
    assert set(reasons) == {1, 2, 3, 4, 5, 6, 7}
    assert "specversion" in reasons[1] and "unknown event type" in reasons[2]
    assert "messageSid" in reasons[3] and "time" in reasons[4] and "Other.Schema" in reasons[5]
    assert "discontinued" in reasons[6] and "JSON object" in reasons[7]
    r = publish(server, account, [event(20, data="x")])
    assert r.status_code == 400 and r.json()["code"] == 20001 and r.json()["rejected"][0]["index"] == 0
    receiver.wait_for(lambda: len(receiver.events("/rej")) == 1)
    server.settled(sink)
    assert [e["id"] for e in receiver.events("/rej")] == [f"EZ{10:032x}"]


def test_bad_requests(server: Server, account: tuple[str, str]) -> None:
    url = f"{server.url}/v1/Events"
    r = requests.post(url, data="{", headers={"Content-Type": "application/json"}, auth=account, timeout=5)
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = requests.post(url, data="{}", headers={"Content-Type": "text/plain"}, auth=account, timeout=5)
    assert r.status_code == 415
    r = requests.post(
        url, data="{}", headers={"Content-Type": "application/cloudevents-batch+json"}, auth=account, timeout=5
    )
    assert r.status_code == 400 and "JSON array" in r.json()["message"]
    r = publish(server, account, [event(i) for i in range(1001)])
    assert r.status_code == 413
    r = requests.post(url, json=event(1), timeout=5)
    assert r.status_code == 401


def test_dedupe_within_window(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    sink = webhook(server.client(*account), receiver, "/dedupe", batch=True)
    first = publish(server, account, [event(1), event(2), event(1)])
    assert first.json()["accepted"] == [f"EZ{1:032x}", f"EZ{2:032x}"]
    assert first.json()["duplicates"] == [f"EZ{1:032x}"]
    again = publish(server, account, [event(1), event(3)])
    assert again.status_code == 201
    assert again.json() == {"accepted": [f"EZ{3:032x}"], "duplicates": [f"EZ{1:032x}"], "rejected": []}
    receiver.wait_for(lambda: len(receiver.events("/dedupe")) == 3)
    server.settled(sink)
    assert sorted(e["id"] for e in receiver.events("/dedupe")) == [f"EZ{i:032x}" for i in (1, 2, 3)]
    # the same id in another account is another event
    other = server.new_account()
    assert publish(server, other, [event(1)]).json()["accepted"] == [f"EZ{1:032x}"]


def test_retries_then_success(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    sink = webhook(server.client(*account), receiver, "/flaky", batch=False)
    receiver.plan["/flaky"] = [(503, 0), (429, 0), (500, 0)]
    publish(server, account, [event(1)])
    receiver.wait_for(lambda: len(receiver.events("/flaky")) == 1)
    statuses = [r["status"] for r in receiver.requests]
    assert statuses == [503, 429, 500, 200]
    log = requests.get(f"{server.url}/v1/Sinks/{sink}/Deliveries", auth=account, timeout=5).json()["deliveries"]
    codes = [(x["outcome"], x["error_code"], x["http_status"]) for x in log]
    assert codes == [("failed", 91306, 503), ("failed", 91302, 429), ("failed", 91306, 500), ("delivered", None, None)]


def test_4xx_dead_letters_at_once_and_replay(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    sink = webhook(server.client(*account), receiver, "/gone", batch=False)
    receiver.plan["/gone"] = [(404, 0), (410, 0)]
    publish(server, account, [event(1), event(2)])
    url = f"{server.url}/v1/Sinks/{sink}/DeadLetters"
    receiver.wait_for(lambda: len(requests.get(url, auth=account, timeout=5).json()["dead_letters"]) == 2)
    dead = requests.get(url, auth=account, timeout=5).json()["dead_letters"]
    assert {d["error_code"] for d in dead} == {91305} and all(d["attempts"] == 1 for d in dead)
    assert len(receiver.requests) == 2  # no retry of a 4xx
    # replay one by id, then the rest
    r = requests.post(
        f"{server.url}/v1/Sinks/{sink}/Replay",
        data={"DeadLetters": "true", "EventId": dead[0]["event_id"]},
        auth=account,
        timeout=5,
    )
    assert r.status_code == 201 and r.json()["replayed"] == 1
    receiver.wait_for(lambda: len(receiver.events("/gone")) == 1)
    r = requests.post(f"{server.url}/v1/Sinks/{sink}/Replay", data={"DeadLetters": "true"}, auth=account, timeout=5)
    assert r.json()["replayed"] == 1
    receiver.wait_for(lambda: {e["id"] for e in receiver.events("/gone")} == {f"EZ{1:032x}", f"EZ{2:032x}"})
    assert requests.get(url, auth=account, timeout=5).json()["dead_letters"] == []


def test_retry_window_exhausted_dead_letters(short_window_server: Server, receiver: Receiver) -> None:
    # this server's window is 3 s (EVENTSTREAMS_RETRY_MAX_AGE); production's is 4 h
    server = short_window_server
    account = server.new_account()
    sink = webhook(server.client(*account), receiver, "/down", batch=True)
    receiver.plan["/down"] = [(503, 0)] * 1000
    publish(server, account, [event(1)])
    url = f"{server.url}/v1/Sinks/{sink}/DeadLetters"
    receiver.wait_for(lambda: requests.get(url, auth=account, timeout=5).json()["dead_letters"], timeout=20)
    (dead,) = requests.get(url, auth=account, timeout=5).json()["dead_letters"]
    assert dead["error_code"] == 91306 and "retry window" in dead["error"] and dead["attempts"] > 3
    n = len(receiver.requests)
    server.settled(sink)  # dead-lettering removed the delivery: nothing is left to attempt
    assert len(receiver.requests) == n


def test_replay_by_id_and_time_range(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    sink = webhook(server.client(*account), receiver, "/replay", batch=True)
    publish(server, account, [event(i) for i in range(5)])
    receiver.wait_for(lambda: len(receiver.events("/replay")) == 5)
    r = requests.post(
        f"{server.url}/v1/Sinks/{sink}/Replay",
        data={"EventId": [f"EZ{1:032x}", f"EZ{2:032x}"]},
        auth=account,
        timeout=5,
    )
    assert r.json()["replayed"] == 2
    receiver.wait_for(lambda: len(receiver.events("/replay")) == 7)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    r = requests.post(f"{server.url}/v1/Sinks/{sink}/Replay", data={"Since": since}, auth=account, timeout=5)
    assert r.json()["replayed"] == 5
    receiver.wait_for(lambda: len(receiver.events("/replay")) == 12)
    r = requests.post(f"{server.url}/v1/Sinks/{sink}/Replay", data={"Since": "last tuesday"}, auth=account, timeout=5)
    assert r.status_code == 400 and "Since" in r.json()["message"]
    # Until bounds the range: events received after it are not replayed
    until = datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds")  # one clock reading
    time.sleep(0.05)
    publish(server, account, [event(i) for i in range(5, 8)])
    receiver.wait_for(lambda: len(receiver.events("/replay")) == 15)
    r = requests.post(
        f"{server.url}/v1/Sinks/{sink}/Replay", data={"Since": since, "Until": until}, auth=account, timeout=5
    )
    assert r.json()["replayed"] == 5
    receiver.wait_for(lambda: len(receiver.events("/replay")) == 20)
    server.settled(sink)
    counts: dict[str, int] = {}
    for e in receiver.events("/replay"):
        counts[e["id"]] = counts.get(e["id"], 0) + 1
    assert [counts[f"EZ{i:032x}"] for i in range(8)] == [3, 4, 4, 3, 3, 1, 1, 1]
    r = requests.post(f"{server.url}/v1/Sinks/{sink}/Replay", data={"Until": "soon"}, auth=account, timeout=5)
    assert r.status_code == 400 and "Until" in r.json()["message"]


def test_schema_version_projection_and_skip(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    client = server.client(*account)
    webhook(client, receiver, "/v1", batch=False, types=[{"type": DELIVERED, "schema_version": 1}])
    publish(server, account, [event(1, version=LATEST)])
    receiver.wait_for(lambda: len(receiver.events("/v1")) == 1)
    got = receiver.events("/v1")[0]
    v1_fields = set(EXAMPLES[1])
    assert set(got["data"]) <= set(EXAMPLES[LATEST]) and set(got["data"]) >= v1_fields
    assert got["dataschema"] == "https://events-schemas.twilio.com/Messaging.MessageStatus/1"
    assert set(got["data"]) != set(EXAMPLES[LATEST])  # later-version fields were dropped
    # a version whose required field the published data lacks: skipped, and the log says why
    s1 = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a", "b"]}
    s2 = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]}
    for doc in (s1, s2):
        requests.post(
            f"{server.url}/v1/Catalog/Schemas/T.Proj/Versions",
            data={"Schema": json.dumps(doc)},
            auth=account,
            timeout=5,
        )
    requests.post(
        f"{server.url}/v1/Catalog/Types",
        data={"Type": "com.example.proj", "SchemaId": "T.Proj", "Description": "d"},
        auth=account,
        timeout=5,
    )
    sink = webhook(client, receiver, "/proj", batch=False, types=[{"type": "com.example.proj", "schema_version": 1}])
    base = {"specversion": "1.0", "type": "com.example.proj", "source": "/x"}
    publish(
        server,
        account,
        [{**base, "id": "ok", "data": {"a": "1", "b": "2"}}, {**base, "id": "lacks-b", "data": {"a": "1"}}],
    )
    log_url = f"{server.url}/v1/Sinks/{sink}/Deliveries"
    receiver.wait_for(
        lambda: (
            {x["outcome"] for x in requests.get(log_url, auth=account, timeout=5).json()["deliveries"]}
            == {"delivered", "skipped"}
        )
    )
    log = requests.get(log_url, auth=account, timeout=5).json()["deliveries"]
    skipped = next(x for x in log if x["outcome"] == "skipped")
    assert skipped["event_ids"] == ["lacks-b"] and '"b" is a required property' in skipped["detail"]
    assert [e["id"] for e in receiver.events("/proj")] == ["ok"]


def test_sink_test_event_and_validate(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    client = server.client(*account)
    sink = client.events.v1.sinks.create(
        description="t", sink_type="webhook", sink_configuration={"destination": receiver.url + "/t", "method": "POST"}
    )
    assert client.events.v1.sinks(sink.sid).sink_test.create().result == "submitted"
    receiver.wait_for(lambda: len(receiver.events("/t")) == 1)
    ev = receiver.events("/t")[0]
    assert ev["type"] == "com.twilio.eventstreams.test-event" and ev["source"] == "Sink" and ev["id"] == account[0]
    assert ev["dataschema"] == "https://events-schemas.twilio.com/EventStreams.TestSink/1.json"
    assert client.events.v1.sinks(sink.sid).sink_validate.create(test_id=ev["data"]["test_id"]).result == "valid"


def test_alerts_first_error_then_grouped(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    sink = webhook(server.client(*account), receiver, "/alerting", batch=False)
    receiver.plan["/alerting"] = [(500, 0)] * 3
    publish(server, account, [event(1)])
    receiver.wait_for(lambda: len(receiver.events("/alerting")) == 1)
    alerts = requests.get(f"{server.url}/v1/Alerts", auth=account, timeout=5).json()["alerts"]
    assert len(alerts) == 1  # the first error alerts; the next two are grouped under it
    a = alerts[0]
    assert a["resource_sid"] == sink and a["error_code"] == "91306" and a["sid"].startswith("NO")
    assert "HTTP 500" in a["alert_text"] and a["request_url"] == receiver.url + "/alerting"
    assert requests.get(a["url"], auth=account, timeout=5).json()["sid"] == a["sid"]
    other = server.new_account()
    assert requests.get(f"{server.url}/v1/Alerts", auth=other, timeout=5).json()["alerts"] == []
    assert requests.get(a["url"], auth=other, timeout=5).status_code == 404


def test_hung_sink_does_not_slow_a_healthy_one(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    client = server.client(*account)
    hung = webhook(client, receiver, "/hung", batch=False)
    webhook(client, receiver, "/healthy", batch=False)
    receiver.plan["/hung"] = [(200, 30.0)] * 1000  # each request outlives the 1 s delivery timeout
    start = time.monotonic()
    publish(server, account, [event(i) for i in range(200)])
    receiver.wait_for(lambda: len(receiver.events("/healthy")) == 200, timeout=20)
    healthy_done = time.monotonic() - start
    log = requests.get(f"{server.url}/v1/Sinks/{hung}/Deliveries", auth=account, timeout=5).json()["deliveries"]
    # all 200 reached the healthy sink while the hung one delivered nothing (only timeouts);
    # sharing its slots would have cost the healthy sink >= 200/32 x 1 s = 7 s of timeouts
    assert {x["outcome"] for x in log} <= {"failed", "dead"}, log
    assert {x["error_code"] for x in log} <= {91308}, log
    assert healthy_done < 6.0, healthy_done


def test_concurrent_publishers_lose_nothing(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    """Concurrent transactions commit out of order on PostgreSQL; fan-out rows
    (not a log cursor) mean no event is skipped."""
    import threading

    webhook(server.client(*account), receiver, "/concurrent", batch=True)
    accepted: list[str] = []
    lock = threading.Lock()

    def run(t: int) -> None:
        session = requests.Session()
        for b in range(10):
            batch = [event(t * 100_000 + b * 100 + i) for i in range(50)]
            r = session.post(
                f"{server.url}/v1/Events",
                data=json.dumps(batch),
                headers={"Content-Type": "application/cloudevents-batch+json"},
                auth=account,
                timeout=10,
            )
            assert r.status_code == 201
            with lock:
                accepted.extend(r.json()["accepted"])

    threads = [threading.Thread(target=run, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(accepted) == 3000
    receiver.wait_for(lambda: {e["id"] for e in receiver.events("/concurrent")} == set(accepted), timeout=30)


def test_down_sink_is_probed_not_hammered_then_expires(short_window_server: Server) -> None:
    """Connection refused: after the first failed chunk the sink is paused and probed with a few
    deliveries at a time; what its retry window (3 s here) loses is dead-lettered, untried or not."""
    server = short_window_server
    account = server.new_account()
    from tests.e2e.helpers import free_port

    client = server.client(*account)
    sink = client.events.v1.sinks.create(
        description="down",
        sink_type="webhook",
        sink_configuration={"destination": f"http://127.0.0.1:{free_port()}/x", "method": "POST", "batch_events": False},
    )
    client.events.v1.subscriptions.create(description="d", sink_sid=sink.sid, types=[{"type": DELIVERED}])
    for start in range(0, 2000, 500):
        assert publish(server, account, [event(i) for i in range(start, start + 500)]).status_code == 201
    dead_url = f"{server.url}/v1/Sinks/{sink.sid}/DeadLetters?PageSize=1000"

    def dead() -> list[dict[str, Any]]:
        out, url = [], dead_url
        while url:
            body = requests.get(url, auth=account, timeout=5).json()
            out += body["dead_letters"]
            url = body["meta"]["next_page_url"]
        return out

    deadline = time.monotonic() + 30
    while len(letters := dead()) < 2000 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(letters) == 2000, len(letters)
    assert {d["error_code"] for d in letters} == {91307}  # every letter carries the code, none lacks it
    assert all("retry window" in (d["error"] or "") for d in letters)
    log = requests.get(f"{server.url}/v1/Sinks/{sink.sid}/Deliveries?PageSize=1000", auth=account, timeout=5).json()
    attempted = sum(x["event_count"] for x in log["deliveries"] if x["outcome"] in ("failed", "dead"))
    # without the breaker each of the 2,000 would be tried at every backoff step (>= 5 times in 3 s)
    assert attempted < 2000, attempted
    assert min(d["attempts"] for d in letters) == 0  # some were never tried: expired while the sink was paused


def test_a_send_longer_than_the_lease_is_not_sent_twice(backend: str, tmp_path: Path, receiver: Receiver) -> None:
    """Each request takes 3.5 s against a 1.5 s lease: the worker renews the lease (every 0.5 s) while
    it sends, so when a later publish wakes the sink's other pipeline past the first lease's end, that
    pipeline (or another worker) does not lease the chunk again."""
    with own_server(backend, tmp_path, lease_s=1.5, delivery_timeout=10.0) as srv:
        account = srv.new_account()
        sink = webhook(srv.client(*account), receiver, "/slow", batch=False)
        receiver.plan["/slow"] = [(200, 3.5)] * 10
        publish(srv, account, [event(i) for i in range(10)])
        receiver.wait_for(lambda: len(receiver.requests) == 10)
        time.sleep(2.0)  # past the first lease: without renewal the 10 would be due again
        publish(srv, account, [event(10)])  # wakes the idle lane, which leases whatever is due

        def log() -> list[dict[str, Any]]:
            url = f"{srv.url}/v1/Sinks/{sink}/Deliveries"
            return list(requests.get(url, auth=account, timeout=5).json()["deliveries"])

        # the receiver records a request when it arrives and answers 3.5 s later
        receiver.wait_for(lambda: sum(x["event_count"] for x in log() if x["outcome"] == "delivered") == 11, 30)
        srv.settled(sink)
        ids = [e["id"] for e in receiver.events("/slow")]
        assert sorted(ids) == sorted(f"EZ{i:032x}" for i in range(11))  # each exactly once
        assert not [x for x in log() if x["outcome"] != "delivered"]


def test_retry_after_holds_the_whole_sink(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    """A 429 with Retry-After: 1 delays that delivery's retry, and events published meanwhile wait
    too, instead of meeting the same 429 after the ~50 ms backoff of this test server (whose cap on
    Retry-After is 4 x its 0.4 s largest backoff)."""
    webhook(server.client(*account), receiver, "/busy", batch=False)
    receiver.plan["/busy"] = [(429, 0.0, {"Retry-After": "1"})]
    publish(server, account, [event(1)])
    receiver.wait_for(lambda: len(receiver.requests) == 1)
    time.sleep(0.3)
    publish(server, account, [event(2)])
    receiver.wait_for(lambda: {e["id"] for e in receiver.events("/busy")} == {f"EZ{1:032x}", f"EZ{2:032x}"})
    first, *later = receiver.requests
    assert first["status"] == 429 and len(later) == 2
    assert all(r["at"] - first["at"] >= 0.95 for r in later), [round(r["at"] - first["at"], 2) for r in later]
