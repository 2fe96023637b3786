"""Operations (docs/operations.md): /metrics after real traffic, /healthz and /readyz, JSON log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from eventstreams import logs
from eventstreams.catalog import builtin_examples
from tests.conftest import Receiver, Server, own_server

TYPE = "com.twilio.messaging.message.delivered"
DATA = builtin_examples()["Messaging.MessageStatus"][max(builtin_examples()["Messaging.MessageStatus"])]
BEARER = {"Authorization": "Bearer scrape-me"}


def _event(i: str) -> dict[str, object]:
    return {"specversion": "1.0", "type": TYPE, "source": "/t", "id": i, "data": DATA}


def _sink(srv: Server, account: tuple[str, str], destination: str) -> str:
    client = srv.client(*account)
    sink = client.events.v1.sinks.create(
        description="ops", sink_type="webhook",
        sink_configuration={"destination": destination, "method": "POST", "batch_events": False},
    )  # fmt: skip
    client.events.v1.subscriptions.create(description="ops", sink_sid=sink.sid, types=[{"type": TYPE}])
    return str(sink.sid)


def scrape(srv: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    r = requests.get(f"{srv.url}/metrics", headers=BEARER, timeout=10)
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_publish_tracking_delivery_and_http(backend: str, tmp_path: Path, receiver: Receiver) -> None:
    with own_server(backend, tmp_path, metrics_token="scrape-me") as srv:
        account = srv.new_account()
        ok = _sink(srv, account, receiver.url + "/ok")
        receiver.plan["/down"] = [(503, 0.0)] * 1000
        _sink(srv, account, receiver.url + "/down")
        r = requests.post(f"{srv.url}/v1/Events", json=[_event("m-1"), _event("m-2")], auth=account, timeout=10,
                          headers={"Content-Type": "application/cloudevents-batch+json"})  # fmt: skip
        assert r.status_code == 201, r.text
        tracked = srv.call(srv.services.sources.create(srv.call(srv.services.store.accounts.get(account[0])), "w"))
        t = requests.post(f"{srv.url}/v1/track", json={"userId": "u1", "event": "Signed Up", "messageId": "t-1"},
                          auth=(tracked[1], ""), timeout=10)  # fmt: skip
        assert t.status_code == 200, t.text
        assert requests.get(f"{srv.url}/v1/Sinks/{ok}", auth=account, timeout=10).status_code == 200
        assert requests.get(f"{srv.url}/no/such/path", timeout=10).status_code == 404

        def ready() -> bool:
            s = scrape(srv)
            return (
                sample(s, "eventstreams_deliveries_total", sink_type="webhook", outcome="delivered") == 2
                and sample(s, "eventstreams_deliveries_total", sink_type="webhook", outcome="retried") >= 2
            )

        receiver.wait_for(ready)
        s = scrape(srv)
        assert sample(s, "eventstreams_events_accepted_total", source="publish") == 2
        assert sample(s, "eventstreams_events_accepted_total", source="tracking") == 1
        assert sample(s, "eventstreams_delivery_latency_seconds_count", sink_type="webhook") == 2
        assert sample(s, "eventstreams_sink_send_seconds_count", sink_type="webhook") >= 2  # one per chunk
        post = {"method": "POST", "route": "/v1/Events", "status": "201"}
        assert sample(s, "eventstreams_http_requests_total", **post) == 1
        fetch = {"method": "GET", "route": "/v1/Sinks/{sid}", "status": "200"}
        assert sample(s, "eventstreams_http_requests_total", **fetch) == 1, "the route template, not the path"
        assert sample(s, "eventstreams_http_requests_total", method="GET", route="unmatched", status="404") == 1
        assert sample(s, "eventstreams_http_request_duration_seconds_count", method="POST", route="/v1/Events") == 1
        assert not any(ok in str(key) for key in s), "a raw path (a SID) became a label"
        # the backlog: the down sink's two events wait, retried; read from the store at scrape time
        srv.call(srv.services.metrics.refresh(srv.services.store, force=True))
        s = scrape(srv)
        assert sample(s, "eventstreams_delivery_queue_depth") == 2
        assert sample(s, "eventstreams_delivery_retry_queue_depth") == 2
        assert sample(s, "eventstreams_delivery_oldest_pending_age_seconds") > 0


def test_healthz_is_alive_and_readyz_checks_store_migrations_dispatcher(backend: str, tmp_path: Path) -> None:
    with own_server(backend, tmp_path) as srv:
        ready = requests.get(f"{srv.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ok",
            "checks": {"store": {"ok": True}, "migrations": {"ok": True}, "dispatcher": {"ok": True}},
        }
        # a migration the packaged build has but the database lacks: not ready
        store = srv.services.store
        last = srv.call(store.pending_migrations()) or None
        assert last is None
        name = "011_warehouse"
        srv.call(store.db.run(lambda tx: tx.run(f"DELETE FROM schema_migrations WHERE name = '{name}'"), write=True))
        r = requests.get(f"{srv.url}/readyz", timeout=10)
        assert r.status_code == 503
        assert r.json()["checks"]["migrations"] == {"ok": False, "detail": f"not applied: {name}"}
        assert r.json()["checks"]["store"] == {"ok": True}
        srv.call(store.db.run(lambda tx: tx.run(store._q.record_migration, n=name), write=True))
        assert requests.get(f"{srv.url}/readyz", timeout=10).status_code == 200
        # the dispatcher stopped in a process that delivers: not ready
        srv.call(srv.services.stop_delivery())
        r = requests.get(f"{srv.url}/readyz", timeout=10)
        assert r.status_code == 503 and r.json()["checks"]["dispatcher"]["ok"] is False
        # the store closed: not ready, but alive
        srv.call(store.close())
        r = requests.get(f"{srv.url}/readyz", timeout=10)
        assert r.status_code == 503 and r.json()["checks"]["store"]["ok"] is False, r.text
        assert r.json()["status"] == "unavailable"
        health = requests.get(f"{srv.url}/healthz", timeout=10)
        assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_readyz_without_delivery_has_no_dispatcher_check(backend: str, tmp_path: Path) -> None:
    with own_server(backend, tmp_path, delivery=False) as srv:
        r = requests.get(f"{srv.url}/readyz", timeout=10)
        assert r.status_code == 200 and set(r.json()["checks"]) == {"store", "migrations"}


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = logs.configure("json", "DEBUG", stream=buf)
    assert handler is not None
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_delivery_log_lines_carry_event_sink_account_and_no_secret(
    backend: str, tmp_path: Path, receiver: Receiver, json_logs: io.StringIO
) -> None:
    with own_server(backend, tmp_path) as srv:
        account = srv.new_account()
        # a password in the destination: it must not reach a log line
        receiver.plan["/gone"] = [(410, 0.0)]
        dest = receiver.url.replace("http://", "http://hook:hunter2secret@") + "/gone"
        sink = _sink(srv, account, dest)
        r = requests.post(f"{srv.url}/v1/Events", json=_event("log-1"), auth=account, timeout=10)
        assert r.status_code == 201, r.text

        def dead_line() -> dict[str, object] | None:
            for line in json_logs.getvalue().splitlines():
                doc = json.loads(line)
                if doc.get("event_id") == "log-1" and "dead-lettered" in str(doc["message"]):
                    return dict(doc)
            return None

        receiver.wait_for(lambda: dead_line() is not None)
        line = dead_line()
        assert line is not None
        assert line["sink_sid"] == sink and line["account_sid"] == account[0] and line["level"] == "WARNING"
        assert line["sink_type"] == "webhook" and line["error_code"] and line["logger"] == "eventstreams.delivery"
        text = json_logs.getvalue()
        assert "hunter2secret" not in text and account[1] not in text
        assert all(json.loads(x) for x in text.splitlines())  # every line is one JSON object
