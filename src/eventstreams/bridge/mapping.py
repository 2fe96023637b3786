"""Twilio callbacks → canonical Event Streams CloudEvents (pure, no I/O).

Three callback shapes, each form-encoded with Twilio's PascalCase names:

* Messaging ``StatusCallback`` (``MessageSid``, ``MessageStatus``, ``AccountSid``,
  ``From``, ``To``, ``ErrorCode``, ``ApiVersion``, legacy ``SmsSid``/``SmsStatus``, …)
  → ``com.twilio.messaging.message.<status>`` (``Messaging.MessageStatus``).
* Inbound message webhook ("A message comes in": ``MessageSid``, ``Body``,
  ``NumMedia``, ``FromCity``, …) → ``com.twilio.messaging.inbound-message.received``
  (``Messaging.InboundMessageV1``).
* Voice call status callback (``CallSid``, ``CallStatus``, ``SequenceNumber``,
  ``Timestamp``, …) → ``com.twilio.voice.status-callback.call.<event>``
  (``Voice.WebhookEvent``; the callback is kept verbatim in ``request.parameters``).

Every event id is derived from the callback itself (account, type, SIDs and
status), so a retry of the same callback gets the same id and the publisher's
dedupe window drops it. Statuses Twilio reports but Event Streams has no type
for (``sending``, ``accepted``, ``queued`` calls, …) map to ``None``: answered
200 and not published. Anything else unexpected raises :class:`CallbackError`,
including a callback posted to the wrong endpoint (a status callback to the
inbound one, an incoming message to the status one).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from .. import clock

CallbackParams = Mapping[str, Sequence[str]]

API_VERSION = "2010-04-01"
MESSAGE_TYPE = "com.twilio.messaging.message."
INBOUND_TYPE = "com.twilio.messaging.inbound-message.received"
CALL_TYPE = "com.twilio.voice.status-callback.call."

# MessageStatus → event type suffix; the rest of Twilio's statuses have no Event Streams type.
MESSAGE_EVENTS = {s: s for s in ("queued", "sent", "delivered", "undelivered", "failed", "read")}
MESSAGE_IGNORED = frozenset(
    {"sending", "accepted", "scheduled", "canceled", "receiving", "received", "partially_delivered"}
)
# CallStatus → event type suffix. Final statuses other than completed are still call.completed
# (the status itself is in request.parameters.CallStatus).
CALL_EVENTS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
    "answered": "answered",
    "completed": "completed",
    "busy": "completed",
    "no-answer": "completed",
    "failed": "completed",
    "canceled": "completed",
}
CALL_IGNORED = frozenset({"queued"})

# Callback parameter → Messaging.InboundMessageV1 field (strings).
_INBOUND_TEXT = {
    "Body": "body",
    "MessagingServiceSid": "messagingServiceSid",
    "FromCity": "fromCity",
    "FromState": "fromState",
    "FromZip": "fromZip",
    "FromCountry": "fromCountry",
    "ToCity": "toCity",
    "ToState": "toState",
    "ToZip": "toZip",
    "ToCountry": "toCountry",
    "OptOutType": "optOutType",
    "ReferralCtwaClid": "referralCtwaClid",
    "Mcc": "mcc",
    "Mnc": "mnc",
}
_INBOUND_INT = {"NumMedia": "numMedia", "NumSegments": "numSegments"}
# Callback parameter → Messaging.MessageStatus field.
_STATUS_TEXT = {
    "MessagingServiceSid": "messagingServiceSid",
    "Body": "body",
    "ErrorMessage": "errorMessage",
    "RawDlrDoneDate": "rawDlrDoneDate",
    "Mcc": "mcc",
    "Mnc": "mnc",
}
_STATUS_INT = {"ErrorCode": "errorCode", "NumSegments": "numberOfSegments"}
# Parameters of the incoming-message webhook that status callbacks do not carry.
_INBOUND_ONLY = ("SmsMessageSid", "NumMedia")


_INT = re.compile(r"^-?[0-9]{1,9}$")


class CallbackError(ValueError):
    """The callback is not a shape the bridge understands (answered 400 with this message)."""


def event_id(prefix: str, *parts: str) -> str:
    """``prefix`` + 32 hex of SHA-256 over ``parts``: the same callback gives the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return prefix + digest[:32]


