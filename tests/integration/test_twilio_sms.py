"""The twilio-sms sink end to end on SQLite and PostgreSQL: segment-analytics-python tracks into our
tracking API, the sink (created with the official twilio client) texts through the real sandbox, the
sandbox's signed status callbacks come back through the bridge's SMS route and are recorded as track
events on the same user; retries on the sandbox's injected 429/5xx end in one text, a replay sends
nothing, Twilio's 21211/21610 are terminal, and a callback with a wrong signature is refused."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import requests
from segment.analytics import Client as SegmentClient
from twilio.request_validator import RequestValidator

from tests.conftest import Server

FROM = "+15005550006"
TRACK = "com.segment.tracking.track"
BODY = "Hi {{ traits.first_name | default: 'there' }}, your {{ properties.plan }} trial ended."


def _wait(predicate: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} not met in time"
        time.sleep(0.05)


class Setup:
    """A sandbox Twilio account that sends, an eventstreams account that owns the sink and the source."""

    def __init__(self, srv: Server, tw: tuple[str, str] | None = None, **config: Any) -> None:
        self.srv = srv
        self.tw = tw or srv.new_account("the sandbox's Twilio account")
        self.es = srv.new_account("eventstreams")
        self.twilio = srv.client(*self.tw)
        c = srv.client(*self.es)
        cfg = {
            "account_sid": self.tw[0],
            "auth_token": self.tw[1],
            "from": FROM,
            "base_url": srv.url,
            "status_callback_base_url": srv.url,
            "mappings": [{"event": "Trial Expired", "body": BODY}],
            **config,
        }
        cfg = {k: v for k, v in cfg.items() if v is not None}
        self.sink = c.events.v1.sinks.create(description="texts", sink_configuration=cfg, sink_type="twilio-sms").sid
        c.events.v1.subscriptions.create(description="tracks", sink_sid=self.sink, types=[{"type": TRACK}])
        account = srv.call(srv.services.store.accounts.get(self.es[0]))
        _, key = srv.call(srv.services.sources.create(account, "web"))
        self.segment = SegmentClient(key, host=srv.url, sync_mode=True)

    def track(self, phone: str, plan: str = "pro", message_id: str | None = None) -> str:
        message_id = message_id or uuid.uuid4().hex
        self.segment.track("42", "Trial Expired", {"plan": plan, "phone": phone},
                           context={"traits": {"first_name": "Ada"}}, message_id=message_id)  # fmt: skip
        return message_id

    def texts(self, to: str) -> list[Any]:
        return list(self.twilio.messages.list(to=to))

    def log(self) -> list[dict[str, Any]]:
        r = requests.get(f"{self.srv.url}/v1/Sinks/{self.sink}/Deliveries?PageSize=1000", auth=self.es, timeout=5)
        assert r.status_code == 200, r.text
        return list(r.json()["deliveries"])

    def switches(self, **values: Any) -> None:
        url = f"{self.srv.url}/2010-04-01/Accounts/{self.tw[0]}/Sandbox.json"
        r = requests.post(url, auth=self.tw, data=values, timeout=5)
        assert r.status_code == 200, r.text

    def tracked(self, event: str) -> list[dict[str, Any]]:
        rows = self.srv.call(
            self.srv.services.store.db.run(
                lambda tx: tx.all("SELECT payload FROM tracking_messages WHERE account_sid = :a", a=self.es[0])
            )
        )
        return [m for m in (orjson.loads(r["payload"]) for r in rows) if m.get("event") == event]


def test_a_track_event_texts_the_phone_and_its_callbacks_come_back_as_track_events(sandbox_server: Server) -> None:
    s = Setup(sandbox_server)
    s.track("(415) 555-0100")  # national format: the sink's default region (US) makes it E.164
    [text] = _wait(lambda: s.texts("+14155550100"), what="the text")
    assert text.body == "Hi Ada, your pro trial ended." and text.from_ == FROM
    # the delivery log keeps Twilio's answer
    entry = _wait(lambda: [e for e in s.log() if e["outcome"] == "delivered" and text.sid in (e["detail"] or "")])
    assert entry[0]["detail"] == f"Twilio {text.sid} queued to +14155550100"
    # the sandbox's signed callbacks reach /bridge/{account}/sms/{sink}/status: the ledger follows the
    # status, and "SMS Sent"/"SMS Delivered" are recorded on user 42 through the tracking ingest
    delivered = _wait(lambda: s.tracked("SMS Delivered"), what="SMS Delivered")
    assert delivered[0]["userId"] == "42"
    assert delivered[0]["properties"] == {"messageSid": text.sid, "errorCode": None, "to": "+14155550100",
                                          "from": FROM, "status": "delivered"}  # fmt: skip
    assert s.tracked("SMS Sent")
    row = sandbox_server.call(sandbox_server.services.store.sms.by_message_sid(s.es[0], text.sid))
    assert row is not None and row.status == "delivered" and row.user_id == "42" and row.sink_sid == s.sink
    # (a) as /messaging/status does: the Twilio messaging event is published into the account
    events = sandbox_server.call(
        sandbox_server.services.store.db.run(
            lambda tx: tx.all("SELECT type FROM events WHERE account_sid = :a", a=s.es[0])
        )
    )
    assert "com.twilio.messaging.message.delivered" in {e["type"] for e in events}
    # a replay of the event sends nothing new (the ledger holds its message SID)
    sandbox_server.settled(s.sink)
    r = requests.post(f"{sandbox_server.url}/v1/Sinks/{s.sink}/Replay", auth=s.es, timeout=5,
                      data={"Since": "2000-01-01T00:00:00Z"})  # fmt: skip
    assert r.status_code == 201 and r.json()["replayed"] >= 1, r.text
    _wait(lambda: [e for e in s.log() if "not sent again" in (e["detail"] or "")], what="the replay")
    sandbox_server.settled(s.sink)
    assert len(s.texts("+14155550100")) == 1
    # the SMS track events reach the sink too, and match no mapping: skipped, visibly
    assert any("no mapping matched: track event 'SMS Delivered'" in (e["detail"] or "") for e in s.log())


def test_sandbox_faults_are_retried_and_end_in_exactly_one_text(sandbox_server: Server) -> None:
    s = Setup(sandbox_server)
    for switch, to, status in (
        ({"RateLimitRatio": "1", "RetryAfter": "1"}, "+14155550110", 429),
        ({"ServerErrorRatio": "1", "ServerErrorStatus": "503"}, "+14155550111", 503),
    ):
        s.switches(**switch)
        s.track(to)
        failed = _wait(lambda: [e for e in s.log() if e["outcome"] == "failed" and e["http_status"] == status])
        if status == 429:
            assert "Twilio error 20429" in failed[0]["detail"] and failed[0]["error_code"] == 91302
        else:
            assert failed[0]["error_code"] == 91306
        s.switches(RateLimitRatio="0", ServerErrorRatio="0")
        _wait(lambda: s.texts(to), what="the retried text")
        sandbox_server.settled(s.sink)
        assert len(s.texts(to)) == 1


def test_twilio_rejections_are_terminal(sandbox_server: Server) -> None:
    s = Setup(sandbox_server)
    for to, code in (("+15005550001", 21211), ("+15005550004", 21610)):
        s.track(to)
        dead = _wait(lambda: [e for e in s.log() if e["outcome"] == "dead" and str(code) in (e["detail"] or "")])
        assert dead[0]["http_status"] == 400 and f"Twilio error {code}" in dead[0]["detail"]
    sandbox_server.settled(s.sink)
    assert not [e for e in s.log() if e["outcome"] == "failed"]  # never retried
    r = requests.get(f"{sandbox_server.url}/v1/Sinks/{s.sink}/DeadLetters", auth=s.es, timeout=5)
    assert len(r.json()["dead_letters"]) == 2
    # 21610 (the recipient unsubscribed) recorded the number's opt-out: the next text is not even tried
    s.track("+15005550004")
    _wait(lambda: [e for e in s.log() if "has opted out of texts (Twilio answered 21610" in (e["detail"] or "")])
    sandbox_server.settled(s.sink)
    assert not s.texts("+15005550004")


def test_status_callbacks_are_verified(sandbox_server: Server) -> None:
    s = Setup(sandbox_server)
    url = f"{sandbox_server.url}/bridge/{s.es[0]}/sms/{s.sink}/status"
    params = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "sent", "AccountSid": s.tw[0], "From": FROM,
              "To": "+14155550100", "ApiVersion": "2010-04-01"}  # fmt: skip
    good = RequestValidator(s.tw[1]).compute_signature(url, params)
    wrong = RequestValidator("not-the-token").compute_signature(url, params)
    for signature, status in ((wrong, 403), (None, 403), (good, 200)):
        headers = {"X-Twilio-Signature": signature} if signature else {}
        r = requests.post(url, data=params, headers=headers, timeout=5)
        assert r.status_code == status, r.text
    # a text the ledger does not know is published but recorded on nobody
    assert r.headers["X-Eventstreams-Outcome"] == "published" and "X-Eventstreams-Track-Message-Id" not in r.headers
    # another sink, or another account's, is the same uniform 403
    other = f"{sandbox_server.url}/bridge/{s.tw[0]}/sms/{s.sink}/status"
    r = requests.post(other, data=params, timeout=5,
                      headers={"X-Twilio-Signature": RequestValidator(s.tw[1]).compute_signature(other, params)})  # fmt: skip
    assert r.status_code == 403
    # a signed callback from another Twilio account is refused
    foreign = {**params, "AccountSid": "AC" + "0" * 32}
    r = requests.post(url, data=foreign, timeout=5,
                      headers={"X-Twilio-Signature": RequestValidator(s.tw[1]).compute_signature(url, foreign)})  # fmt: skip
    assert r.status_code == 403


class FakeProfiles:
    """The profiles helper's ProfileLookup, faithfully in memory (the opt-out side: STOP/START by phone)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool]] = []

    async def for_message(self, account_sid: str, message: dict[str, Any]) -> None:
        return None

    async def set_opted_out(self, account_sid: str, phone: str, opted_out: bool) -> int:
        self.calls.append((account_sid, phone, opted_out))
        return 1


