"""Twilio callbacks → canonical events: types, schema validity (every catalogue
version, after the projection delivery applies), stable ids, bad shapes."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstreams.bridge.mapping import (
    INBOUND_TYPE,
    CallbackError,
    call_status_event,
    callback_time,
    event_id,
    inbound_message_event,
    message_status_event,
)
from eventstreams.catalog import builtin_schema_versions, builtin_types

ES_ACCOUNT = "AC" + "e" * 32
TW_ACCOUNT = "ACe268443e43d93dab7ebef303bbe9642f"
SM = "SM3fccf7e8ef8bb6df5c1a77f579c5b914"
CA = "CAa606dc9b2253f556495c14158a38d9e7"
URL = "https://es.example.com/bridge/" + ES_ACCOUNT + "/messaging/status"
NOW = 1_742_000_000.123


def p(**kw: str | list[str]) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in kw.items()}


def status_params(status: str = "delivered", **extra: str | list[str]) -> dict[str, list[str]]:
    base: dict[str, str | list[str]] = {
        "SmsSid": SM,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": "+14155550123",
        "MessagingServiceSid": "MGf209672a3e014941a8ff550dfdf277a9",
        "MessageSid": SM,
        "AccountSid": TW_ACCOUNT,
        "From": "+18126097345",
        "ApiVersion": "2010-04-01",
    }
    base.update(extra)
    return p(**base)


def inbound_params(**extra: str | list[str]) -> dict[str, list[str]]:
    base: dict[str, str | list[str]] = {
        "ToCountry": "US",
        "ToState": "IN",
        "SmsMessageSid": SM,
        "NumMedia": "1",
        "ToCity": "EVANSVILLE",
        "FromZip": "94105",
        "SmsSid": SM,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO",
        "Body": "STOP",
        "FromCountry": "US",
        "To": "+18126097345",
        "MessagingServiceSid": "MGf209672a3e014941a8ff550dfdf277a9",
        "ToZip": "47708",
        "NumSegments": "1",
        "MessageSid": SM,
        "AccountSid": TW_ACCOUNT,
        "From": "+14155550123",
        "ApiVersion": "2010-04-01",
        "OptOutType": "STOP",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC.../Media/ME...",
        "MediaContentType0": "image/jpeg",
    }
    base.update(extra)
    return p(**base)


def call_params(status: str = "completed", **extra: str | list[str]) -> dict[str, list[str]]:
    base: dict[str, str | list[str]] = {
        "Called": "+18126097345",
        "ToState": "IN",
        "CallerCountry": "US",
        "Direction": "outbound-api",
        "Timestamp": "Fri, 14 Mar 2025 16:10:03 +0000",
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "3",
        "CallSid": CA,
        "To": "+18126097345",
        "From": "+14155550123",
        "CallStatus": status,
        "AccountSid": TW_ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallDuration": "42",
    }
    base.update(extra)
    return p(**base)


@cache
def schemas() -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for row in builtin_schema_versions():
        out.setdefault(row.schema_id, {})[row.version] = json.loads(row.document)
    return out


def schema_of(type_: str) -> str:
    for t in builtin_types():
        if t.type == type_:
            assert t.status == "available"
            return t.schema_id
    raise AssertionError(f"{type_} is not in the catalogue")


def assert_valid(event: dict[str, Any]) -> None:
    """Valid against every version, after delivery's projection onto that version's properties."""
    versions = schemas()[schema_of(event["type"])]
    for doc in versions.values():
        props = doc.get("properties") or {}
        data = {k: v for k, v in event["data"].items() if k in props} if props else event["data"]
        jsonschema.validate(data, doc)
    latest = versions[max(versions)]
    jsonschema.validate(event["data"], latest)


def assert_envelope(event: dict[str, Any]) -> None:
    assert event["specversion"] == "1.0" and event["datacontenttype"] == "application/json"
    assert event["time"].endswith("Z") and len(event["time"]) == len("2025-03-14T16:02:11.482Z")
    assert "dataschema" not in event  # the publisher sets it from the catalogue


# -- messaging status


@pytest.mark.parametrize("status", ["queued", "sent", "delivered", "undelivered", "failed", "read"])
def test_each_message_status_maps_to_its_type(status: str) -> None:
    ev = message_status_event(ES_ACCOUNT, status_params(status), URL, NOW)
    assert ev is not None
    assert ev["type"] == f"com.twilio.messaging.message.{status}"
    assert ev["source"] == f"/2010-04-01/Accounts/{TW_ACCOUNT}/Messages/{SM}.json"
    assert ev["id"].startswith("EZ") and len(ev["id"]) == 34
    d = ev["data"]
    assert d["messageStatus"] == status.upper() and d["eventName"] == ev["type"]
    assert d["messageSid"] == SM and d["accountSid"] == TW_ACCOUNT
    assert d["from"] == "+18126097345" and d["to"] == "+14155550123"
    assert d["messagingServiceSid"] == "MGf209672a3e014941a8ff550dfdf277a9"
    assert d["apiVersion"] == "2010-04-01" and d["statusCallBackUrl"] == URL
    assert d["timestamp"] == ev["time"] == "2025-03-15T00:53:20.123Z"
    assert_envelope(ev)
    assert_valid(ev)


def test_error_fields_are_typed() -> None:
    ev = message_status_event(
        ES_ACCOUNT,
        status_params("undelivered", ErrorCode="30003", ErrorMessage="Unreachable", RawDlrDoneDate="2503141602"),
        URL,
        NOW,
    )
    assert ev is not None
    assert ev["data"]["errorCode"] == 30003 and ev["data"]["errorMessage"] == "Unreachable"
    assert ev["data"]["rawDlrDoneDate"] == "2503141602"
    assert_valid(ev)
    # A non-numeric error code is dropped rather than failing the schema's integer type.
    odd = message_status_event(ES_ACCOUNT, status_params("failed", ErrorCode="x1"), URL, NOW)
    assert odd is not None and "errorCode" not in odd["data"]
    assert_valid(odd)


def test_legacy_sms_fields_and_default_api_version() -> None:
    params = status_params("sent")
    for name in ("MessageSid", "MessageStatus", "ApiVersion"):
        del params[name]
    ev = message_status_event(ES_ACCOUNT, params, URL, NOW)
    assert ev is not None and ev["data"]["messageSid"] == SM and ev["data"]["apiVersion"] == "2010-04-01"
    assert ev["type"].endswith(".sent")


@pytest.mark.parametrize(
    "status", ["sending", "accepted", "scheduled", "canceled", "receiving", "received", "partially_delivered"]
)
def test_statuses_without_an_event_type_are_ignored(status: str) -> None:
    assert message_status_event(ES_ACCOUNT, status_params(status), URL, NOW) is None


def test_unknown_message_status_is_an_error() -> None:
    with pytest.raises(CallbackError, match="Unknown MessageStatus 'teleported'"):
        message_status_event(ES_ACCOUNT, status_params("teleported"), URL, NOW)


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        (("MessageSid", "SmsSid"), "MessageSid or SmsSid"),
        (("MessageStatus", "SmsStatus"), "MessageStatus or SmsStatus"),
        (("AccountSid",), "AccountSid"),
        (("From",), "From"),
        (("To",), "To"),
    ],
)
def test_missing_status_fields_are_named(drop: tuple[str, ...], named: str) -> None:
    params = status_params()
    for name in drop:
        del params[name]
    with pytest.raises(CallbackError, match=f"Not a Messaging status callback: missing {named}$"):
        message_status_event(ES_ACCOUNT, params, URL, NOW)


def test_blank_required_value_counts_as_missing() -> None:
    with pytest.raises(CallbackError, match="missing To"):
        message_status_event(ES_ACCOUNT, status_params(To=""), URL, NOW)


def test_message_ids_are_stable_per_callback() -> None:
    a = message_status_event(ES_ACCOUNT, status_params("delivered"), URL, NOW)
    b = message_status_event(ES_ACCOUNT, status_params("delivered", ErrorCode="0"), URL, NOW + 30)
    assert a is not None and b is not None and a["id"] == b["id"]  # a retry: same id whatever else differs
    others = [
        message_status_event(ES_ACCOUNT, status_params("sent"), URL, NOW),
        message_status_event(ES_ACCOUNT, status_params("delivered", MessageSid="SM" + "1" * 32), URL, NOW),
        message_status_event("AC" + "f" * 32, status_params("delivered"), URL, NOW),
    ]
    ids = {a["id"]} | {o["id"] for o in others if o is not None}
    assert len(ids) == 4


# -- inbound


def test_inbound_message_maps_every_schema_field() -> None:
    ev = inbound_message_event(ES_ACCOUNT, inbound_params(), URL, NOW)
    assert ev["type"] == "com.twilio.messaging.inbound-message.received"
    assert ev["source"] == f"/2010-04-01/Accounts/{TW_ACCOUNT}/Messages/{SM}.json"
    assert ev["data"] == {
        "messageSid": SM,
        "timestamp": "2025-03-15T00:53:20.123Z",
        "accountSid": TW_ACCOUNT,
        "eventName": "com.twilio.messaging.inbound-message.received",
        "from": "+14155550123",
        "to": "+18126097345",
        "body": "STOP",
        "numMedia": 1,
        "numSegments": 1,
        "messagingServiceSid": "MGf209672a3e014941a8ff550dfdf277a9",
        "toCountry": "US",
        "toState": "IN",
        "toCity": "EVANSVILLE",
        "toZip": "47708",
        "fromCountry": "US",
        "fromState": "CA",
        "fromCity": "SAN FRANCISCO",
        "fromZip": "94105",
        "optOutType": "STOP",
    }
    assert_envelope(ev)
    assert_valid(ev)


def test_inbound_empty_body_is_kept_and_minimal_shape_is_valid() -> None:
    ev = inbound_message_event(
        ES_ACCOUNT, p(MessageSid=SM, AccountSid=TW_ACCOUNT, From="whatsapp:+1415", To="+1812", Body=""), URL, NOW
    )
    assert ev["data"]["body"] == "" and ev["data"]["from"] == "whatsapp:+1415"
    assert_valid(ev)


def test_inbound_ids_are_stable_and_fields_required() -> None:
    a = inbound_message_event(ES_ACCOUNT, inbound_params(), URL, NOW)
    b = inbound_message_event(ES_ACCOUNT, inbound_params(), URL, NOW + 5)
    c = inbound_message_event(ES_ACCOUNT, inbound_params(MessageSid="SM" + "2" * 32), URL, NOW)
    assert a["id"] == b["id"] != c["id"]
    with pytest.raises(CallbackError, match="missing MessageSid or SmsMessageSid or SmsSid, From"):
        inbound_message_event(ES_ACCOUNT, p(AccountSid=TW_ACCOUNT, To="+1"), URL, NOW)


# -- a callback at the wrong endpoint


@pytest.mark.parametrize("status", ["queued", "sent", "delivered", "undelivered", "failed", "read", "receiving"])
def test_status_callback_is_not_an_incoming_message(status: str) -> None:
    with pytest.raises(
        CallbackError, match=rf"^MessageStatus '{status}' is a status callback, not an incoming message"
    ):
        inbound_message_event(ES_ACCOUNT, status_params(status), URL, NOW)


def test_legacy_status_callback_is_not_an_incoming_message() -> None:
    params = status_params("sent")
    del params["MessageStatus"]
    with pytest.raises(CallbackError, match=r"^SmsStatus 'sent' is a status callback, not an incoming message"):
        inbound_message_event(ES_ACCOUNT, params, URL, NOW)
    # a contradictory pair is refused whichever field disagrees
    with pytest.raises(CallbackError, match=r"^SmsStatus 'delivered' is a status callback"):
        inbound_message_event(ES_ACCOUNT, inbound_params(MessageStatus="received", SmsStatus="delivered"), URL, NOW)


def test_incoming_message_with_received_status_is_accepted() -> None:
    for params in (
        inbound_params(),  # SmsStatus=received
        inbound_params(MessageStatus="received"),
        inbound_params(SmsStatus="RECEIVED", MessageStatus="Received"),
        inbound_params(SmsStatus=""),  # blank counts as absent
    ):
        assert inbound_message_event(ES_ACCOUNT, params, URL, NOW)["type"] == INBOUND_TYPE


def test_incoming_message_is_not_a_status_callback() -> None:
    for params in (inbound_params(), inbound_params(MessageStatus="received")):
        with pytest.raises(CallbackError, match=r"^This is an incoming message, not a status callback"):
            message_status_event(ES_ACCOUNT, params, URL, NOW)
    only_sms_message_sid = status_params("received", SmsMessageSid=SM)
    with pytest.raises(CallbackError, match="incoming message"):
        message_status_event(ES_ACCOUNT, only_sms_message_sid, URL, NOW)
    # a status callback reporting "received" without the incoming-message parameters is still ignored
    assert message_status_event(ES_ACCOUNT, status_params("received"), URL, NOW) is None


# -- voice


@pytest.mark.parametrize(
    ("status", "suffix"),
    [
        ("initiated", "initiated"),
        ("ringing", "ringing"),
        ("in-progress", "answered"),
        ("completed", "completed"),
        ("busy", "completed"),
        ("no-answer", "completed"),
        ("failed", "completed"),
        ("canceled", "completed"),
    ],
)
def test_call_statuses_map_to_status_callback_types(status: str, suffix: str) -> None:
    params = call_params(status)
    ev = call_status_event(ES_ACCOUNT, params, URL, NOW)
    assert ev is not None
    assert ev["type"] == f"com.twilio.voice.status-callback.call.{suffix}"
    assert ev["source"] == f"/2010-04-01/Accounts/{TW_ACCOUNT}/Calls/{CA}.json"
    assert ev["id"].startswith("VW") and len(ev["id"]) == 34
    d = ev["data"]
    assert d["sid"] == CA and d["eventSid"] == ev["id"]
    assert ev["time"] == d["timestamp"] == "2025-03-14T16:10:03.000Z"  # from the callback's Timestamp
    assert d["requestDateCreated"] == "Fri, 14 Mar 2025 16:10:03 +0000"
    assert d["request"]["method"] == "POST" and d["request"]["url"] == URL
    assert d["request"]["parameters"]["CallStatus"] == status
    assert d["request"]["parameters"] == {k: v[0] for k, v in params.items()}
    assert d["response"]["responseCode"] == 200
    assert_envelope(ev)
    assert_valid(ev)


def test_queued_call_is_ignored_unknown_status_and_missing_fields_are_errors() -> None:
    assert call_status_event(ES_ACCOUNT, call_params("queued"), URL, NOW) is None
    with pytest.raises(CallbackError, match="Unknown CallStatus 'exploded'"):
        call_status_event(ES_ACCOUNT, call_params("exploded"), URL, NOW)
    params = call_params()
    del params["CallSid"], params["CallStatus"]
    with pytest.raises(CallbackError, match=r"Not a Voice status callback: missing CallSid, CallStatus$"):
        call_status_event(ES_ACCOUNT, params, URL, NOW)


def test_call_ids_are_stable_per_callback_and_distinct_per_sequence() -> None:
    a = call_status_event(ES_ACCOUNT, call_params("completed"), URL, NOW)
    retry = call_status_event(ES_ACCOUNT, call_params("completed"), URL, NOW + 60)
    again = call_status_event(ES_ACCOUNT, call_params("completed", SequenceNumber="4"), URL, NOW)
    ringing = call_status_event(ES_ACCOUNT, call_params("ringing"), URL, NOW)
    assert a is not None and retry is not None and again is not None and ringing is not None
    assert a["id"] == retry["id"]
    assert len({a["id"], again["id"], ringing["id"]}) == 3


def test_repeated_parameters_are_kept_as_lists() -> None:
    ev = call_status_event(ES_ACCOUNT, call_params(StirVerstat=["TN-Validation-Passed-A", "x"]), URL, NOW)
    assert ev is not None and ev["data"]["request"]["parameters"]["StirVerstat"] == ["TN-Validation-Passed-A", "x"]
    assert_valid(ev)


def test_callback_time_falls_back_to_now_on_missing_or_bad_timestamp() -> None:
    assert callback_time(p(Timestamp="not a date"), NOW)[0] == "2025-03-15T00:53:20.123Z"
    assert callback_time({}, NOW) == ("2025-03-15T00:53:20.123Z", "Sat, 15 Mar 2025 00:53:20 +0000")
    assert callback_time(p(Timestamp="Fri, 14 Mar 2025 09:10:03 -0700"), NOW)[0] == "2025-03-14T16:10:03.000Z"


def test_event_id_shape() -> None:
    assert event_id("EZ", "a", "b") == event_id("EZ", "a", "b") != event_id("EZ", "ab", "")
    assert len(event_id("VW", "x")) == 34


# -- whatever Twilio (or anyone) posts: a CallbackError or a valid, serialisable event

_NAMES = st.sampled_from(
    ["MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "AccountSid", "From", "To", "Body", "ErrorCode",
     "NumMedia", "NumSegments", "CallSid", "CallStatus", "Timestamp", "SequenceNumber", "ApiVersion", "Other"]
)  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from(["delivered", "sent", "ringing", "in-progress", "queued", "", "-", "--5", "99999999999999999999",
                     "Fri, 14 Mar 99999 16:10:03 +0000", "Mon, 01 Jan 0001 00:00:00 -2359", "²", "1e3", " 7 "]),
    st.text(max_size=30),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_NAMES, st.lists(_VALUES, min_size=1, max_size=2), max_size=12))
def test_mapping_never_crashes(params: dict[str, list[str]]) -> None:
    for mapper in (message_status_event, inbound_message_event, call_status_event):
        try:
            ev = mapper(ES_ACCOUNT, params, URL, NOW)
        except CallbackError:
            continue
        if ev is None:
            continue
        orjson.dumps(ev)
        assert_valid(ev)
