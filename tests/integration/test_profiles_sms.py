"""The issue's loop through real profiles, on SQLite and PostgreSQL: segment-analytics-python
identifies user 42 with a national-format phone and a first name; a track "Trial Expired" (no phone
on it) is texted to the profile's E.164 phone with the profile's first name; "SMS Delivered" comes
back onto the same profile (Profiles API); an inbound STOP opts the profile out and the next track
sends nothing, visibly; START opts it back in."""

from __future__ import annotations

import uuid
from typing import Any

import requests
from twilio.request_validator import RequestValidator

from tests.conftest import Server
from tests.integration.test_twilio_sms import FROM, Setup, _wait


def test_identify_then_track_texts_the_profiles_phone_and_stop_opts_it_out(sandbox_server: Server) -> None:
    srv = sandbox_server
    s = Setup(srv)
    phone = "+14155550177"
    s.segment.identify("42", {"phone": "(415) 555-0177", "first_name": "Grace"})
    s.segment.track("42", "Trial Expired", {"plan": "team"})
    [text] = _wait(lambda: s.texts(phone), what="the text")
    assert text.body == "Hi Grace, your team trial ended."
    events_url = f"{srv.url}/v1/spaces/{s.es[0]}/collections/users/profiles/phone:{phone}/events"

    def sms_events(name: str) -> list[dict[str, Any]]:
        body = requests.get(events_url, params={"limit": 100}, auth=s.es, timeout=5).json()
        return [e for e in body["data"] if e.get("event") == name]

    delivered = _wait(lambda: sms_events("SMS Delivered"), what="SMS Delivered on the profile")
    assert delivered[0]["properties"]["messageSid"] == text.sid
    srv.settled(s.sink)

    def inbound(body: str) -> None:
        url = f"{srv.url}/bridge/{s.es[0]}/messaging/inbound"
        params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": s.tw[0], "From": phone, "To": FROM,
                  "Body": body, "NumMedia": "0", "SmsStatus": "received", "ApiVersion": "2010-04-01"}  # fmt: skip
        signature = RequestValidator(s.tw[1]).compute_signature(url, params)
        assert requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5).status_code == 200

    # the bridge verifies inbound messages with the sending account's auth token
    r = requests.post(f"{srv.url}/v1/Bridge/Credentials", auth=s.es, timeout=10,
                      data={"TwilioAccountSid": s.tw[0], "TwilioAuthToken": s.tw[1]})  # fmt: skip
    assert r.status_code in (200, 201), r.text
    inbound("STOP")
    s.segment.track("42", "Trial Expired", {"plan": "pro"})
    _wait(lambda: [e for e in s.log() if "has opted out of texts" in (e["detail"] or "")], what="the opt-out")
    srv.settled(s.sink)
    assert len(s.texts(phone)) == 1
    inbound("START")
    s.segment.track("42", "Trial Expired", {"plan": "pro"})
    _wait(lambda: len(s.texts(phone)) == 2, what="the text after START")