def test_an_api_key_sink_is_verified_with_the_bridge_credentials_and_stop_opts_out(sandbox_server: Server) -> None:
    srv = sandbox_server
    tw = srv.new_account("the sandbox's Twilio account")
    key = srv.client(*tw).new_keys.create(friendly_name="sms")
    s = Setup(srv, tw, auth_token=None, api_key_sid=key.sid, api_key_secret=key.secret)
    # Twilio signs callbacks with the account's auth token, never an API key secret: the bridge holds it
    r = requests.post(f"{srv.url}/v1/Bridge/Credentials", auth=s.es, timeout=10,
                      data={"TwilioAccountSid": tw[0], "TwilioAuthToken": tw[1]})  # fmt: skip
    assert r.status_code in (200, 201), r.text
    s.track("+14155550120")
    [text] = _wait(lambda: s.texts("+14155550120"), what="the text")
    assert text.body == "Hi Ada, your pro trial ended."
    delivered = _wait(lambda: [m for m in s.tracked("SMS Delivered") if m["properties"]["messageSid"] == text.sid])
    assert delivered[0]["userId"] == "42"
    # an incoming STOP through the existing inbound route opts the sender's phone out; START opts back in
    profiles, real = FakeProfiles(), srv.services.sms.profiles
    srv.services.sms.profiles = profiles
    try:
        url = f"{srv.url}/bridge/{s.es[0]}/messaging/inbound"
        for body in ("Stop", "START", "hello"):
            params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": tw[0], "From": "+14155550120", "To": FROM,
                      "Body": body, "NumMedia": "0", "SmsStatus": "received", "ApiVersion": "2010-04-01"}  # fmt: skip
            signature = RequestValidator(tw[1]).compute_signature(url, params)
            r = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)
            assert r.status_code == 200, r.text
    finally:
        srv.services.sms.profiles = real  # the session's server goes on with the real profiles
    assert profiles.calls == [(s.es[0], "+14155550120", True), (s.es[0], "+14155550120", False)]


