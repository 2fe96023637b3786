"""The Segment side end to end, real processes, both backends: segment-analytics-python identifies
user 42 (a national-format phone, a first name) and tracks "Trial Expired"; the Twilio SMS
destination texts the profile's phone through the sandbox (mounted in the same server), with the
body rendered from the traits and properties; the sandbox's signed status callbacks come back
through the bridge and land on the profile as "SMS Delivered"; a replay of the event sends nothing
new."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from segment.analytics import Client as SegmentClient
from twilio.rest import Client

from tests.conftest import drop_pg_database, pg_database
from tests.e2e.helpers import free_port, spawn, stop, wait_healthy

SID, TOKEN = "AC" + "5f" * 16, "7b" * 16
SANDBOX_FROM = "+15005550006"  # the sandbox's always-valid test sender


def _until(fn: Any, timeout: float = 30.0) -> Any:
    """Poll ``fn`` until it returns something truthy (the other processes give no signal to await)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def _profile_events(url: str) -> list[dict[str, Any]]:
    r = requests.get(f"{url}/v1/spaces/{SID}/collections/users/profiles/user_id:42/events", auth=(SID, TOKEN),
                     timeout=5)  # fmt: skip
    return list(r.json().get("data", [])) if r.status_code == 200 else []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_track_event_texts_the_profile_and_callbacks_close_the_loop(backend: str, tmp_path: Path) -> None:
    name = f"es_sms_{os.getpid()}"
    db = f"sqlite:///{tmp_path}/es.db" if backend == "sqlite" else pg_database(name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "EVENTSTREAMS_DATABASE_URL": db,
        "EVENTSTREAMS_DATA_DIR": str(tmp_path),
        "EVENTSTREAMS_ACCOUNT_SID": SID,
        "EVENTSTREAMS_AUTH_TOKEN": TOKEN,
        "EVENTSTREAMS_BASE_URL": url,
        "EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS": "true",
        "EVENTSTREAMS_SANDBOX": "true",
        "EVENTSTREAMS_SANDBOX_STEP_SECONDS": "0.05",
        "EVENTSTREAMS_POLL_INTERVAL": "0.2",
    }
    proc = spawn(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    try:
        wait_healthy(url, proc)
        source = requests.post(f"{url}/v1/Sources", data={"Name": "web"}, auth=(SID, TOKEN), timeout=5)
        assert source.status_code == 201, source.text
        write_key = source.json()["write_key"]
        config = {
            "account_sid": SID,
            "auth_token": TOKEN,
            "from": SANDBOX_FROM,
            "base_url": url,
            "status_callback_base_url": url,
            "mappings": [{"event": "Trial Expired",
                          "body": "Hi {{ traits.first_name | default: 'there' }}, your {{ properties.plan }} "
                                  "trial has ended."}],
        }  # fmt: skip
        sink = requests.post(f"{url}/v1/Sinks", auth=(SID, TOKEN), timeout=5, data={
            "Description": "texts", "SinkType": "twilio-sms", "SinkConfiguration": json.dumps(config)})  # fmt: skip
        assert sink.status_code == 201, sink.text
        sink_sid = sink.json()["sid"]
        sub = requests.post(f"{url}/v1/Subscriptions", auth=(SID, TOKEN), timeout=5, data={
            "Description": "tracks", "SinkSid": sink_sid,
            "Types": json.dumps({"type": "com.segment.tracking.track"})})  # fmt: skip
        assert sub.status_code == 201, sub.text

        errors: list[Any] = []
        seg = SegmentClient(write_key, host=url, sync_mode=True, on_error=lambda e, b: errors.append(e))
        seg.identify("42", {"phone": "(415) 555-2671", "first_name": "Ada"})
        seg.track("42", "Trial Expired", {"plan": "pro"}, message_id="trial-42")
        track_id = f"{source.json()['sid']}.trial-42"
        assert errors == []

        twilio = Client(SID, TOKEN)
        twilio.api.base_url = url
        texts = _until(lambda: twilio.messages.list(to="+14155552671"))
        assert len(texts) == 1
        assert texts[0].body == "Hi Ada, your pro trial has ended."
        assert texts[0].from_ == SANDBOX_FROM

        events = _until(lambda: [e for e in _profile_events(url) if e.get("event") == "SMS Delivered"])
        assert events[0]["properties"]["messageSid"] == texts[0].sid
        names = {e.get("event") for e in _profile_events(url)}
        assert {"Trial Expired", "SMS Sent", "SMS Delivered"} <= names

        # a replay of everything the sink was sent (the track event included) sends no second text
        replay = requests.post(f"{url}/v1/Sinks/{sink_sid}/Replay", auth=(SID, TOKEN), timeout=5,
                               data={"Since": "2000-01-01T00:00:00Z"})  # fmt: skip
        assert replay.status_code == 201 and replay.json()["replayed"] >= 1, replay.text
        log = _until(lambda: _log_after_replay(url, sink_sid, track_id))
        assert log, "the replayed event was delivered (answered from the ledger)"
        assert len(twilio.messages.list(to="+14155552671")) == 1
    finally:
        stop(proc)
        if backend == "postgres":
            drop_pg_database(name)


def _log_after_replay(url: str, sink_sid: str, event_id: str) -> list[dict[str, Any]]:
    """The sink's delivery-log entries for ``event_id``: two once the replay has gone through."""
    r = requests.get(f"{url}/v1/Sinks/{sink_sid}/Deliveries", auth=(SID, TOKEN), timeout=5)
    entries = r.json().get("deliveries", []) if r.status_code == 200 else []
    mine = [e for e in entries if event_id in e.get("event_ids", [])]
    return mine if len(mine) >= 2 else []
