"""The Twilio callback bridge through a real server on SQLite and PostgreSQL:
callbacks signed with the official twilio RequestValidator, events delivered
to a real webhook sink, retries deduplicated, bad signatures refused."""

from __future__ import annotations

import json
from typing import Any

import requests
from twilio.request_validator import RequestValidator

from tests.conftest import Receiver, Server

TW_ACCOUNT = "AC" + "7a" * 16
TW_TOKEN = "f" * 32
SM = "SM" + "3" * 32
CA = "CA" + "4" * 32
STATUS_TYPES = [f"com.twilio.messaging.message.{s}" for s in ("queued", "sent", "delivered", "failed")]
ALL_TYPES = [
    *STATUS_TYPES,
    "com.twilio.messaging.inbound-message.received",
    "com.twilio.voice.status-callback.call.ringing",
    "com.twilio.voice.status-callback.call.completed",
]
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def configure(server: Server, account: tuple[str, str], tw_account: str = TW_ACCOUNT, token: str = TW_TOKEN) -> Any:
    r = requests.post(
        f"{server.url}/v1/Bridge/Credentials",
        data={"TwilioAccountSid": tw_account, "TwilioAuthToken": token},
        auth=account,
        timeout=5,
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def subscribe(server: Server, account: tuple[str, str], receiver: Receiver, path: str) -> str:
    client = server.client(*account)
    sink = client.events.v1.sinks.create(
        description=path,
        sink_type="webhook",
        sink_configuration={"destination": receiver.url + path, "method": "POST", "batch_events": False},
    )
    client.events.v1.subscriptions.create(description=path, sink_sid=sink.sid, types=[{"type": t} for t in ALL_TYPES])
    return str(sink.sid)


def status_params(status: str = "delivered", **extra: str) -> dict[str, str]:
    return {
        "SmsSid": SM,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": "+14155550123",
        "MessageSid": SM,
        "AccountSid": TW_ACCOUNT,
        "From": "+18126097345",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def call_params(status: str = "completed", **extra: str) -> dict[str, str]:
    return {
        "CallSid": CA,
        "CallStatus": status,
        "AccountSid": TW_ACCOUNT,
        "From": "+14155550123",
        "To": "+18126097345",
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
        "Timestamp": "Fri, 14 Mar 2025 16:10:03 +0000",
        "SequenceNumber": "2" if status == "completed" else "1",
        "CallbackSource": "call-progress-events",
        **extra,
    }


def post(
    server: Server,
    account_sid: str,
    endpoint: str,
    params: dict[str, str],
    token: str | None = TW_TOKEN,
    signature: str | None = None,
    sign_url: str | None = None,
    query: str = "",
) -> requests.Response:
    path = f"/bridge/{account_sid}/{endpoint}{query}"
    headers = {}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    elif token is not None:
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(sign_url or server.url + path, params)
    return requests.post(server.url + path, data=params, headers=headers, timeout=5)


def settle(server: Server, account: tuple[str, str]) -> None:
    """Wait until none of the account's sinks has a delivery left to make. A callback publishes
    before it is answered, so from then on the receiver has everything it will ever get."""
    from eventstreams.store.records import PageQuery

    page = server.call(server.services.store.sinks.list(account[0], None, None, PageQuery(size=1000)))
    for sink in page.items:
        server.settled(sink.sid)


def test_signature_url_is_the_public_base_url(server: Server) -> None:
    assert server.services.settings.public_base_url() == server.url


def test_status_callbacks_reach_a_webhook_sink_once(
    server: Server, account: tuple[str, str], receiver: Receiver
) -> None:
    view = configure(server, account)
    assert view["configured"] is True and view["twilio_account_sid"] == TW_ACCOUNT
    assert view["urls"]["messaging_status"] == f"{server.url}/bridge/{account[0]}/messaging/status"
    assert TW_TOKEN not in str(view)
    subscribe(server, account, receiver, "/sms")

    first = post(server, account[0], "messaging/status", status_params("sent"))
    assert first.status_code == 200 and first.text == "", first.text
    assert first.headers["X-Eventstreams-Outcome"] == "published"
    # Twilio retrying the same callback: answered 200, deduplicated by the stable id
    retry = post(server, account[0], "messaging/status", status_params("sent"))
    assert retry.status_code == 200 and retry.headers["X-Eventstreams-Outcome"] == "duplicate"
    assert retry.headers["X-Eventstreams-Event-Id"] == first.headers["X-Eventstreams-Event-Id"]
    delivered = post(server, account[0], "messaging/status", status_params("delivered", RawDlrDoneDate="2503141602"))
    assert delivered.status_code == 200
    # No Event Streams type for "sending": 200, nothing published
    ignored = post(server, account[0], "messaging/status", status_params("sending"))
    assert ignored.status_code == 200 and ignored.headers["X-Eventstreams-Outcome"] == "ignored"

    receiver.wait_for(lambda: len(receiver.events("/sms")) >= 2)
    settle(server, account)
    events = receiver.events("/sms")
    assert [e["type"] for e in sorted(events, key=lambda e: e["data"]["messageStatus"], reverse=True)] == [
        "com.twilio.messaging.message.sent",
        "com.twilio.messaging.message.delivered",
    ]
    sent = next(e for e in events if e["type"].endswith(".sent"))
    assert sent["id"] == first.headers["X-Eventstreams-Event-Id"] and sent["id"].startswith("EZ")
    assert sent["source"] == f"/2010-04-01/Accounts/{TW_ACCOUNT}/Messages/{SM}.json"
    assert sent["dataschema"].startswith("https://events-schemas.twilio.com/Messaging.MessageStatus/")
    assert sent["data"]["messageSid"] == SM and sent["data"]["messageStatus"] == "SENT"
    assert sent["data"]["accountSid"] == TW_ACCOUNT and sent["data"]["from"] == "+18126097345"


def test_inbound_answers_empty_twiml_and_publishes(
    server: Server, account: tuple[str, str], receiver: Receiver
) -> None:
    configure(server, account)
    subscribe(server, account, receiver, "/in")
    params = {
        "MessageSid": SM,
        "SmsMessageSid": SM,
        "AccountSid": TW_ACCOUNT,
        "From": "+14155550123",
        "To": "+18126097345",
        "Body": "Hello ünïcode 👋 & more",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "FromCountry": "US",
        "ApiVersion": "2010-04-01",
    }
    r = post(server, account[0], "messaging/inbound", params)
    assert r.status_code == 200, r.text
    assert r.text == TWIML and r.headers["Content-Type"].startswith("text/xml")
    receiver.wait_for(lambda: len(receiver.events("/in")) == 1)
    ev = receiver.events("/in")[0]
    assert ev["type"] == "com.twilio.messaging.inbound-message.received"
    assert ev["data"]["body"] == "Hello ünïcode 👋 & more" and ev["data"]["numMedia"] == 0
    assert ev["data"]["fromCountry"] == "US"


def test_voice_status_callbacks(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    configure(server, account)
    subscribe(server, account, receiver, "/voice")
    assert post(server, account[0], "voice/status", call_params("ringing")).status_code == 200
    busy = post(server, account[0], "voice/status", call_params("busy", SequenceNumber="2"))
    assert busy.status_code == 200 and busy.headers["X-Eventstreams-Event-Id"].startswith("VW")
    assert post(server, account[0], "voice/status", call_params("busy", SequenceNumber="2")).status_code == 200
    receiver.wait_for(lambda: len(receiver.events("/voice")) >= 2)
    settle(server, account)
    events = {e["type"]: e for e in receiver.events("/voice")}
    assert len(receiver.events("/voice")) == 2
    done = events["com.twilio.voice.status-callback.call.completed"]
    assert done["data"]["sid"] == CA and done["data"]["request"]["parameters"]["CallStatus"] == "busy"
    assert done["data"]["request"]["url"] == f"{server.url}/bridge/{account[0]}/voice/status"
    assert done["time"] == "2025-03-14T16:10:03.000Z"
    assert done["source"] == f"/2010-04-01/Accounts/{TW_ACCOUNT}/Calls/{CA}.json"
    assert "com.twilio.voice.status-callback.call.ringing" in events


def test_bad_or_missing_signature_is_403_and_publishes_nothing(
    server: Server, account: tuple[str, str], receiver: Receiver
) -> None:
    configure(server, account)
    subscribe(server, account, receiver, "/sig")
    url = f"{server.url}/bridge/{account[0]}/messaging/status"
    cases = [
        post(server, account[0], "messaging/status", status_params(), token=None),  # no header
        post(server, account[0], "messaging/status", status_params(), token="0" * 32),  # wrong token
        post(server, account[0], "messaging/status", status_params(), signature="bm90IGEgc2lnbmF0dXJl"),
        # signed for other params than those sent
        post(
            server,
            account[0],
            "messaging/status",
            status_params(),
            signature=RequestValidator(TW_TOKEN).compute_signature(url, status_params("failed")),
        ),
        # signed for another URL (e.g. EVENTSTREAMS_BASE_URL not the URL Twilio called)
        post(server, account[0], "messaging/status", status_params(), sign_url="https://elsewhere.example.com/x"),
        post(server, account[0], "voice/status", call_params(), token="0" * 32),
        post(server, account[0], "messaging/inbound", status_params(), token=None),
        # wrong signature on a body of an unknown shape: the signature decides first
        post(server, account[0], "voice/status", {"AccountSid": TW_ACCOUNT}, token="0" * 32),
    ]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for body, headers in [
        # not valid form encoding: no parameters to sign, so no signature can match (not even the
        # one over the URL alone)
        (b"MessageSid=%FF%FE", {**form, "X-Twilio-Signature": "x"}),
        (b"MessageSid=%FF%FE", {**form, "X-Twilio-Signature": RequestValidator(TW_TOKEN).compute_signature(url, {})}),
        (b"MessageSid=%FF%FE", form),  # and no signature at all
        # not a form, signed as if its fields were form parameters (Twilio signs a non-form
        # request over the URL alone)
        (
            json.dumps(status_params()).encode(),
            {
                "Content-Type": "application/json",
                "X-Twilio-Signature": RequestValidator(TW_TOKEN).compute_signature(url, status_params()),
            },
        ),
        (json.dumps(status_params()).encode(), {"Content-Type": "application/json", "X-Twilio-Signature": "x"}),
    ]:
        cases.append(requests.post(url, data=body, headers=headers, timeout=5))
    for r in cases:
        assert r.status_code == 403, r.text
        assert r.json()["code"] == 20403 and r.json()["status"] == 403
    settle(server, account)
    assert receiver.requests == []


def test_query_string_is_part_of_the_signed_url(server: Server, account: tuple[str, str]) -> None:
    configure(server, account)
    ok = post(server, account[0], "messaging/status", status_params("queued"), query="?tag=a%20b&x=1")
    assert ok.status_code == 200, ok.text
    path = f"/bridge/{account[0]}/messaging/status"
    bad = post(server, account[0], "messaging/status", status_params(), sign_url=server.url + path, query="?x=1")
    assert bad.status_code == 403


def test_wrong_twilio_account_is_403(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    configure(server, account)
    subscribe(server, account, receiver, "/wrong")
    # Correctly signed with the token, but for another Twilio account
    r = post(server, account[0], "messaging/status", status_params(AccountSid="AC" + "9" * 32))
    assert r.status_code == 403 and "AccountSid" in r.json()["message"]
    settle(server, account)
    assert receiver.requests == []


def test_unknown_shapes_are_400_with_the_reason(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    configure(server, account)
    subscribe(server, account, receiver, "/shape")
    no_sid = {k: v for k, v in status_params().items() if k not in ("MessageSid", "SmsSid")}
    r = post(server, account[0], "messaging/status", no_sid)
    assert (
        r.status_code == 400 and r.json()["message"] == "Not a Messaging status callback: missing MessageSid or SmsSid"
    )
    r = post(server, account[0], "messaging/status", status_params("teleported"))
    assert r.status_code == 400 and "Unknown MessageStatus" in r.json()["message"]
    r = post(server, account[0], "voice/status", {"AccountSid": TW_ACCOUNT, "From": "+1"})
    assert r.status_code == 400 and "missing CallSid, CallStatus" in r.json()["message"]
    # a message callback sent to the voice endpoint
    r = post(server, account[0], "voice/status", status_params())
    assert r.status_code == 400 and "Voice status callback" in r.json()["message"]
    # not form-encoded
    path = f"/bridge/{account[0]}/messaging/status"
    r = requests.post(
        server.url + path,
        json=status_params(),
        headers={"X-Twilio-Signature": RequestValidator(TW_TOKEN).compute_signature(server.url + path, {})},
        timeout=5,
    )
    assert r.status_code == 400 and "application/x-www-form-urlencoded" in r.json()["message"]
    # correctly signed, but a parameter holds a NUL character
    r = post(server, account[0], "messaging/status", status_params(Body="a\x00b"))
    assert r.status_code == 400 and "NUL" in r.json()["message"], r.text
    settle(server, account)
    assert receiver.requests == []


def inbound_params(**extra: str) -> dict[str, str]:
    return {
        "ToCountry": "US",
        "SmsMessageSid": SM,
        "NumMedia": "0",
        "SmsSid": SM,
        "SmsStatus": "received",
        "Body": "hi",
        "To": "+18126097345",
        "NumSegments": "1",
        "MessageSid": SM,
        "AccountSid": TW_ACCOUNT,
        "From": "+14155550123",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def test_callbacks_at_the_wrong_endpoint_are_400(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    configure(server, account)
    subscribe(server, account, receiver, "/wrong-endpoint")
    # a status callback posted to the incoming-message endpoint
    r = post(server, account[0], "messaging/inbound", status_params("delivered"))
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith("MessageStatus 'delivered' is a status callback, not an incoming message")
    legacy = {k: v for k, v in status_params("failed").items() if k != "MessageStatus"}
    r = post(server, account[0], "messaging/inbound", legacy)
    assert r.status_code == 400 and "SmsStatus 'failed' is a status callback" in r.json()["message"]
    # an incoming message posted to the status endpoint (with or without MessageStatus=received)
    for params in (inbound_params(), inbound_params(MessageStatus="received")):
        r = post(server, account[0], "messaging/status", params)
        assert r.status_code == 400, r.text
        assert r.json()["message"].startswith("This is an incoming message, not a status callback")
    settle(server, account)
    assert receiver.requests == []
    # each at its own endpoint is published
    assert post(server, account[0], "messaging/inbound", inbound_params(MessageStatus="received")).status_code == 200
    assert post(server, account[0], "messaging/status", status_params("delivered")).status_code == 200
    receiver.wait_for(lambda: len(receiver.events("/wrong-endpoint")) == 2)
    settle(server, account)
    assert sorted(e["type"] for e in receiver.events("/wrong-endpoint")) == [
        "com.twilio.messaging.inbound-message.received",
        "com.twilio.messaging.message.delivered",
    ]


def test_token_is_stored_encrypted_and_never_returned(server: Server, account: tuple[str, str]) -> None:
    token = "a1b2c3d4" * 4
    configure(server, account, token=token)
    row = server.call(server.services.store.bridge.get(account[0]))
    assert row is not None and token not in str(row)
    assert server.services.box.open(row["token_sealed"]) == token
    got = requests.get(f"{server.url}/v1/Bridge/Credentials", auth=account, timeout=5)
    assert got.status_code == 200 and token not in got.text and got.json()["configured"] is True
    # rotating the token: the old one stops working at once
    replaced = requests.post(
        f"{server.url}/v1/Bridge/Credentials",
        data={"TwilioAccountSid": TW_ACCOUNT, "TwilioAuthToken": TW_TOKEN},
        auth=account,
        timeout=5,
    )
    assert replaced.status_code == 200 and replaced.json()["date_created"] == got.json()["date_created"]
    assert post(server, account[0], "messaging/status", status_params(), token=token).status_code == 403
    assert post(server, account[0], "messaging/status", status_params("queued")).status_code == 200


def test_management_api(server: Server, account: tuple[str, str]) -> None:
    base = f"{server.url}/v1/Bridge/Credentials"
    assert requests.get(base, timeout=5).status_code == 401
    assert (
        requests.post(base, data={"TwilioAccountSid": TW_ACCOUNT, "TwilioAuthToken": "x"}, timeout=5).status_code == 401
    )
    empty = requests.get(base, auth=account, timeout=5).json()
    assert empty["configured"] is False and empty["twilio_account_sid"] is None
    assert empty["urls"]["voice_status"] == f"{server.url}/bridge/{account[0]}/voice/status"
    for data in (
        {"TwilioAccountSid": TW_ACCOUNT},
        {"TwilioAccountSid": "AC123", "TwilioAuthToken": TW_TOKEN},
        {"TwilioAccountSid": TW_ACCOUNT, "TwilioAuthToken": ""},
        {"TwilioAccountSid": TW_ACCOUNT, "TwilioAuthToken": TW_TOKEN, "Other": "1"},
    ):
        r = requests.post(base, data=data, auth=account, timeout=5)
        assert r.status_code == 400, (data, r.text)
    created = requests.post(
        base, data={"TwilioAccountSid": "AC" + TW_ACCOUNT[2:].upper(), "TwilioAuthToken": TW_TOKEN},
        auth=account, timeout=5,
    )  # fmt: skip
    assert created.status_code == 201 and created.json()["twilio_account_sid"] == TW_ACCOUNT
    # configured: callbacks work; deleted: 403 "not configured"
    assert post(server, account[0], "messaging/status", status_params("queued")).status_code == 200
    assert requests.delete(base, auth=account, timeout=5).status_code == 204
    assert requests.delete(base, auth=account, timeout=5).status_code == 404
    r = post(server, account[0], "messaging/status", status_params("queued"))
    assert r.status_code == 403 and "configured" in r.json()["message"]


def test_who_exists_is_not_told_without_a_valid_signature(server: Server, account: tuple[str, str]) -> None:
    """Unknown account, known account without bridge credentials, suspended account, no signature,
    wrong signature: one answer (same status, same body), so an unsigned caller learns nothing."""
    bare = server.new_account("Bare")  # exists, no bridge credentials
    configured = server.new_account("Configured")
    configure(server, configured)
    sub_sid, _ = server.new_account("Suspended", parent=account[0])
    configure(server, (sub_sid, account[1]))
    r = requests.post(
        f"{server.url}/2010-04-01/Accounts/{sub_sid}.json", data={"Status": "suspended"}, auth=account, timeout=5
    )
    assert r.status_code == 200, r.text
    answers = [
        post(server, "AC" + "0" * 32, "messaging/status", status_params()),  # unknown
        post(server, "nonsense", "messaging/status", status_params()),  # not even a SID
        post(server, bare[0], "messaging/status", status_params()),  # no credentials
        post(server, configured[0], "messaging/status", status_params(), token=None),  # no signature
        post(server, configured[0], "messaging/status", status_params(), token="0" * 32),  # wrong signature
        post(server, sub_sid, "messaging/status", status_params()),  # suspended (correctly signed)
        post(server, "AC" + "0" * 32, "voice/status", call_params(), token=None),
    ]
    def uniform(r: requests.Response) -> tuple[int, str]:
        # the message names the URL called (from the request alone, to help compare it with Twilio's)
        return r.status_code, r.text.replace(r.request.url or "", "<url>")

    first = answers[0]
    assert first.status_code == 403 and first.json()["code"] == 20403
    assert first.request.url and first.request.url in first.json()["message"]
    for r in answers:
        assert uniform(r) == uniform(first), r.text
    # an oversized body is refused before the account is looked up: the same 413 for all
    big = {"Body": "x" * (300 * 1024)}
    sizes = {post(server, sid, "messaging/status", big).status_code for sid in ("AC" + "0" * 32, configured[0])}
    assert sizes == {413}


def test_accounts_are_isolated(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    other = server.new_account("Other")
    configure(server, account)
    subscribe(server, account, receiver, "/mine")
    subscribe(server, other, receiver, "/theirs")
    # Other account without bridge credentials: my correctly signed callback is refused
    r = post(server, other[0], "messaging/status", status_params("failed"))
    assert r.status_code == 403
    # Other account with its own Twilio token: my signature (my token) does not verify there
    configure(server, other, token="e" * 32)
    r = post(server, other[0], "messaging/status", status_params("failed"))
    assert r.status_code == 403
    # My signature for my URL replayed at the other account's URL: refused
    mine = f"{server.url}/bridge/{account[0]}/messaging/status"
    sig = RequestValidator(TW_TOKEN).compute_signature(mine, status_params("failed"))
    configure(server, other, token=TW_TOKEN)  # even with the same Twilio token, the signed URL differs
    r = post(server, other[0], "messaging/status", status_params("failed"), signature=sig)
    assert r.status_code == 403
    # Same callback to both (each signed for its own URL): each account gets its own event, with distinct ids
    a = post(server, account[0], "messaging/status", status_params("failed"))
    b = post(server, other[0], "messaging/status", status_params("failed"))
    assert a.status_code == b.status_code == 200
    assert a.headers["X-Eventstreams-Event-Id"] != b.headers["X-Eventstreams-Event-Id"]
    receiver.wait_for(lambda: len(receiver.events("/mine")) == 1 and len(receiver.events("/theirs")) == 1)
    settle(server, account)
    settle(server, other)
    assert len(receiver.events("/mine")) == 1 and len(receiver.events("/theirs")) == 1


def test_suspended_account_is_403(server: Server, account: tuple[str, str]) -> None:
    sub_sid, _ = server.new_account("Sub", parent=account[0])
    configure(server, (sub_sid, account[1]))
    assert post(server, sub_sid, "messaging/status", status_params("queued")).status_code == 200
    r = requests.post(
        f"{server.url}/2010-04-01/Accounts/{sub_sid}.json", data={"Status": "suspended"}, auth=account, timeout=5
    )
    assert r.status_code == 200, r.text
    r = post(server, sub_sid, "messaging/status", status_params("queued"))
    assert r.status_code == 403 and "account active" in r.json()["message"]


def test_fuzzed_callbacks_never_500(server: Server, account: tuple[str, str]) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    configure(server, account)
    names = st.sampled_from(["MessageSid", "MessageStatus", "AccountSid", "From", "To", "CallSid", "CallStatus",
                             "ErrorCode", "NumMedia", "Timestamp", "Body", "x"])  # fmt: skip
    values = st.one_of(st.sampled_from([TW_ACCOUNT, SM, CA, "delivered", "completed", "99999999999999999999"]),
                       st.text(max_size=20))  # fmt: skip
    session = requests.Session()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        endpoint=st.sampled_from(["messaging/status", "messaging/inbound", "voice/status"]),
        params=st.dictionaries(names, values, max_size=8),
        raw=st.one_of(st.none(), st.binary(max_size=100)),
    )
    def fuzz(endpoint: str, params: dict[str, str], raw: bytes | None) -> None:
        path = f"/bridge/{account[0]}/{endpoint}"
        sig = RequestValidator(TW_TOKEN).compute_signature(server.url + path, params)
        r = session.post(
            server.url + path,
            data=raw if raw is not None else params,
            headers={"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert r.status_code in (200, 400, 403), (endpoint, params, raw, r.status_code, r.text)

    fuzz()