def test_a_stop_from_a_number_binds_it_whoever_the_track_names_it_for(sandbox_server: Server) -> None:
    """A STOP through the signed inbound route from a number no profile holds; a track from user 42 naming
    that number in properties.phone sends nothing, with the reason in the delivery log and dead letters."""
    srv = sandbox_server
    s = Setup(srv)
    phone = "+14155550140"
    r = requests.post(f"{srv.url}/v1/Bridge/Credentials", auth=s.es, timeout=10,
                      data={"TwilioAccountSid": s.tw[0], "TwilioAuthToken": s.tw[1]})  # fmt: skip
    assert r.status_code in (200, 201), r.text

    def inbound(body: str) -> requests.Response:
        url = f"{srv.url}/bridge/{s.es[0]}/messaging/inbound"
        params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": s.tw[0], "From": phone, "To": FROM,
                  "Body": body, "NumMedia": "0", "SmsStatus": "received", "ApiVersion": "2010-04-01"}  # fmt: skip
        signature = RequestValidator(s.tw[1]).compute_signature(url, params)
        r = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)
        assert r.status_code == 200, r.text
        return r

    assert inbound("Stop").headers["X-Eventstreams-Opt-Out-Profiles"] == "0"  # no profile holds it
    s.track("(415) 555-0140")
    dead = _wait(lambda: [e for e in s.log() if e["outcome"] == "dead"], what="the refused text")
    reason = f"not sent: {phone} has opted out of texts (STOP received "
    assert reason in dead[0]["detail"] and dead[0]["error_code"] == 91303
    r = requests.get(f"{srv.url}/v1/Sinks/{s.sink}/DeadLetters", auth=s.es, timeout=5)
    assert r.status_code == 200, r.text
    [letter] = r.json()["dead_letters"]
    assert reason in orjson.dumps(letter).decode()
    srv.settled(s.sink)
    assert not s.texts(phone)
    # START opts the number back in
    inbound("START")
    s.track(phone)
    _wait(lambda: s.texts(phone), what="the text after START")
