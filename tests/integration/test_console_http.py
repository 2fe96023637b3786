"""The web console over plain HTTP, on both backends: sign-in, sessions, CSRF, the sign-in rate limit,
secrets never rendered back, account isolation and the sub-account switcher, and each page's happy path
through the same domain services the API uses. The browser flow is tests/e2e/test_console_browser.py."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.routing import Route

from eventstreams.catalog import builtin_examples
from eventstreams.console import views
from eventstreams.sinks import registry as sink_types
from tests.conftest import Receiver, Server, own_server

OPEN = {"/", "/console", "/console/signin"}  # the only console routes answered without a session


def console_routes(method: str) -> list[str]:
    """Every console route for ``method``, path parameters filled in: a new page is covered here at once."""
    out = []
    for r in views.surface.routes:
        if isinstance(r, Route) and method in (r.methods or ()) and r.path not in OPEN:
            out.append(re.sub(r"\{[^}]+\}", "DG00000000000000000000000000000000", r.path))
    return out


EXAMPLES = builtin_examples()["Messaging.MessageStatus"]
EXAMPLE = EXAMPLES[max(EXAMPLES)]


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def sign_in(url: str, user: str, secret: str) -> tuple[requests.Session, requests.Response]:
    s = requests.Session()
    page = s.get(f"{url}/console/signin", timeout=10)
    r = s.post(f"{url}/console/signin", data={"csrf": csrf_of(page.text), "username": user, "password": secret},
               timeout=10, allow_redirects=False)
    return s, r


def signed_in(server: Server, sid: str, token: str) -> tuple[requests.Session, str]:
    s, r = sign_in(server.url, sid, token)
    assert r.status_code == 303, r.text
    home = s.get(f"{server.url}/console/", timeout=10)
    assert home.status_code == 200
    return s, csrf_of(home.text)


def api(server: Server, sid: str, token: str, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"{server.url}{path}", auth=(sid, token), timeout=10, **kw)


def publish(server: Server, sid: str, token: str, event: dict[str, Any]) -> requests.Response:
    return api(server, sid, token, "POST", "/v1/Events", data=json.dumps([event]),
               headers={"Content-Type": "application/cloudevents-batch+json"})


def test_root_redirects_and_assets_are_local(server: Server) -> None:
    r = requests.get(f"{server.url}/", timeout=10, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    page = requests.get(f"{server.url}/console/signin", timeout=10)
    assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY"
    for asset in ("htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css", "console.js", "console.css"):
        a = requests.get(f"{server.url}/console/static/{asset}", timeout=10)
        assert a.status_code == 200 and len(a.content) > 500, asset
    assert "//" not in re.sub(r"https?://www\.twilio\.com", "", "".join(re.findall(r'(?:src|href)="([^"]+)"',
                                                                                    page.text)))
    # the API is untouched
    assert requests.get(f"{server.url}/healthz", timeout=10).json()["status"] == "ok"


@pytest.mark.parametrize("path", console_routes("GET"))
def test_every_page_needs_a_session(server: Server, path: str) -> None:
    r = requests.get(f"{server.url}{path}", timeout=10, allow_redirects=False)
    assert len(console_routes("GET")) >= 19  # the listing itself found the pages
    assert r.status_code == 303, (path, r.status_code)
    assert r.headers["location"].startswith("/console/signin?next=")
    forged = requests.get(f"{server.url}{path}", cookies={"es_console": "e30.deadbeef"}, timeout=10,
                          allow_redirects=False)
    assert forged.status_code == 303


@pytest.mark.parametrize("path", console_routes("POST"))
def test_every_post_needs_a_session(server: Server, path: str) -> None:
    assert requests.post(f"{server.url}{path}", data={"x": "1"}, timeout=10, allow_redirects=False).status_code == 401


def test_sign_in_session_cookie_and_sign_out(server: Server) -> None:
    sid, token = server.new_account("Console")
    s, bad = sign_in(server.url, sid, "wrong")
    assert bad.status_code == 401 and "not accepted" in bad.text and "es_console" not in s.cookies
    s, r = sign_in(server.url, sid, token)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = r.headers["set-cookie"]
    session_cookie = next(c for c in r.raw.headers.getlist("set-cookie") if c.startswith("es_console="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie.replace("Lax", "lax"), cookie
    assert token not in session_cookie  # the credential itself never goes into the cookie
    home = s.get(f"{server.url}/console/", timeout=10)
    assert home.status_code == 200 and sid in home.text and home.headers["cache-control"] == "no-store"
    again = s.get(f"{server.url}/console/signin", timeout=10, allow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/console/"  # signed in already
    out = s.post(f"{server.url}/console/signout", data={"csrf": csrf_of(home.text)}, timeout=10,
                 allow_redirects=False)
    assert out.status_code == 303
    assert s.get(f"{server.url}/console/sinks", timeout=10, allow_redirects=False).status_code == 303


def test_next_is_kept_but_never_leaves_the_site(server: Server) -> None:
    sid, token = server.new_account()
    for nxt, want in (("/console/sinks", "/console/sinks"), ("https://evil.example/", "/console/"),
                      ("//evil.example/console/", "/console/")):
        s = requests.Session()
        page = s.get(f"{server.url}/console/signin", params={"next": nxt}, timeout=10)
        r = s.post(f"{server.url}/console/signin", params={"next": nxt},
                   data={"csrf": csrf_of(page.text), "username": sid, "password": token, "next": nxt},
                   timeout=10, allow_redirects=False)
        assert r.headers["location"] == want, nxt


def test_api_key_sign_in_and_a_rotated_token_ends_sessions(server: Server) -> None:
    sid, token = server.new_account()
    key = api(server, sid, token, "POST", f"/2010-04-01/Accounts/{sid}/Keys.json", data={"FriendlyName": "k"}).json()
    s, r = sign_in(server.url, key["sid"], key["secret"])
    assert r.status_code == 303
    home = s.get(f"{server.url}/console/", timeout=10)
    assert key["sid"] in home.text
    api(server, sid, token, "DELETE", f"/2010-04-01/Accounts/{sid}/Keys/{key['sid']}.json")
    assert s.get(f"{server.url}/console/", timeout=10, allow_redirects=False).status_code == 303


def test_csrf_is_required_on_every_post(server: Server, receiver: Receiver) -> None:
    sid, token = server.new_account()
    s, csrf = signed_in(server, sid, token)
    form = {"description": "x", "cfg.destination": f"{receiver.url}/h", "cfg.method": "POST"}
    for extra in ({}, {"csrf": "wrong"}, {"csrf": ""}):
        r = s.post(f"{server.url}/console/sinks/new?type=webhook", data={**form, **extra}, timeout=10,
                   allow_redirects=False)
        assert r.status_code == 403, extra
    assert api(server, sid, token, "GET", "/v1/Sinks").json()["sinks"] == []
    # the token of another session does not do either
    _, csrf2 = signed_in(server, sid, token)
    assert csrf2 != csrf
    assert s.post(f"{server.url}/console/sinks/new?type=webhook", data={**form, "csrf": csrf2}, timeout=10,
                  allow_redirects=False).status_code == 403
    # the header htmx sends works like the field
    ok = s.post(f"{server.url}/console/sinks/new?type=webhook", data=form, headers={"X-CSRF-Token": csrf},
                timeout=10, allow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"].startswith("/console/sinks/DG")
    # an oversized form is refused before it is parsed
    huge = s.post(f"{server.url}/console/sinks/new?type=webhook", data={"csrf": csrf, "x": "y" * 300_000},
                  timeout=10, allow_redirects=False)
    assert huge.status_code == 413
    many = s.post(f"{server.url}/console/sinks/new?type=webhook", timeout=10, allow_redirects=False,
                  data=[("csrf", csrf)] + [(f"f{i}", "1") for i in range(1200)])
    assert many.status_code == 413
    # the sign-in form has its own token
    anon = requests.Session()
    anon.get(f"{server.url}/console/signin", timeout=10)
    r = anon.post(f"{server.url}/console/signin", data={"csrf": "nope", "username": sid, "password": token},
                  timeout=10, allow_redirects=False)
    assert r.status_code == 403


def test_sign_in_is_rate_limited(backend: str, tmp_path: Path) -> None:
    with own_server(backend, tmp_path) as srv:
        sid, token = srv.new_account()
        for _ in range(10):
            _, r = sign_in(srv.url, sid, "wrong")
            assert r.status_code == 401
        _, r = sign_in(srv.url, sid, token)  # even the right credentials wait now
        assert r.status_code == 429 and "Too many" in r.text


def test_no_secret_is_rendered_after_creation(server: Server, receiver: Receiver) -> None:
    sid, token = server.new_account()
    s, csrf = signed_in(server, sid, token)
    write_key = "wk-" + uuid.uuid4().hex
    r = s.post(f"{server.url}/console/sinks/new?type=segment",
               data={"csrf": csrf, "description": "seg", "cfg.write_key": write_key,
                     "cfg.endpoint": f"{receiver.url}/seg"}, timeout=10)
    assert r.status_code == 200 and "Sink DG" in r.text
    password = "pw" + uuid.uuid4().hex
    r2 = s.post(f"{server.url}/console/sinks/new?type=webhook",
                data={"csrf": csrf, "description": "hook", "cfg.method": "POST",
                      "cfg.destination": receiver.url.replace("http://", f"http://user:{password}@") + "/h"},
                timeout=10)
    assert r2.status_code == 200
    pages = [r.text, r2.text, s.get(f"{server.url}/console/sinks", timeout=10).text]
    sinks = api(server, sid, token, "GET", "/v1/Sinks").json()["sinks"]
    assert len(sinks) == 2
    for sink in sinks:
        pages.append(s.get(f"{server.url}/console/sinks/{sink['sid']}", timeout=10).text)
    for html in pages:
        assert write_key not in html and password not in html
    assert "****" in pages[-1] or "****" in pages[-2]
    # the create form never carries a secret value either
    form = s.get(f"{server.url}/console/sinks/new?type=segment", timeout=10).text
    assert 'type="password"' in form and write_key not in form


def test_accounts_are_isolated_and_the_switcher_acts_as_a_subaccount(server: Server, receiver: Receiver) -> None:
    a_sid, a_token = server.new_account("A")
    b_sid, b_token = server.new_account("B")
    sub_sid, _ = server.new_account("A's sub", parent=a_sid)
    a_sink = api(server, a_sid, a_token, "POST", "/v1/Sinks", data={
        "Description": "a-sink", "SinkType": "webhook",
        "SinkConfiguration": json.dumps({"destination": f"{receiver.url}/a", "method": "POST"})}).json()
    b, b_csrf = signed_in(server, b_sid, b_token)
    assert "a-sink" not in b.get(f"{server.url}/console/sinks", timeout=10).text
    r = b.get(f"{server.url}/console/sinks/{a_sink['sid']}", timeout=10)
    assert r.status_code == 404 and "a-sink" not in r.text
    assert b.post(f"{server.url}/console/sinks/{a_sink['sid']}/delete", data={"csrf": b_csrf}, timeout=10).ok
    assert api(server, a_sid, a_token, "GET", f"/v1/Sinks/{a_sink['sid']}").status_code == 200
    # B cannot act as A's subaccount
    r = b.post(f"{server.url}/console/account", data={"csrf": b_csrf, "account": sub_sid}, timeout=10)
    assert "Now acting" not in r.text and b_sid in r.text
    # A switches to its subaccount: A's sinks are not the subaccount's
    a, a_csrf = signed_in(server, a_sid, a_token)
    home = a.get(f"{server.url}/console/", timeout=10).text
    assert sub_sid in home  # the switcher lists the subaccount
    r = a.post(f"{server.url}/console/account", data={"csrf": a_csrf, "account": sub_sid}, timeout=10)
    assert r.status_code == 200 and "Now acting as A&#39;s sub" in r.text
    assert "a-sink" not in a.get(f"{server.url}/console/sinks", timeout=10).text
    created = a.post(f"{server.url}/console/sinks/new?type=webhook", timeout=10, data={
        "csrf": a_csrf, "description": "sub-sink", "cfg.destination": f"{receiver.url}/s", "cfg.method": "POST"})
    assert created.status_code == 200
    owned = api(server, a_sid, a_token, "GET", "/v1/Sinks", headers={"X-Eventstreams-Account": sub_sid}).json()
    assert [x["description"] for x in owned["sinks"]] == ["sub-sink"]
    a.post(f"{server.url}/console/account", data={"csrf": a_csrf, "account": a_sid}, timeout=10)
    assert "a-sink" in a.get(f"{server.url}/console/sinks", timeout=10).text


def test_sink_subscription_catalogue_debugger_and_replay(server: Server, receiver: Receiver) -> None:
    sid, token = server.new_account()
    s, csrf = signed_in(server, sid, token)
    # every registered sink type gets a form generated from its fields
    for t in sink_types.names():
        form = s.get(f"{server.url}/console/sinks/new", params={"type": t}, timeout=10)
        assert form.status_code == 200 and 'id="sink-form"' in form.text, t
    r = s.post(f"{server.url}/console/sinks/new?type=webhook", timeout=10, allow_redirects=False, data={
        "csrf": csrf, "description": "hook", "cfg.destination": f"{receiver.url}/h", "cfg.method": "POST"})
    sink_sid = r.headers["location"].rsplit("/", 1)[1]
    bad = s.post(f"{server.url}/console/sinks/new?type=webhook", timeout=10, data={
        "csrf": csrf, "description": "bad", "cfg.destination": "not a url", "cfg.method": "POST"})
    assert bad.status_code == 200 and 'class="flash error"' in bad.text  # the domain's message, on the form
    subs = s.get(f"{server.url}/console/subscriptions", timeout=10).text
    assert "<legend>twilio.messaging</legend>" in subs and 'name="v:com.twilio.messaging.message.sent"' in subs
    t = "com.twilio.messaging.message.sent"
    r = s.post(f"{server.url}/console/subscriptions", timeout=10, data={
        "csrf": csrf, "description": "sub", "sink_sid": sink_sid, "type": t, f"v:{t}": "1"})
    assert r.status_code == 200 and "Subscription DF" in r.text
    listed = api(server, sid, token, "GET", "/v1/Subscriptions").json()["subscriptions"]
    assert [x["sink_sid"] for x in listed] == [sink_sid]
    cat = s.get(f"{server.url}/console/catalogue", timeout=10).text
    assert f'href="/console/catalogue/{t}"' in cat
    viewer = s.get(f"{server.url}/console/catalogue/{t}", timeout=10).text
    assert "<code>messageSid</code>" in viewer and "Id of message which the event belongs to" in viewer
    # publish through the API; the debugger's stream shows the event and its delivery
    event_id = "EV" + uuid.uuid4().hex
    event = {"specversion": "1.0", "type": t, "source": "/test", "id": event_id, "data": EXAMPLE}
    assert publish(server, sid, token, event).status_code == 201
    receiver.wait_for(lambda: any(e["id"] == event_id for e in receiver.events("/h")))
    server.settled(sink_sid)
    seen: set[str] = set()
    with s.get(f"{server.url}/console/debugger/stream", params={"type": t}, stream=True, timeout=10) as live:
        assert live.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in live.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                doc = json.loads(line[6:])
                if kind == "event" and doc["id"] == event_id:
                    seen.add("event")
                if kind == "attempt" and event_id in doc["events"] and doc["outcome"] == "delivered":
                    seen.add("attempt")
            if seen == {"event", "attempt"}:
                break
    detail = s.get(f"{server.url}/console/events/{event_id}", timeout=10).text
    assert sink_sid in detail and "delivered" in detail
    chart = s.get(f"{server.url}/console/charts.json", timeout=10).json()
    assert sum(chart["events_in"]) >= 1 and sum(chart["sinks"][sink_sid]["delivered"]) >= 1
    # a failure: the receiver answers 500 until the window (60 s here) -- the sink page shows it
    receiver.plan["/h"] = [(500, 0.0)] * 3
    event2 = {**event, "id": "EV" + uuid.uuid4().hex}
    assert publish(server, sid, token, event2).status_code == 201
    receiver.wait_for(lambda: any(e["id"] == event2["id"] for e in receiver.events("/h")))
    server.settled(sink_sid)
    page = s.get(f"{server.url}/console/sinks/{sink_sid}", timeout=10).text
    assert 'class="failure"' in page and "500" in page
    # replay a time range through the console: the receiver sees the first event again
    before = len([e for e in receiver.events("/h") if e["id"] == event_id])
    r = s.post(f"{server.url}/console/sinks/{sink_sid}/replay", timeout=10,
               data={"csrf": csrf, "mode": "range", "since": "2000-01-01T00:00:00", "until": "2100-01-01T00:00:00"})
    assert "Replayed 2 event(s)" in r.text
    receiver.wait_for(lambda: len([e for e in receiver.events("/h") if e["id"] == event_id]) > before)
    # test event, delete with a subscription (the domain's 409 comes back as a message), then for real
    r = s.post(f"{server.url}/console/sinks/{sink_sid}/test", data={"csrf": csrf}, timeout=10)
    assert "Test event sent" in r.text
    r = s.post(f"{server.url}/console/sinks/{sink_sid}/delete", data={"csrf": csrf}, timeout=10,
               headers={"Referer": f"{server.url}/console/sinks/{sink_sid}"})
    assert "delete the subscriptions" in r.text
    s.post(f"{server.url}/console/subscriptions/{listed[0]['sid']}/delete", data={"csrf": csrf}, timeout=10)
    server.settled(sink_sid)
    r = s.post(f"{server.url}/console/sinks/{sink_sid}/delete", data={"csrf": csrf}, timeout=10)
    assert "Sink deleted" in r.text
    assert api(server, sid, token, "GET", "/v1/Sinks").json()["sinks"] == []


def test_connections_pages(server: Server) -> None:
    sid, token = server.new_account()
    s, csrf = signed_in(server, sid, token)
    r = s.post(f"{server.url}/console/sources", data={"csrf": csrf, "name": "web"}, timeout=10)
    m = re.search(r'<code id="write-key">([^<]+)</code>', r.text)
    assert r.status_code == 200 and m
    write_key = m.group(1)
    listing = s.get(f"{server.url}/console/sources", timeout=10).text
    assert write_key not in listing
    source_sid = re.search(r'href="/console/sources/(TS[0-9a-f]{32})"', listing).group(1)  # type: ignore[union-attr]
    sent = requests.post(f"{server.url}/v1/track", auth=(write_key, ""), timeout=10,
                         json={"userId": "u-1", "event": "Signed Up", "traits": {"email": "u1@example.com"}})
    assert sent.status_code == 200, sent.text
    page = s.get(f"{server.url}/console/sources/{source_sid}", timeout=10).text
    assert f'hx-get="/console/sources/{source_sid}/messages"' in page and "u-1" in page
    frag = s.get(f"{server.url}/console/sources/{source_sid}/messages", timeout=10).text
    assert "u-1" in frag and write_key not in frag
    found = s.get(f"{server.url}/console/profiles", params={"kind": "user_id", "value": "u-1"}, timeout=10).text
    assert "<h2>Profile" in found
    missing = s.get(f"{server.url}/console/profiles", params={"kind": "email", "value": "no@x.y"}, timeout=10)
    assert "No profile holds" in missing.text
    assert s.get(f"{server.url}/console/object-sources", timeout=10).status_code == 200


def test_profile_explorer_by_user_id_email_and_phone(server: Server) -> None:
    sid, token = server.new_account()
    write_key = api(server, sid, token, "POST", "/v1/Sources", data={"Name": "explorer"}).json()["write_key"]
    # an identify's traits carry the email and the phone (in national format: identity resolution keeps it as
    # E.164, default region US)
    sent = requests.post(f"{server.url}/v1/identify", auth=(write_key, ""), timeout=10, json={
        "userId": "u-phone", "traits": {"email": "p1@example.com", "phone": "(415) 555-0142"}})
    assert sent.status_code == 200, sent.text
    s, _ = signed_in(server, sid, token)

    def profile_of(kind: str, value: str) -> str:
        page = s.get(f"{server.url}/console/profiles", params={"kind": kind, "value": value}, timeout=10)
        assert page.status_code == 200, page.text
        m = re.search(r"<h2>Profile <code>([^<]+)</code>", page.text)
        assert m, f"no profile found by {kind} {value}"
        assert "phone: <code>+14155550142</code>" in page.text and "email: <code>p1@example.com</code>" in page.text
        return m.group(1)

    by_user = profile_of("user_id", "u-phone")
    assert profile_of("email", "p1@example.com") == by_user
    assert profile_of("phone", "+14155550142") == by_user  # as stored
    assert profile_of("phone", "415-555-0142") == by_user  # as a person types it: normalised like the message
    other = s.get(f"{server.url}/console/profiles", params={"kind": "phone", "value": "+14155550199"}, timeout=10)
    assert other.status_code == 200 and "No profile holds phone +14155550199" in other.text


def test_object_source_runs_and_sync_now(backend: str, tmp_path: Path) -> None:
    with own_server(backend, tmp_path, source_syncs=True) as srv:  # shared servers run no scheduler
        _object_source_runs_and_sync_now(srv)


def _object_source_runs_and_sync_now(server: Server) -> None:
    sid, token = server.new_account()
    created = api(server, sid, token, "POST", "/v1/ObjectSources", data={
        "FriendlyName": "Twilio prod", "TwilioAccountSid": "AC" + "1" * 32, "AuthToken": "t0ken-" + uuid.uuid4().hex,
        "Schedule": "manual", "BaseUrl": server.url, "Collections": "messages"})
    assert created.status_code == 201, created.text
    source = created.json()
    s, csrf = signed_in(server, sid, token)
    assert "Twilio prod" in s.get(f"{server.url}/console/object-sources", timeout=10).text
    page = s.get(f"{server.url}/console/object-sources/{source['sid']}", timeout=10).text
    assert "No runs yet." in page
    r = s.post(f"{server.url}/console/object-sources/{source['sid']}/sync", data={"csrf": csrf}, timeout=10)
    assert "Sync requested" in r.text
    deadline = time.monotonic() + 30
    # the scheduler of this server picks the request up; the run and its per-collection row show (this
    # BaseUrl is no Twilio, so the collection fails, with Twilio's 404 as its error)
    while "<td>messages</td>" not in page:
        assert time.monotonic() < deadline, page
        time.sleep(0.2)
        page = s.get(f"{server.url}/console/object-sources/{source['sid']}", timeout=10).text
    assert "No runs yet." not in page
    # another account sees none of it
    other, _ = signed_in(server, *server.new_account())
    assert other.get(f"{server.url}/console/object-sources/{source['sid']}", timeout=10).status_code == 404


def sse(session: requests.Session, url: str, **kw: Any) -> list[tuple[str, str, Any]]:
    """Every (event, id, data) of one whole debugger stream (each ends by itself after a few seconds)."""
    out: list[tuple[str, str, Any]] = []
    kind, ident = "", ""
    with session.get(url, stream=True, timeout=30, **kw) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("id: "):
                ident = line[4:]
            elif line.startswith("data: "):
                out.append((kind, ident, json.loads(line[6:])))
    return out


def test_debugger_stream_filters_ends_and_resumes(server: Server) -> None:
    sid, token = server.new_account()
    s, _ = signed_in(server, sid, token)
    sent = "com.twilio.messaging.message.sent"
    first = {"specversion": "1.0", "type": sent, "source": "/t", "id": "EV" + uuid.uuid4().hex, "data": EXAMPLE}
    other = {**first, "id": "EV" + uuid.uuid4().hex, "type": "com.twilio.messaging.message.delivered"}
    assert publish(server, sid, token, first).status_code == 201
    assert publish(server, sid, token, other).status_code == 201
    url = f"{server.url}/console/debugger/stream"
    whole = sse(s, url, params={"type": sent})
    events = [d["id"] for k, _, d in whole if k == "event"]
    assert events == [first["id"]]  # the filter left the other type out
    assert whole[-1][0] == "cursor"
    cursor = whole[-1][1]
    later = {**first, "id": "EV" + uuid.uuid4().hex}
    assert publish(server, sid, token, later).status_code == 201
    resumed = sse(s, url, params={"type": sent}, headers={"Last-Event-ID": cursor})
    assert [d["id"] for k, _, d in resumed if k == "event"] == [later["id"]]  # nothing seen twice
    # another account's stream shows none of it
    other_session, _ = signed_in(server, *server.new_account())
    assert [k for k, _, _ in sse(other_session, url)] == ["cursor"]


def test_dead_letters_replayed_by_filter(short_window_server: Server, receiver: Receiver) -> None:
    srv = short_window_server
    sid, token = srv.new_account()
    sink = api(srv, sid, token, "POST", "/v1/Sinks", data={
        "Description": "flaky", "SinkType": "webhook",
        "SinkConfiguration": json.dumps({"destination": f"{receiver.url}/flaky", "method": "POST"})}).json()
    t = "com.twilio.messaging.message.sent"
    api(srv, sid, token, "POST", "/v1/Subscriptions", data={
        "Description": "s", "SinkSid": sink["sid"], "Types": json.dumps({"type": t})})
    receiver.plan["/flaky"] = [(503, 0.0)] * 1000  # fails until the 3 s window ends
    ids = ["EV" + uuid.uuid4().hex for _ in range(2)]
    for i in ids:
        event = {"specversion": "1.0", "type": t, "source": "/t", "id": i, "data": EXAMPLE}
        assert publish(srv, sid, token, event).status_code == 201
    srv.settled(sink["sid"], timeout=30)
    s, csrf = signed_in(srv, sid, token)
    page = s.get(f"{srv.url}/console/dead-letters", params={"sink": sink["sid"]}, timeout=10).text
    assert all(i in page for i in ids) and "Replay the 2 shown" in page
    receiver.plan["/flaky"] = []
    r = s.post(f"{srv.url}/console/sinks/{sink['sid']}/replay", timeout=10,
               headers={"Referer": f"{srv.url}/console/dead-letters?sink={sink['sid']}"},
               data={"csrf": csrf, "event_id": ids})
    assert r.url.endswith(f"/console/dead-letters?sink={sink['sid']}") and "Replayed 2 event(s)" in r.text
    receiver.wait_for(lambda: {e["id"] for e in receiver.events("/flaky")} >= set(ids))
    srv.settled(sink["sid"])
    assert "No dead letters." in s.get(f"{srv.url}/console/dead-letters", timeout=10).text


def test_parent_token_on_a_subaccount_and_suspension(server: Server) -> None:
    parent_sid, parent_token = server.new_account("Parent")
    sub_sid, sub_token = server.new_account("Child", parent=parent_sid)
    # the subaccount's SID with the parent's token acts as the subaccount (as Twilio Basic auth does)
    s, r = sign_in(server.url, sub_sid, parent_token)
    assert r.status_code == 303
    assert "Acting as <strong>Child</strong>" in s.get(f"{server.url}/console/", timeout=10).text
    own, r = sign_in(server.url, sub_sid, sub_token)
    assert r.status_code == 303
    home = own.get(f"{server.url}/console/", timeout=10).text
    assert parent_sid not in home  # a subaccount's switcher lists only itself
    # suspending the subaccount ends both sessions at once
    r2 = api(server, parent_sid, parent_token, "POST", f"/2010-04-01/Accounts/{sub_sid}.json",
             data={"Status": "suspended"})
    assert r2.status_code == 200, r2.text
    for session in (s, own):
        assert session.get(f"{server.url}/console/", timeout=10, allow_redirects=False).status_code == 303


def test_concurrent_sign_ins_cannot_outrun_the_limit(backend: str, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with own_server(backend, tmp_path) as srv:
        sid, _ = srv.new_account()
        s = requests.Session()
        token = csrf_of(s.get(f"{srv.url}/console/signin", timeout=10).text)  # one form, a burst of posts
        cookies = s.cookies.get_dict()

        def attempt(_: int) -> int:
            return requests.post(f"{srv.url}/console/signin", data={"csrf": token, "username": sid, "password": "x"},
                                 cookies=cookies, timeout=30, allow_redirects=False).status_code  # fmt: skip

        with ThreadPoolExecutor(30) as pool:
            codes = list(pool.map(attempt, range(30)))
        assert codes.count(401) <= 10 and codes.count(429) >= 20, codes  # never more guesses than the limit


def test_bad_input_the_review_found_is_a_4xx(server: Server) -> None:
    sid, token = server.new_account()
    s, csrf = signed_in(server, sid, token)
    # a schema version that is not a number: the form says so, no 500
    r = s.post(f"{server.url}/console/subscriptions", timeout=10, data={
        "csrf": csrf, "description": "x", "sink_sid": "DG" + "0" * 32, "type": "com.twilio.messaging.message.sent",
        "v:com.twilio.messaging.message.sent": "abc"})  # fmt: skip
    assert r.status_code < 500 and "whole number" in r.text
    # a resume cursor past any BIGINT starts the stream afresh
    stream = s.get(f"{server.url}/console/debugger/stream", headers={"Last-Event-ID": "99999999999999999999.1"},
                   timeout=30)  # fmt: skip
    assert stream.status_code == 200 and "event: cursor" in stream.text
    # an event stamped in a minute after the chart's last one (a node's clock ahead) is left out, not a 500
    ahead = int(time.time() * 1000) + 120_000
    assert publish(server, sid, token, {"specversion": "1.0", "type": "com.twilio.messaging.message.sent",
                                        "source": "/t", "id": "EV" + uuid.uuid4().hex, "data": EXAMPLE}).status_code == 201  # fmt: skip
    server.call(server.services.store.db.run(lambda tx: tx.run(
        "UPDATE events SET received_at = :t WHERE account_sid = :a", t=ahead, a=sid), write=True))
    charts = s.get(f"{server.url}/console/charts.json", timeout=10)
    assert charts.status_code == 200, charts.text
