"""The Twilio sandbox through the official `twilio` client (and raw HTTP where the client hides
the wire): messages, calls and feedback, conferences, transcriptions, addresses, paging, auth,
Twilio's validation errors and the injected faults."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from eventstreams import clock
from eventstreams.store.records import SandboxConferenceRow, SandboxMessageRow, SandboxTranscriptionRow
from eventstreams.store.repos import sandbox as kinds
from tests.conftest import Server, twilio_error

FROM = "+15005550006"


@pytest.fixture
def acct(sandbox_server: Server) -> tuple[str, str]:
    return sandbox_server.new_account("Sandbox test")


def _client(srv: Server, acct: tuple[str, str]) -> Any:
    return srv.client(*acct)


def _get(srv: Server, acct: tuple[str, str], path: str, **params: Any) -> requests.Response:
    return requests.get(srv.url + path, params=params, auth=acct, timeout=10)


def _bulk_messages(srv: Server, account_sid: str, n: int, start: float = 1_700_000_000.0) -> list[str]:
    """Insert ``n`` final messages one minute apart (what the seeder does, without its variety)."""
    rng = random.Random(n)
    rows = []
    for i in range(n):
        ts = clock.iso(start + 60 * i)
        sid = f"SM{int(start) + 60 * i:012x}{rng.getrandbits(80):020x}"
        rows.append(
            SandboxMessageRow(sid, account_sid, None, "outbound-api", FROM, f"+1415555{i % 10000:04d}", f"m{i}",
                              "delivered", 1, 0, "-0.00790", "USD", None, None, None, None, None, ts, ts, ts)
        )  # fmt: skip
    srv.call(srv.services.store.sandbox.insert_many(kinds.MESSAGE, rows))
    return [r.sid for r in rows]


# -- messages


def test_create_fetch_and_list_messages(sandbox_server: Server, acct: tuple[str, str]) -> None:
    c = _client(sandbox_server, acct)
    m = c.messages.create(to="+14155552671", from_=FROM, body="Hello from the sandbox")
    assert m.sid.startswith("SM") and m.status == "queued" and m.direction == "outbound-api"
    assert m.num_segments == "1" and m.account_sid == acct[0] and m.api_version == "2010-04-01"
    assert m.subresource_uris["media"].endswith(f"/Messages/{m.sid}/Media.json")
    fetched = c.messages(m.sid).fetch()
    assert fetched.body == "Hello from the sandbox" and fetched.to == "+14155552671"
    c.messages.create(to="+14155550000", from_=FROM, body="other")
    listed = c.messages.list(to="+14155552671")
    assert [x.sid for x in listed] == [m.sid]
    raw = _get(sandbox_server, acct, f"/2010-04-01/Accounts/{acct[0]}/Messages/{m.sid}.json").json()
    assert raw["date_created"].endswith("+0000") and raw["num_media"] == "0" and raw["error_code"] is None


def test_long_unicode_body_is_segmented_and_media_counted(sandbox_server: Server, acct: tuple[str, str]) -> None:
    c = _client(sandbox_server, acct)
    m = c.messages.create(to="+447700900123", from_=FROM, body="é" * 150 + "😀" * 10, media_url=["https://x.test/a.png"])
    assert m.num_segments == "3" and m.num_media == "1"  # UCS-2: 170 code units, 67 per segment


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": "not a number", "from_": FROM, "body": "x"}, 21211),
        ({"to": "+15005550001", "from_": FROM, "body": "x"}, 21211),
        ({"to": "+14155552671", "from_": FROM}, 21602),
        ({"to": "+14155552671", "from_": FROM, "body": "x" * 1601}, 21617),
        ({"to": "+14155552671", "from_": "+1", "body": "x"}, 21212),
        ({"to": "+14155552671", "from_": "+15005550007", "body": "x"}, 21606),
        ({"to": "+14155552671", "body": "x"}, 21603),
        ({"to": "+14155552671", "from_": FROM, "body": "x", "status_callback": "http://bad_host/cb"}, 21609),
        ({"to": "+14155552671", "from_": FROM, "body": "x", "status_callback": "http://[::1"}, 21609),
        ({"to": "+14155552671", "from_": FROM, "body": "x", "status_callback": "http://a.test:99999/x"}, 21609),
        ({"to": "+14155552671", "from_": FROM, "body": "x", "status_callback": "ftp://a.test/x"}, 21609),
        ({"to": "+14155552671", "messaging_service_sid": "MGnope", "body": "x"}, 21701),
    ],
)
def test_message_validation_errors(
    sandbox_server: Server, acct: tuple[str, str], kwargs: dict[str, Any], code: int
) -> None:
    c = _client(sandbox_server, acct)
    with pytest.raises(TwilioRestException) as exc:
        c.messages.create(**kwargs)
    assert exc.value.status == 400 and exc.value.code == code
    assert c.messages.list(limit=5) == []  # nothing half-written


def test_validation_error_has_twilio_shape(sandbox_server: Server, acct: tuple[str, str]) -> None:
    r = requests.post(sandbox_server.url + f"/2010-04-01/Accounts/{acct[0]}/Messages.json",
                   data={"From": FROM, "Body": "x"}, auth=acct)  # fmt: skip
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 21604 and body["status"] == 400
    assert body["more_info"] == "https://www.twilio.com/docs/errors/21604" and "'To'" in body["message"]


def test_messaging_service_without_from(sandbox_server: Server, acct: tuple[str, str]) -> None:
    c = _client(sandbox_server, acct)
    m = c.messages.create(to="+14155552671", messaging_service_sid="MG" + "a" * 32, body="svc")
    assert m.messaging_service_sid == "MG" + "a" * 32 and m.from_.startswith("+1555")


def test_date_sent_filters(sandbox_server: Server, acct: tuple[str, str]) -> None:
    start = 1_700_000_000.0  # 2023-11-14T22:13:20Z; one message a minute for 3 hours
    sids = _bulk_messages(sandbox_server, acct[0], 180, start)
    c = _client(sandbox_server, acct)
    from datetime import UTC, datetime

    after = datetime.fromtimestamp(start + 60 * 100, UTC)
    got = c.messages.list(date_sent_after=after, page_size=1000)
    assert {m.sid for m in got} == set(sids[100:])
    before = datetime.fromtimestamp(start + 60 * 9, UTC)
    assert {m.sid for m in c.messages.list(date_sent_before=before)} == set(sids[:10])
    day = _get(sandbox_server, acct, f"/2010-04-01/Accounts/{acct[0]}/Messages.json",
               DateSent="2023-11-14", PageSize="1000").json()  # fmt: skip
    assert len(day["messages"]) == 107  # 22:13 .. 23:59 that day
    bad = _get(sandbox_server, acct, f"/2010-04-01/Accounts/{acct[0]}/Messages.json", **{"DateSent>": "yesterday"})
    assert bad.status_code == 400 and "DateSent>" in bad.json()["message"]


def test_redact_and_delete_message(sandbox_server: Server, acct: tuple[str, str]) -> None:
    sid = _bulk_messages(sandbox_server, acct[0], 1)[0]
    c = _client(sandbox_server, acct)
    assert c.messages(sid).update(body="").body == ""
    assert c.messages(sid).delete() is True
    assert twilio_error(lambda: c.messages(sid).fetch()) == (404, 20404)


# -- paging


def test_paging_envelope_newest_first_and_stable(sandbox_server: Server, acct: tuple[str, str]) -> None:
    sids = _bulk_messages(sandbox_server, acct[0], 120)
    path = f"/2010-04-01/Accounts/{acct[0]}/Messages.json"
    first = _get(sandbox_server, acct, path, PageSize="50").json()
    assert set(first) == {"end", "first_page_uri", "next_page_uri", "page", "page_size", "previous_page_uri",
                          "start", "uri", "messages"}  # fmt: skip
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 50, 0, 49)
    assert first["previous_page_uri"] is None and first["uri"] == f"{path}?PageSize=50&Page=0"
    assert [m["sid"] for m in first["messages"]] == sids[::-1][:50]  # newest first
    # new messages arriving between pages do not shift the pages after
    _client(sandbox_server, acct).messages.create(to="+14155552671", from_=FROM, body="newcomer")
    seen = [m["sid"] for m in first["messages"]]
    nxt = first["next_page_uri"]
    while nxt:
        page = requests.get(sandbox_server.url + nxt, auth=acct).json()
        seen += [m["sid"] for m in page["messages"]]
        nxt = page["next_page_uri"]
    assert seen == sids[::-1]
    assert page["page"] == 2 and page["start"] == 100 and page["end"] == 119


def test_page_size_default_and_clamp(sandbox_server: Server, acct: tuple[str, str]) -> None:
    sids = _bulk_messages(sandbox_server, acct[0], 1500)
    path = f"/2010-04-01/Accounts/{acct[0]}/Messages.json"
    assert _get(sandbox_server, acct, path).json()["page_size"] == 50
    big = _get(sandbox_server, acct, path, PageSize="5000").json()
    assert big["page_size"] == 1000 and len(big["messages"]) == 1000
    every = _client(sandbox_server, acct).messages.list(limit=1400)  # more than one 1,000-record page
    assert [m.sid for m in every] == sids[::-1][:1400]


def _token(direction: str, *key: str) -> str:
    return "P" + direction.upper() + base64.urlsafe_b64encode(json.dumps([direction, *key]).encode()).decode()


@pytest.mark.parametrize(
    "token",
    ["PAnope", "garbage", "PA" + base64.urlsafe_b64encode(b'["a",1]').decode(), "P",
     _token("a", "9999-01-01T00:00:00Z", "SMzzzz"),  # well formed, the right shape, but not minted here
     _token("a", "9999-01-01T00:00:00Z", "SMzzzz") + ".0123456789abcdef0123456789abcdef"],
)  # fmt: skip
def test_forged_page_token_is_21481(sandbox_server: Server, acct: tuple[str, str], token: str) -> None:
    r = _get(sandbox_server, acct, f"/2010-04-01/Accounts/{acct[0]}/Calls.json", PageToken=token)
    assert r.status_code == 400 and r.json()["code"] == 21481


def test_a_page_token_works_only_on_its_own_list(sandbox_server: Server, acct: tuple[str, str]) -> None:
    _bulk_messages(sandbox_server, acct[0], 3)
    base = f"/2010-04-01/Accounts/{acct[0]}"
    nxt = _get(sandbox_server, acct, f"{base}/Messages.json", PageSize="1").json()["next_page_uri"]
    token = nxt.split("PageToken=")[1]
    assert _get(sandbox_server, acct, f"{base}/Messages.json", PageSize="1", PageToken=token).status_code == 200
    other = _get(sandbox_server, acct, f"{base}/Calls.json", PageSize="1", PageToken=token)
    assert (other.status_code, other.json()["code"]) == (400, 21481)


# -- auth and accounts


def test_credentials_and_account_isolation(sandbox_server: Server) -> None:
    srv = sandbox_server
    parent = srv.new_account("Parent")
    sub_a = srv.client(*parent).api.v2010.accounts.create(friendly_name="A")
    sub_b = srv.client(*parent).api.v2010.accounts.create(friendly_name="B")
    a = (sub_a.sid, sub_a.auth_token)
    path = "/2010-04-01/Accounts/{}/Messages.json"
    assert _get(srv, (parent[0], "wrong"), path.format(parent[0])).json()["code"] == 20003
    assert _get(srv, a, path.format(parent[0])).status_code == 404  # a subaccount cannot read its parent
    assert _get(srv, a, path.format(sub_b.sid)).json()["code"] == 20404  # nor a sibling
    assert _get(srv, parent, path.format(sub_a.sid)).status_code == 200  # the parent reads its subaccounts
    sent = srv.client(*a).messages.create(to="+14155552671", from_=FROM, body="from A")
    assert [m.sid for m in srv.client(*parent).api.v2010.accounts(sub_a.sid).messages.list()] == [sent.sid]
    assert srv.client(*parent).messages.list() == []
    # an API key (SK + secret) with the account in the path
    key = srv.client(*parent).new_keys.create(friendly_name="k")
    with_key = srv.client(key.sid, key.secret, parent[0])
    m = with_key.messages.create(to="+14155552671", from_=FROM, body="by key")
    assert with_key.messages(m.sid).fetch().body == "by key"
    # Twilio: a main account's API key reaches main-account resources only; a subaccount's key its own
    assert _get(srv, (key.sid, key.secret), path.format(sub_a.sid)).json()["code"] == 20404
    sub_key = srv.client(*a).new_keys.create(friendly_name="sub k")
    assert _get(srv, (sub_key.sid, sub_key.secret), path.format(sub_a.sid)).status_code == 200
    assert _get(srv, (sub_key.sid, sub_key.secret), path.format(parent[0])).status_code == 404
    # a closed subaccount answers nobody, its parent included
    srv.client(*parent).api.v2010.accounts(sub_b.sid).update(status="closed")
    closed = _get(srv, parent, path.format(sub_b.sid))
    assert (closed.status_code, closed.json()["code"]) == (401, 20003)


def test_accounts_list_filters_and_subresource_uris(sandbox_server: Server) -> None:
    srv = sandbox_server
    parent = srv.new_account("Walker")
    c = srv.client(*parent)
    sub = c.api.v2010.accounts.create(friendly_name="Walked")
    assert {a.sid for a in c.api.v2010.accounts.list()} == {parent[0], sub.sid}
    assert [a.sid for a in c.api.v2010.accounts.list(friendly_name="Walked")] == [sub.sid]
    for collection in ("calls", "messages", "conferences", "transcriptions", "addresses"):
        uri = sub.subresource_uris[collection]
        r = requests.get(srv.url + uri, params={"PageSize": "1000"}, auth=parent)
        assert r.status_code == 200 and collection in r.json(), uri


def test_unknown_resources_are_20404(sandbox_server: Server, acct: tuple[str, str]) -> None:
    base = f"/2010-04-01/Accounts/{acct[0]}"
    for path in (f"{base}/Messages/SM{'0' * 32}.json", f"{base}/Calls/CA{'0' * 32}.json",
                 f"{base}/Conferences/CF{'0' * 32}.json", f"{base}/Transcriptions/TR{'0' * 32}.json",
                 f"{base}/Addresses/AD{'0' * 32}.json", f"{base}/Calls/CA{'0' * 32}/Feedback.json",
                 f"/2010-04-01/Accounts/AC{'0' * 32}/Messages.json"):  # fmt: skip
        r = _get(sandbox_server, acct, path)
        assert (r.status_code, r.json()["code"]) == (404, 20404), path


# -- calls and feedback


def test_calls_create_list_filters_and_feedback(sandbox_server: Server, acct: tuple[str, str]) -> None:
    c = _client(sandbox_server, acct)
    call = c.calls.create(to="+14155552671", from_=FROM, url="http://demo.twilio.com/docs/voice.xml")
    assert call.sid.startswith("CA") and call.status == "queued" and call.to_formatted == "(415) 555-2671"
    other = c.calls.create(to="+14155550000", from_=FROM, twiml="<Response/>")
    assert [x.sid for x in c.calls.list(to="+14155552671")] == [call.sid]
    assert {x.sid for x in c.calls.list()} == {call.sid, other.sid}
    assert c.calls.list(status="busy") == []
    raw = _get(sandbox_server, acct, f"/2010-04-01/Accounts/{acct[0]}/Calls/{call.sid}.json").json()
    assert raw["queue_time"] == "0" and raw["subresource_uris"]["feedback"].endswith(f"{call.sid}/Feedback.json")
    feedback_path = f"/2010-04-01/Accounts/{acct[0]}/Calls/{call.sid}/Feedback.json"
    assert _get(sandbox_server, acct, feedback_path).status_code == 404  # none yet
    made = requests.post(sandbox_server.url + feedback_path, auth=acct,
                      data=[("QualityScore", "2"), ("Issue", "dropped-call"), ("Issue", "one-way-audio")])  # fmt: skip
    assert made.status_code == 201
    got = _get(sandbox_server, acct, feedback_path).json()
    assert got["quality_score"] == 2 and got["issues"] == ["dropped-call", "one-way-audio"] and got["sid"] == call.sid
    bad = requests.post(sandbox_server.url + feedback_path, auth=acct, data={"QualityScore": "9"})
    assert bad.status_code == 400
    assert twilio_error(lambda: c.calls.create(to="+14155552671", from_=FROM)) == (400, 21205)
    voice = "http://demo.twilio.com/docs/voice.xml"  # a call dials numbers: no sender IDs or channels
    assert twilio_error(lambda: c.calls.create(to="+14155552671", from_="ACME", url=voice)) == (400, 21212)
    assert twilio_error(lambda: c.calls.create(to="whatsapp:+14155552671", from_=FROM, url=voice)) == (400, 21217)


def test_calls_date_filters(sandbox_server: Server, acct: tuple[str, str]) -> None:
    from eventstreams.store.records import SandboxCallRow

    rows = []
    for day in range(1, 6):  # one call a day, 2024-03-01 .. 05, starting at noon
        start = f"2024-03-0{day}T12:00:00Z"
        rows.append(SandboxCallRow(f"CA{day:032x}", acct[0], None, "+14155552671", "(415) 555-2671", FROM,
                                   "(500) 555-0006", None, "completed", start, f"2024-03-0{day}T12:01:00Z", 60,
                                   "-0.0130", "USD", "inbound", None, None, None, None, 0, None, None, None, None,
                                   None, start, start))  # fmt: skip
    sandbox_server.call(sandbox_server.services.store.sandbox.insert_many(kinds.CALL, rows))
    path = f"/2010-04-01/Accounts/{acct[0]}/Calls.json"

    def sids(**params: str) -> list[str]:
        return [x["sid"] for x in _get(sandbox_server, acct, path, **params).json()["calls"]]

    assert sids(StartTime="2024-03-03") == [rows[2].sid]
    assert sids(**{"StartTime>": "2024-03-04"}) == [rows[4].sid, rows[3].sid]
    assert sids(**{"EndTime<": "2024-03-02"}) == [rows[1].sid, rows[0].sid]  # the whole day 03-02 included
    assert sids(**{"StartTime>": "2024-03-02T12:00:00Z", "StartTime<": "2024-03-03 12:00:00"}) == [
        rows[2].sid, rows[1].sid]  # fmt: skip


# -- conferences, transcriptions, addresses


def test_conferences_transcriptions_and_addresses(sandbox_server: Server, acct: tuple[str, str]) -> None:
    store = sandbox_server.services.store.sandbox
    confs = [
        SandboxConferenceRow(f"CF{i:032x}", acct[0], f"room-{i % 2}", "us1", st, reason, None,
                             f"2024-01-1{i}T00:00:00Z", f"2024-02-1{i}T00:00:00Z")
        for i, (st, reason) in enumerate([("completed", "last-participant-left"), ("in-progress", None),
                                          ("completed", "conference-ended-via-api")])
    ]  # fmt: skip
    sandbox_server.call(store.insert_many(kinds.CONFERENCE, confs))
    trs = [SandboxTranscriptionRow(f"TR{i:032x}", acct[0], f"RE{i:032x}", "completed", "hello", "fast", 10, "0.05",
                                   "USD", f"2024-01-0{i + 1}T00:00:00Z", f"2024-01-0{i + 1}T00:00:00Z")
           for i in range(3)]  # fmt: skip
    sandbox_server.call(store.insert_many(kinds.TRANSCRIPTION, trs))
    c = _client(sandbox_server, acct)
    assert [x.sid for x in c.conferences.list(status="completed")] == [confs[2].sid, confs[0].sid]
    assert [x.sid for x in c.conferences.list(friendly_name="room-1")] == [confs[1].sid]
    path = f"/2010-04-01/Accounts/{acct[0]}/Conferences.json"
    after = _get(sandbox_server, acct, path, **{"DateUpdated>": "2024-02-11"}).json()["conferences"]
    assert [x["sid"] for x in after] == [confs[2].sid, confs[1].sid]
    assert c.conferences(confs[0].sid).fetch().reason_conference_ended == "last-participant-left"
    assert [x.sid for x in c.transcriptions.list()] == [t.sid for t in trs[::-1]]
    raw = _get(sandbox_server, acct, f"/2010-04-01/Accounts/{acct[0]}/Transcriptions/{trs[0].sid}.json").json()
    assert raw["price"] == 0.05 and raw["duration"] == "10"
    a = c.addresses.create(customer_name="Ada", street="1 Main St", city="SF", region="CA", postal_code="94105",
                           iso_country="US", emergency_enabled=True)  # fmt: skip
    assert a.sid.startswith("AD") and a.emergency_enabled is True and a.validated is True
    c.addresses.create(customer_name="Bob", street="2 High St", city="London", region="LDN", postal_code="N1",
                       iso_country="GB")  # fmt: skip
    assert [x.customer_name for x in c.addresses.list(iso_country="US")] == ["Ada"]
    assert [x.customer_name for x in c.addresses.list(emergency_enabled=False)] == ["Bob"]
    assert twilio_error(lambda: c.addresses.create(customer_name="x", street="s", city="c", region="r",
                                                    postal_code="p", iso_country="USA")) == (400, 21628)  # fmt: skip


# -- injected faults


def test_injected_429_and_5xx(sandbox_server: Server, acct: tuple[str, str]) -> None:
    srv = sandbox_server
    switches = f"{srv.url}/2010-04-01/Accounts/{acct[0]}/Sandbox.json"
    path = f"/2010-04-01/Accounts/{acct[0]}/Messages.json"
    set_ = requests.post(switches, auth=acct, data={"RateLimitRatio": "0.5", "RetryAfter": "2"})
    assert set_.status_code == 200 and set_.json()["RateLimitRatio"] == 0.5
    statuses = [_get(srv, acct, path) for _ in range(6)]
    limited = [r for r in statuses if r.status_code == 429]
    assert len(limited) == 3  # exactly the configured rate
    assert limited[0].headers["Retry-After"] == "2" and limited[0].json()["code"] == 20429
    requests.post(switches, auth=acct, data={"RateLimitRatio": "0", "ServerErrorRatio": "1", "ServerErrorStatus": "503"})
    assert _get(srv, acct, path).status_code == 503
    off = requests.post(switches, auth=acct, data={"ServerErrorRatio": "0"})  # the switch itself is never faulted
    assert off.json()["ServerErrorRatio"] == 0.0 and _get(srv, acct, path).status_code == 200
    bad = requests.post(switches, auth=acct, data={"Outcomes": "+44=exploded"})
    assert bad.status_code == 400 and "status must be one of" in bad.json()["message"]
    assert requests.post(switches, auth=acct, data={"RateLimitRatio": "2"}).status_code == 400
