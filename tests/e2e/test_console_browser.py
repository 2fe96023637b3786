"""The web console in a real browser: Playwright driving Debian's Chromium (scripts/ensure-chromium.sh
installs it; never `playwright install`). One flow, as a user would go: sign in, create a webhook sink,
subscribe it, publish an event (HTTP API), watch it arrive in the debugger, stop the receiver, see the
failure and the dead letter (a 3 s retry window here), restart the receiver and replay the dead letter.
Each page's screenshot is written to docs/console/ (linked from docs/console.md)."""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from eventstreams.catalog import builtin_examples
from tests.conftest import Receiver, Server, own_server

CHROMIUM = "/usr/bin/chromium"
# Screenshots of every page: test artifacts under test-artifacts/console/ (untracked). The ones docs/console.md
# links are refreshed with EVENTSTREAMS_CONSOLE_SHOTS=docs/console, so a test run never edits tracked files.
SHOTS = Path(os.environ.get("EVENTSTREAMS_CONSOLE_SHOTS")
             or Path(__file__).resolve().parents[2] / "test-artifacts" / "console")  # fmt: skip
TYPE = "com.twilio.messaging.message.delivered"
EXAMPLES = builtin_examples()["Messaging.MessageStatus"]
WAIT_MS = 30_000


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def shot(page: Page, name: str, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def publish(srv: Server, auth: tuple[str, str], event_id: str) -> None:
    event = {"specversion": "1.0", "type": TYPE, "source": "/browser-test", "id": event_id,
             "data": EXAMPLES[max(EXAMPLES)]}  # fmt: skip
    r = requests.post(f"{srv.url}/v1/Events", data=json.dumps([event]), auth=auth, timeout=10,
                      headers={"Content-Type": "application/cloudevents-batch+json"})  # fmt: skip
    assert r.status_code == 201, r.text


def _hang_up(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


def stop(receiver: Receiver) -> None:
    receiver.close()  # the port now refuses connections, and the open ones are closed
    # and a connection the sink keeps alive is dropped at its next request, as a dead server's would be
    receiver.httpd.RequestHandlerClass.do_POST = _hang_up  # type: ignore[attr-defined]


def restart(receiver: Receiver) -> None:
    """The same handler on the same port (the sink's URL)."""
    address = receiver.httpd.server_address
    handler = receiver.httpd.RequestHandlerClass
    handler.do_POST = handler._handle  # type: ignore[attr-defined]
    receiver.httpd = http.server.ThreadingHTTPServer((str(address[0]), int(address[1])),
                                                     receiver.httpd.RequestHandlerClass)  # fmt: skip
    receiver.httpd.daemon_threads = True
    receiver.thread = threading.Thread(target=receiver.httpd.serve_forever, daemon=True)
    receiver.thread.start()


@pytest.mark.timeout(300)
def test_console_in_a_browser(tmp_path: Path, receiver: Receiver, browser: Browser) -> None:
    with own_server("sqlite", tmp_path, retry_max_age=3.0) as srv:
        sid, token = srv.new_account("Browser test")
        sub_sid, _ = srv.new_account("Team subaccount", parent=sid)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(WAIT_MS)

        # signing in: an unauthenticated page sends us to the form, and back after it
        page.goto(f"{srv.url}/console/sinks")
        expect(page).to_have_url(re.compile(r"/console/signin\?next="))
        page.get_by_label("Account SID or API key SID").fill(sid)
        page.get_by_label("Auth token or API key secret").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not accepted")
        shot(page, "signin")
        page.get_by_label("Account SID or API key SID").fill(sid)
        page.get_by_label("Auth token or API key secret").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{srv.url}/console/sinks")
        expect(page.get_by_text(sid).first).to_be_visible()

        # a webhook sink, from the form the registry generates
        page.get_by_role("link", name="Create a sink").click()
        page.get_by_label("Sink type").select_option("webhook")
        page.get_by_role("button", name="Choose").click()
        page.get_by_label("Description").fill("Browser webhook")
        page.get_by_label("destination").fill(f"{receiver.url}/hook")
        page.get_by_label("method").fill("POST")
        shot(page, "sink-new")
        page.get_by_role("button", name="Create webhook sink").click()
        expect(page.get_by_role("status").first).to_contain_text("created")
        sink_sid = re.search(r"/console/sinks/(DG[0-9a-f]{32})", page.url).group(1)  # type: ignore[union-attr]

        # subscribed, with the event-type picker
        page.get_by_role("link", name="Subscribe it to events").click()
        page.get_by_label("Description").fill("Delivered messages")
        page.get_by_label("Filter event types").fill("message.delivered")
        expect(page.get_by_role("checkbox", name="com.twilio.messaging.message.sent")).to_be_hidden()
        page.get_by_role("checkbox", name=TYPE).check()
        shot(page, "subscriptions-new")
        page.get_by_role("button", name="Create subscription").click()
        expect(page.get_by_role("status").first).to_contain_text("Subscription DF")
        shot(page, "subscriptions")

        # the debugger shows the published event arrive and be delivered
        page.get_by_role("link", name="Debugger").click()
        expect(page.locator("#live-status")).to_contain_text("Live")
        first = "EV" + uuid.uuid4().hex
        publish(srv, (sid, token), first)
        expect(page.locator(f'li.event[data-id="{first}"]')).to_be_visible()
        expect(page.locator("li.attempt.outcome-delivered", has_text=first)).to_be_visible()
        receiver.wait_for(lambda: any(e["id"] == first for e in receiver.events("/hook")))
        page.locator(f'li.event[data-id="{first}"] summary').click()  # the pretty payload
        expect(page.locator(f'li.event[data-id="{first}"] pre')).to_contain_text('"messageStatus"')
        shot(page, "debugger")

        # the receiver goes away: the failure shows live, then the event is dead-lettered
        stop(receiver)
        second = "EV" + uuid.uuid4().hex
        publish(srv, (sid, token), second)
        expect(page.locator("li.attempt.outcome-failed", has_text=second).first).to_be_visible()
        shot(page, "debugger-failure")
        page.goto(f"{srv.url}/console/sinks/{sink_sid}")
        dead_row = page.locator("tr.dead-letter", has_text=second)
        for _ in range(60):  # the dead letter is written once the 3 s window ends; reload until it shows
            if dead_row.count():
                break
            page.wait_for_timeout(500)
            page.reload()
        expect(dead_row).to_be_visible()
        expect(page.locator("tr.failure").first).to_be_visible()
        shot(page, "sink")
        page.get_by_role("link", name="Dead letters").click()
        expect(page.locator("tr.dead-letter", has_text=second)).to_be_visible()
        shot(page, "dead-letters")

        # the event's own page: each attempt per sink with its error code
        page.get_by_role("link", name=second).click()
        expect(page.locator("td.outcome-failed").first).to_be_visible()
        shot(page, "event")

        # back up, and the dead letter replayed from the sink's page
        restart(receiver)
        page.goto(f"{srv.url}/console/sinks/{sink_sid}")
        page.locator("tr.dead-letter", has_text=second).get_by_role("button", name="Replay").click()
        expect(page.get_by_role("status").first).to_contain_text("Replayed 1 event(s)")
        receiver.wait_for(lambda: any(e["id"] == second for e in receiver.events("/hook")), timeout=30)
        page.goto(f"{srv.url}/console/debugger?outcome=delivered")
        expect(page.locator("li.attempt.outcome-delivered", has_text=second)).to_be_visible()
        page.goto(f"{srv.url}/console/sinks/{sink_sid}")
        expect(page.get_by_text("No dead letters.")).to_be_visible()

        # the other pages, for the record (and that each renders)
        page.get_by_role("link", name="eventstreams").click()
        expect(page.locator("#backlog tbody tr").first).to_be_visible()
        expect(page.locator("#charts canvas").first).to_be_visible()
        shot(page, "overview")
        page.get_by_role("link", name="Catalogue").click()
        shot(page, "catalogue", full_page=False)  # the whole catalogue is a very long page
        page.get_by_role("link", name=TYPE).click()
        expect(page.get_by_role("cell", name="messageStatus")).to_be_visible()
        shot(page, "schema")
        page.get_by_role("link", name="Alerts").click()
        shot(page, "alerts")
        page.get_by_role("link", name="Sources", exact=True).click()
        page.get_by_label("Name").fill("website")
        page.get_by_role("button", name="Create source").click()
        expect(page.locator("#write-key")).to_be_visible()
        write_key = page.locator("#write-key").inner_text()
        shot(page, "sources")
        page.get_by_role("link", name="website").click()
        expect(page.get_by_text("No messages yet.")).to_be_visible()
        sent = requests.post(f"{srv.url}/v1/track", auth=(write_key, ""), timeout=10,
                             json={"userId": "browser-user", "event": "Console Opened"})
        assert sent.status_code == 200, sent.text
        expect(page.locator("#messages li", has_text="track")).to_be_visible()  # htmx polled it in
        shot(page, "source")
        page.get_by_role("link", name="Twilio sources").click()
        shot(page, "object-sources")
        page.get_by_role("link", name="Profiles").click()
        shot(page, "profiles")

        # a phone's width: one column, nothing cut off
        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
        phone.context.add_cookies(page.context.cookies())
        phone.goto(f"{srv.url}/console/debugger")
        expect(phone.locator("li.attempt").first).to_be_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, width
        shot(phone, "debugger-phone")

        # the sub-account switcher, by keyboard
        page.get_by_label("Account").focus()
        page.get_by_label("Account").select_option(sub_sid)
        page.get_by_role("button", name="Switch").press("Enter")
        expect(page.get_by_role("status").first).to_contain_text("Now acting as Team subaccount")
        page.get_by_role("link", name="Sinks").click()
        expect(page.get_by_text("No sinks yet.")).to_be_visible()

        # signing out ends the session
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(f"{srv.url}/console/signin")