def first(params: CallbackParams, name: str) -> str | None:
    """The first non-empty value of ``name`` (Twilio sends blank values for some optional fields)."""
    for value in params.get(name, ()):
        if value != "":
            return value
    return None


def _pick(params: CallbackParams, *names: str) -> str | None:
    for name in names:
        value = first(params, name)
        if value is not None:
            return value
    return None


def _require(params: CallbackParams, what: str, fields: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    missing: list[str] = []
    for field, names in fields.items():
        value = _pick(params, *names)
        if value is None:
            missing.append(" or ".join(names))
        else:
            out[field] = value
    if missing:
        raise CallbackError(f"Not a {what}: missing {', '.join(missing)}")
    return out


def _integer(value: str | None) -> int | None:
    """A plain decimal integer that fits 32 bits, else None (the field is left out)."""
    if value is None or _INT.match(value.strip()) is None:
        return None
    return int(value.strip())


def callback_time(params: CallbackParams, now: float) -> tuple[str, str]:
    """(ISO 8601 UTC with ms, RFC 2822) of the callback's ``Timestamp``, or of ``now`` without one."""
    raw = first(params, "Timestamp")
    when: datetime | None = None
    if raw is not None:
        try:
            when = parsedate_to_datetime(raw)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            when = when.astimezone(UTC)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is not None and not 1970 <= when.year <= 9998:
            when = None
    if when is None:
        when = datetime.fromtimestamp(now, UTC)
    ts = when.timestamp()
    return clock.iso_ms(ts), when.strftime("%a, %d %b %Y %H:%M:%S +0000")


def _cloudevent(type_: str, id_: str, source: str, time_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": type_,
        "source": source,
        "id": id_,
        "time": time_,
        "datacontenttype": "application/json",
        "data": data,
    }


def message_status_event(account_sid: str, params: CallbackParams, url: str, now: float) -> dict[str, Any] | None:
    """A Messaging StatusCallback as ``com.twilio.messaging.message.<status>``, or None for a
    status Event Streams has no type for. ``account_sid`` is the eventstreams account (id scope)."""
    got = _require(
        params,
        "Messaging status callback",
        {
            "messageSid": ("MessageSid", "SmsSid"),
            "messageStatus": ("MessageStatus", "SmsStatus"),
            "accountSid": ("AccountSid",),
            "from": ("From",),
            "to": ("To",),
        },
    )
    status = got["messageStatus"].lower()
    if status == "received" and any(first(params, name) is not None for name in _INBOUND_ONLY):
        # An incoming-message webhook pointed here by mistake: ignoring it would hide the
        # misconfiguration while every incoming message is lost; a 400 shows in Twilio's debugger.
        raise CallbackError(
            "This is an incoming message, not a status callback (incoming message webhooks go to /messaging/inbound)"
        )
    if status in MESSAGE_IGNORED:
        return None
    if status not in MESSAGE_EVENTS:
        raise CallbackError(f"Unknown MessageStatus {got['messageStatus'][:40]!r}")
    type_ = MESSAGE_TYPE + MESSAGE_EVENTS[status]
    time_, _ = callback_time(params, now)
    data: dict[str, Any] = {
        "messageSid": got["messageSid"],
        "timestamp": time_,
        "accountSid": got["accountSid"],
        "eventName": type_,
        "apiVersion": first(params, "ApiVersion") or API_VERSION,
        "from": got["from"],
        "to": got["to"],
        "messageStatus": status.upper(),
        "statusCallBackUrl": url,
    }
    for name, field in _STATUS_TEXT.items():
        value = first(params, name)
        if value is not None:
            data[field] = value
    for name, field in _STATUS_INT.items():
        number = _integer(first(params, name))
        if number is not None:
            data[field] = number
    id_ = event_id("EZ", account_sid, type_, got["accountSid"], got["messageSid"], status)
    source = f"/2010-04-01/Accounts/{got['accountSid']}/Messages/{got['messageSid']}.json"
    return _cloudevent(type_, id_, source, time_, data)


def inbound_message_event(account_sid: str, params: CallbackParams, url: str, now: float) -> dict[str, Any]:
    """An incoming-message webhook as ``com.twilio.messaging.inbound-message.received``.

    A status callback carries the same SIDs and numbers, so without this check one
    posted here by mistake would be published as an incoming message. Only the status
    ``received`` is accepted: incoming webhooks send ``SmsStatus=received`` and, in many
    captured requests, ``MessageStatus=received`` too."""
    for name in ("MessageStatus", "SmsStatus"):
        value = first(params, name)
        if value is not None and value.lower() != "received":
            raise CallbackError(
                f"{name} {value[:40]!r} is a status callback, not an incoming message"
                " (status callbacks go to /messaging/status)"
            )
    got = _require(
        params,
        "incoming message webhook",
        {
            "messageSid": ("MessageSid", "SmsMessageSid", "SmsSid"),
            "accountSid": ("AccountSid",),
            "from": ("From",),
            "to": ("To",),
        },
    )
    time_, _ = callback_time(params, now)
    data: dict[str, Any] = {
        "messageSid": got["messageSid"],
        "timestamp": time_,
        "accountSid": got["accountSid"],
        "eventName": INBOUND_TYPE,
        "from": got["from"],
        "to": got["to"],
    }
    body = params.get("Body")
    if body:
        data["body"] = body[0]  # an empty body (MMS without text) is still the body
    for name, field in _INBOUND_TEXT.items():
        value = first(params, name)
        if value is not None and field not in data:
            data[field] = value
    for name, field in _INBOUND_INT.items():
        number = _integer(first(params, name))
        if number is not None:
            data[field] = number
    id_ = event_id("EZ", account_sid, INBOUND_TYPE, got["accountSid"], got["messageSid"])
    source = f"/2010-04-01/Accounts/{got['accountSid']}/Messages/{got['messageSid']}.json"
    return _cloudevent(INBOUND_TYPE, id_, source, time_, data)


def _parameters(params: CallbackParams) -> dict[str, Any]:
    """The callback verbatim: one string per name, a list for repeated names."""
    return {name: values[0] if len(values) == 1 else list(values) for name, values in params.items() if values}


def call_status_event(
    account_sid: str, params: CallbackParams, url: str, now: float, response_type: str = "text/plain"
) -> dict[str, Any] | None:
    """A Voice status callback as ``com.twilio.voice.status-callback.call.<event>``, or None for
    ``queued``. ``request`` holds the callback as Twilio sent it; ``response`` what the bridge answered."""
    got = _require(
        params,
        "Voice status callback",
        {"sid": ("CallSid",), "callStatus": ("CallStatus",), "accountSid": ("AccountSid",)},
    )
    status = got["callStatus"].lower()
    if status in CALL_IGNORED:
        return None
    if status not in CALL_EVENTS:
        raise CallbackError(f"Unknown CallStatus {got['callStatus'][:40]!r}")
    type_ = CALL_TYPE + CALL_EVENTS[status]
    time_, rfc = callback_time(params, now)
    # Not Timestamp: the call, its status and the callback's sequence number identify the event.
    id_ = event_id(
        "VW", account_sid, type_, got["accountSid"], got["sid"], status, first(params, "SequenceNumber") or ""
    )
    data: dict[str, Any] = {
        "sid": got["sid"],
        "eventSid": id_,
        "timestamp": time_,
        "requestDateCreated": rfc,
        "request": {"method": "POST", "url": url, "parameters": _parameters(params)},
        "response": {
            "responseCode": 200,
            "contentType": response_type,
            "responseBody": "",
            "dateCreated": datetime.fromtimestamp(now, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
        },
    }
    source = f"/2010-04-01/Accounts/{got['accountSid']}/Calls/{got['sid']}.json"
    return _cloudevent(type_, id_, source, time_, data)
