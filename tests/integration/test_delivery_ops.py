"""Embedding API, CLI, alert webhook and retention pruning."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest
import requests

import eventstreams
from eventstreams import clock
from eventstreams.catalog import builtin_examples
from eventstreams.config import Settings
from tests.clihelp import CLI, cli_env
from tests.conftest import Receiver, Server, make_settings, own_server, start_server

DATA = builtin_examples()["Messaging.MessageStatus"][1]
TYPE = "com.twilio.messaging.message.delivered"


def _event(i: str) -> dict[str, object]:
    return {"specversion": "1.0", "type": TYPE, "source": "/t", "id": i, "data": DATA}


def _sink(server: Server, account: tuple[str, str], receiver: Receiver, path: str) -> str:
    client = server.client(*account)
    sink = client.events.v1.sinks.create(
        description="d",
        sink_type="webhook",
        sink_configuration={"destination": receiver.url + path, "method": "POST", "batch_events": True},
    )
    client.events.v1.subscriptions.create(description="d", sink_sid=sink.sid, types=[{"type": TYPE}])
    return str(sink.sid)


def test_embedded_publish_reaches_the_server_dispatcher(
    server: Server, account: tuple[str, str], receiver: Receiver
) -> None:
    _sink(server, account, receiver, "/embedded")

    def run() -> eventstreams.embedded.PublishResult:  # another thread: asyncio.run inside
        return eventstreams.publish(
            [_event("emb-1"), _event("emb-2"), {"type": "x"}], account_sid=account[0], settings=server.settings
        )

    result = run()
    assert result.accepted == ["emb-1", "emb-2"] and result.rejected[0].index == 2
    # stored by another "process" (no wake-up reaches the server): found by polling
    receiver.wait_for(lambda: {e["id"] for e in receiver.events("/embedded")} == {"emb-1", "emb-2"})
    with pytest.raises(LookupError):
        eventstreams.publish(_event("x"), account_sid="AC" + "0" * 32, settings=server.settings)


def test_cli_publish_dead_letters_and_replay(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    sink = _sink(server, account, receiver, "/cli")
    receiver.plan["/cli"] = [(400, 0)]
    env = cli_env(server.url, *account)
    cli = [*CLI]
    out = subprocess.run(
        [*cli, "publish", "-o", "json"], input=json.dumps(_event("cli-1")), env=env,
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout)["accepted"] == ["cli-1"]

    def dead() -> list[dict[str, object]]:
        r = subprocess.run(
            [*cli, "dead-letters", "--sink", sink, "-o", "json"], env=env, capture_output=True, text=True,
            timeout=60, check=True,
        )  # fmt: skip
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    receiver.wait_for(lambda: len(dead()) == 1, timeout=20)
    assert dead()[0]["event_id"] == "cli-1" and dead()[0]["error_code"] == 91305
    r = subprocess.run(
        [*cli, "replay", "--sink", sink, "--dead-letters", "-o", "json"], env=env, capture_output=True,
        text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(r.stdout) == {"sink_sid": sink, "replayed": 1}
    receiver.wait_for(lambda: [e["id"] for e in receiver.events("/cli")] == ["cli-1"])

    def replay(*args: str) -> dict[str, object]:
        r = subprocess.run(
            [*cli, "replay", "--sink", sink, "-o", "json", *args], env=env, capture_output=True,
            text=True, timeout=60, check=True,
        )  # fmt: skip
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    # stored events again, by id and by time range (the dispatcher finds them by polling or NOTIFY)
    assert replay("--event-id", "cli-1", "--event-id", "not-published") == {"sink_sid": sink, "replayed": 1}
    receiver.wait_for(lambda: [e["id"] for e in receiver.events("/cli")] == ["cli-1"] * 2)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 120))
    assert replay("--since", since) == {"sink_sid": sink, "replayed": 1}
    receiver.wait_for(lambda: [e["id"] for e in receiver.events("/cli")] == ["cli-1"] * 3)
    assert replay("--since", since, "--until", since) == {"sink_sid": sink, "replayed": 0}
    bad = subprocess.run(
        [*cli, "publish"], input="{nope", env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode != 0 and "not valid JSON" in bad.stderr


def test_alert_webhook_and_retention(tmp_path: Path) -> None:
    hook = Receiver()
    target = Receiver()
    settings = make_settings(f"sqlite:///{tmp_path}/a.db", tmp_path, alert_webhook_url=hook.url + "/alerts")
    srv = start_server(settings)
    try:
        sid, token = srv.new_account()
        client = srv.client(sid, token)
        sink = client.events.v1.sinks.create(
            description="d", sink_type="webhook",
            sink_configuration={"destination": target.url + "/x", "method": "POST", "batch_events": False},
        )  # fmt: skip
        client.events.v1.subscriptions.create(description="d", sink_sid=sink.sid, types=[{"type": TYPE}])
        target.plan["/x"] = [(502, 0)]
        requests.post(f"{srv.url}/v1/Events", json=_event("al-1"), auth=(sid, token), timeout=5).raise_for_status()
        hook.wait_for(lambda: len(hook.events("/alerts")) == 1)
        alert = hook.events("/alerts")[0]
        assert alert["resource_sid"] == sink.sid and alert["error_code"] == "91306" and alert["account_sid"] == sid
        target.wait_for(lambda: len(target.events("/x")) == 1)
        # retention: everything older than the windows goes, pending work stays
        store = srv.services.store
        future = int((srv.services.delivery.settings.log_retention_s + 30 * 86400) * 1000)
        import time as _t

        counts = srv.call(
            store.retention.prune(int(_t.time() * 1000) + future, {"log": 0, "errors": 0, "dedupe": 0, "events": 0})
        )
        assert (
            counts["delivery_log"] >= 2 and counts["alerts"] == 1 and counts["events"] == 1 and counts["event_ids"] == 1
        )
        assert (
            requests.get(f"{srv.url}/v1/Sinks/{sink.sid}/Deliveries", auth=(sid, token), timeout=5).json()["deliveries"]
            == []
        )
        # the id may be published again once its dedupe window has passed
        r = requests.post(f"{srv.url}/v1/Events", json=_event("al-1"), auth=(sid, token), timeout=5)
        assert r.json()["accepted"] == ["al-1"]
    finally:
        srv.stop()
        hook.close()
        target.close()


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "EVENTSTREAMS_RETRY_MAX_AGE": "60",
            "EVENTSTREAMS_DEDUPE_WINDOW_SECONDS": "10",
            "EVENTSTREAMS_DELIVERY": "false",
        }
    )
    assert (s.retry_max_age, s.dedupe_window_s, s.delivery) == (60.0, 10.0, False)
    assert asyncio.iscoroutinefunction(eventstreams.EventStreams.open)


def test_retention_keeps_errors_longer_than_the_delivery_log(
    backend: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defaults: delivery log 7 days, error log (failed/dead entries), alerts and dead letters 23 days."""
    target = receiver
    with own_server(backend, tmp_path) as srv:
        sid, token = srv.new_account()
        client = srv.client(sid, token)
        ok = client.events.v1.sinks.create(
            description="ok", sink_type="webhook",
            sink_configuration={"destination": target.url + "/ok", "method": "POST", "batch_events": False},
        )  # fmt: skip
        bad = client.events.v1.sinks.create(
            description="bad", sink_type="webhook",
            sink_configuration={"destination": target.url + "/bad", "method": "POST", "batch_events": False},
        )  # fmt: skip
        for s in (ok, bad):
            client.events.v1.subscriptions.create(description="d", sink_sid=s.sid, types=[{"type": TYPE}])
        target.plan["/bad"] = [(410, 0)]  # 4xx: dead-lettered at once, an error entry in the log
        r = requests.post(f"{srv.url}/v1/Events", json=_event("ret-1"), auth=(sid, token), timeout=5)
        assert r.json()["accepted"] == ["ret-1"]

        def log(sink: str) -> list[dict[str, object]]:
            url = f"{srv.url}/v1/Sinks/{sink}/Deliveries"
            return list(requests.get(url, auth=(sid, token), timeout=5).json()["deliveries"])

        def dead() -> list[dict[str, object]]:
            url = f"{srv.url}/v1/Sinks/{bad.sid}/DeadLetters"
            return list(requests.get(url, auth=(sid, token), timeout=5).json()["dead_letters"])

        target.wait_for(lambda: len(log(ok.sid)) == 1 and len(dead()) == 1)
        assert [x["outcome"] for x in log(bad.sid)] == ["dead"]
        defaults = Settings()
        assert (defaults.log_retention_s, defaults.error_retention_s) == (7 * 86400, 23 * 86400)
        service = srv.services.delivery
        assert (service.settings.log_retention_s, service.settings.error_retention_s) == (7 * 86400, 23 * 86400)
        real_now = clock.now

        def prune_days_later(days: int) -> dict[str, int]:
            """The production pruning, run as if ``days`` had passed."""
            monkeypatch.setattr(clock, "now", lambda: real_now() + days * 86400)
            try:
                return dict(srv.call(service.prune_once()))
            finally:
                monkeypatch.setattr(clock, "now", real_now)

        counts = prune_days_later(8)
        assert counts["delivery_log"] == 1 and counts["alerts"] == 0 and counts["dead_letters"] == 0
        assert log(ok.sid) == [] and [x["outcome"] for x in log(bad.sid)] == ["dead"] and len(dead()) == 1
        alerts = requests.get(f"{srv.url}/v1/Alerts", auth=(sid, token), timeout=5).json()["alerts"]
        assert len(alerts) == 1
        counts = prune_days_later(24)
        assert counts["delivery_log"] == 1 and counts["alerts"] == 1 and counts["dead_letters"] == 1
        assert log(bad.sid) == [] and dead() == []


