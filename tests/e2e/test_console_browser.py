"""The web console in a real browser: Playwright driving Debian's Chromium (scripts/ensure-chromium.sh
installs it; never `playwright install`). One flow, as a user would go: sign in, create a webhook sink,
subscribe it, publish an event (HTTP API), watch it arrive in the debugger, stop the receiver, see the
failure and the dead letter (a 3 s retry window here), restart the receiver and replay the dead letter;
then every page (each the nav links, and the pages of one sink, event, type, source, object source and
profile) at a phone's width and a laptop's: its content shown, nothing wider than the screen. A second test
uses the keyboard alone: sign in, Tab through the nav in order, create a sink from the generated form.
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


# the widths the console must be usable at: a phone's (390 CSS px, as an iPhone 12-15 is) and a laptop's
WIDTHS = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1280, "height": 800}}
# a description of the focused element, as a keyboard user meets it: its tag and its label, text or name
ACTIVE = """(() => { const e = document.activeElement; if (!e || e === document.body) return "body";
  const label = e.labels && e.labels.length ? e.labels[0].innerText : (e.innerText || e.name || e.id || "");
  return e.tagName.toLowerCase() + ":" + label.trim(); })()"""

# the innermost elements reaching past the screen's right edge (for the message of a failing check)
OFFENDERS = """width => Array.from(document.querySelectorAll("body *")).filter(e =>
  e.getBoundingClientRect().right > width && !Array.from(e.children).some(c => c.getBoundingClientRect().right > width))
  .slice(0, 5).map(e => e.outerHTML.slice(0, 120))"""


def fits(page: Page, url: str, marker: str, width: int) -> None:
    """``url`` loaded at ``width``: its main content (``marker``) shown, and nothing wider than the screen
    (no horizontal scrolling of the page itself; a wide table scrolls in its own box)."""
    page.goto(url)
    expect(page.locator("main#main")).to_be_visible()
    expect(page.locator(marker).first).to_be_visible()
    expect(page.locator("main h1")).to_be_in_viewport()
    # a phone's browser zooms out to show a page wider than the screen: its window grows with the page
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if not (inner == width and scroll <= inner):
        wide = page.evaluate(OFFENDERS, width)
        raise AssertionError(f"{url} at {width} px: {scroll} px wide (window {inner} px), past the edge: {wide}")


def tab_stops(page: Page, until: str, limit: int = 60) -> list[str]:
    """Press Tab until the focused element is ``until`` (see ACTIVE), returning every stop on the way."""
    stops: list[str] = []
    while not stops or stops[-1] != until:
        assert len(stops) < limit, f"{until!r} not reached by Tab: {stops}"
        page.keyboard.press("Tab")
        stops.append(page.evaluate(ACTIVE))
    return stops


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
        source_path = page.url.removeprefix(srv.url)
        page.get_by_role("link", name="Twilio sources").click()
        shot(page, "object-sources")
        page.get_by_role("link", name="Profiles").click()
        shot(page, "profiles")

        # every page, with what this flow put in them, at a phone's width and a laptop's: the content shown
        # and nothing cut off or scrolling sideways. Each page the nav links must be listed here.
        created = requests.post(f"{srv.url}/v1/ObjectSources", auth=(sid, token), timeout=10, data={
            "FriendlyName": "Twilio prod", "TwilioAccountSid": "AC" + "1" * 32, "AuthToken": uuid.uuid4().hex,
            "Schedule": "manual", "BaseUrl": srv.url, "Collections": "messages"})  # fmt: skip
        assert created.status_code == 201, created.text
        nav = page.locator("header.top a.brand, nav[aria-label=Main] a")
        linked = {str(href) for href in nav.evaluate_all("links => links.map(a => a.getAttribute('href'))")}
        pages = {  # path: what must show (in the list pages, their rows; JavaScript-drawn ones, once drawn)
            "/console/": "#charts canvas",
            "/console/sinks": "tr", "/console/subscriptions": "#picker", "/console/catalogue": "main h2",
            "/console/debugger": "li.attempt", "/console/alerts": "tr",
            "/console/dead-letters": "main h1",  # empty again since the replay
            "/console/sources": "tr", "/console/object-sources": "tr", "/console/profiles": "form",
            f"/console/sinks/{sink_sid}": "tr.failure", "/console/sinks/new?type=webhook": "#sink-form",
            f"/console/catalogue/{TYPE}": "td", f"/console/events/{second}": "td.outcome-failed",
            source_path: "#messages li",
            f"/console/object-sources/{created.json()['sid']}": "main h2",
            "/console/profiles?kind=user_id&value=browser-user": "main h2",
        }  # fmt: skip
        assert linked <= set(pages), f"pages the nav links but this test does not check: {linked - set(pages)}"
        for name, viewport in WIDTHS.items():
            context = browser.new_context(viewport=viewport, is_mobile=name == "phone")
            context.add_cookies(page.context.cookies())
            at = context.new_page()
            at.set_default_timeout(WAIT_MS)
            for path, marker in pages.items():
                fits(at, f"{srv.url}{path}", marker, viewport["width"])
                if name == "phone" and path == "/console/debugger":
                    shot(at, "debugger-phone")
                if path == "/console/subscriptions":  # the picker's long type names wrap: no sideways scrolling
                    assert at.locator("#picker").evaluate("e => e.scrollWidth <= e.clientWidth"), name
            at.context.clear_cookies()
            fits(at, f"{srv.url}/console/signin", "form", viewport["width"])
            context.close()

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


@pytest.mark.timeout(120)
def test_console_by_keyboard(tmp_path: Path, receiver: Receiver, browser: Browser) -> None:
    """Signing in, the nav, and creating a sink with the keyboard alone: each is a Tab stop, in order."""
    with own_server("sqlite", tmp_path) as srv:
        sid, token = srv.new_account("Keyboard test")
        page = browser.new_page(viewport=WIDTHS["laptop"])
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{srv.url}/console/sinks")
        assert tab_stops(page, "button:Sign in") == ["input:Account SID or API key SID",
                                                     "input:Auth token or API key secret", "button:Sign in"]  # fmt: skip
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Shift+Tab")
        page.keyboard.type(sid)
        page.keyboard.press("Tab")
        page.keyboard.type(token)
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{srv.url}/console/sinks")

        # the skip link first, then the brand and every nav link in order, then the header's controls
        nav = page.locator("nav[aria-label=Main] a").all_inner_texts()
        assert len(nav) >= 9, nav
        stops = tab_stops(page, "a:Create a sink")
        header = ["a:Skip to content", "a:eventstreams", *(f"a:{n}" for n in nav)]
        assert stops == [*header, "select:Account", "button:Switch", "button:Sign out", "a:Create a sink"], stops
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{srv.url}/console/sinks/new")

        # the sink form: the type picked by typing on the select, each field of the generated form a stop
        tab_stops(page, "select:Sink type")
        page.keyboard.type("webhook")
        expect(page.get_by_label("Sink type")).to_have_value("webhook")
        assert tab_stops(page, "button:Choose") == ["button:Choose"]
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{srv.url}/console/sinks/new?type=webhook")
        tab_stops(page, "input:Description")
        page.keyboard.type("Keyboard webhook")
        assert tab_stops(page, "input:destination (required)") == ["input:destination (required)"]
        page.keyboard.type(f"{receiver.url}/hook")
        assert tab_stops(page, "input:method (required)") == ["input:method (required)"]
        page.keyboard.type("POST")
        assert tab_stops(page, "button:Create webhook sink") == [
            "input:batch_events", "input:batch_max_events", "input:standard_webhooks", "button:Create webhook sink"]  # fmt: skip
        page.keyboard.press("Enter")
        expect(page.get_by_role("status").first).to_contain_text("created")
        expect(page.get_by_role("heading", name="Sink: Keyboard webhook")).to_be_visible()
