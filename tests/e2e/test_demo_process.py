"""`eventstreams demo` as a real process: it starts the service, wires it, reaches "events flowing", and a
SIGINT (Ctrl-C) stops the sender, the receiver and the server, and removes its temp data dir. While it runs,
what it wired is checked through the interfaces a user would look at: the console (signed in with the
credentials the demo prints) shows the events and their deliveries to both sinks, live in the debugger's
stream and on an event's page, and the sandbox's Messages list (the `twilio` client) holds the text the SMS
sink sent."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import requests
from twilio.rest import Client

from eventstreams.cli.demo import DEMO_PHONE, SANDBOX_FROM
from tests.clihelp import CLI
from tests.integration.test_console_http import sign_in


def debugger_stream(s: requests.Session, url: str, deadline: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """The console debugger's server-sent events, (kind, data), reconnecting with Last-Event-ID as a
    browser's EventSource does when a stream ends."""
    last = ""
    while time.monotonic() < deadline:
        headers = {"Last-Event-ID": last} if last else {}
        with s.get(f"{url}/console/debugger/stream", headers=headers, stream=True, timeout=10) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.text
            kind = ""
            for line in r.iter_lines(decode_unicode=True):
                field, _, value = line.partition(": ")
                if field == "event":
                    kind = value
                elif field == "id":
                    last = value
                elif field == "data":
                    yield kind, json.loads(value)
                if time.monotonic() >= deadline:
                    break
    raise AssertionError("the debugger stream did not show it in time")


def test_demo_reaches_events_flowing_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "COLUMNS": "200"}
    proc = subprocess.Popen([*CLI, "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: Queue[str] = Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    seen: list[str] = []
    try:
        while not any("events flowing" in line for line in seen):
            try:
                seen.append(lines.get(timeout=60))
            except Empty:
                raise AssertionError("no events flowing:\n" + "".join(seen)) from None
        text = "".join(seen)
        url = re.search(r"starting eventstreams on (http://127\.0\.0\.1:\d+)", text)
        data = re.search(r"\(data in (\S+)\)", text)
        assert url and data, text
        assert f"{url[1]}/console/" in text and "SMS sink" in text
        assert requests.get(f"{url[1]}/healthz", timeout=5).status_code == 200
        creds = re.search(r"sign in with (AC[0-9a-f]{32}) / ([0-9a-f]{32})", text)
        sinks = re.search(r"webhook sink (DG[0-9a-f]{32}), SMS sink (DG[0-9a-f]{32})", text)
        assert creds and sinks, text
        sid, token = creds[1], creds[2]
        webhook_sid, sms_sid = sinks[1], sinks[2]

        # the console, signed in with what the demo printed: the debugger's live stream shows a track call
        # and its deliveries to the webhook receiver and to the SMS sink
        session, signin = sign_in(url[1], sid, token)
        assert signin.status_code == 303, signin.text
        tracked: set[str] = set()
        delivered: dict[str, set[str]] = {webhook_sid: set(), sms_sid: set()}
        for kind, item in debugger_stream(session, url[1], time.monotonic() + 60):
            if kind == "event" and item["type"] == "com.segment.tracking.track":
                tracked.add(item["id"])
            elif kind == "attempt" and item["outcome"] == "delivered" and item["sink_sid"] in delivered:
                delivered[item["sink_sid"]].update(item["events"])
            if tracked & delivered[webhook_sid] & delivered[sms_sid]:
                break
        event_id = sorted(tracked & delivered[webhook_sid] & delivered[sms_sid])[0]
        # and that event's page: its payload and a delivered attempt per sink
        page = session.get(f"{url[1]}/console/events/{event_id}", timeout=10)
        assert page.status_code == 200, page.text
        assert "Demo Signup" in page.text
        for sink in (webhook_sid, sms_sid):
            assert re.search(rf"<code>{sink}</code></a></td><td class=\"outcome-delivered\">", page.text), sink

        # the SMS sink's text, in the sandbox's Messages list (the demo's own sandbox messages say
        # "(sandbox)"; the sink's come from its "Demo Signup" mapping)
        twilio = Client(sid, token)
        twilio.api.base_url = url[1]
        texts = twilio.messages.list(to=DEMO_PHONE)
        welcomes = [m for m in texts if re.fullmatch(r"Welcome, \w+!", m.body or "")]
        assert welcomes, [m.body for m in texts]
        assert all(m.from_ == SANDBOX_FROM and m.account_sid == sid for m in welcomes)

        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    while True:
        try:
            seen.append(lines.get(timeout=5))
        except Empty:
            break
    assert "demo stopped" in "".join(seen)
    try:  # the server went with it
        requests.get(f"{url[1]}/healthz", timeout=2)
        raise AssertionError("the demo's server still answers")
    except requests.ConnectionError:
        pass
    assert not Path(data[1]).exists()