def test_metrics_need_the_operator_token_and_count_deliveries(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    """/metrics is the whole process's numbers: account credentials do not open it, only
    EVENTSTREAMS_METRICS_TOKEN as a bearer token; without that setting it does not exist."""
    with own_server(backend, tmp_path, metrics_token="s3cret") as srv:
        account = srv.new_account()
        _sink(srv, account, receiver, "/metrics")
        assert requests.get(f"{srv.url}/metrics", timeout=10).status_code == 401
        assert requests.get(f"{srv.url}/metrics", auth=account, timeout=10).json()["code"] == 20003
        r = requests.post(f"{srv.url}/v1/Events", json=[_event("m-1"), _event("m-2")], auth=account, timeout=10,
                          headers={"Content-Type": "application/cloudevents-batch+json"})  # fmt: skip
        assert r.status_code == 201, r.text
        receiver.wait_for(lambda: len(receiver.events("/metrics")) == 2)

        def delivered() -> float:
            text = requests.get(f"{srv.url}/metrics", headers={"Authorization": "Bearer s3cret"}, timeout=10).text
            for line in text.splitlines():
                if line.startswith('eventstreams_deliveries_total{outcome="delivered",sink_type="webhook"}'):
                    return float(line.split()[-1])
            return 0.0

        receiver.wait_for(lambda: delivered() == 2.0)  # counted after the commit that follows receipt
    with own_server(backend, tmp_path / "off") as srv:
        assert requests.get(f"{srv.url}/metrics", headers={"Authorization": "Bearer s3cret"}, timeout=10).status_code == 404
