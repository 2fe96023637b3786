"""Rows → Twilio's 2010-04-01 JSON: every field of Twilio's OpenAPI for the resource, in
its wire type (RFC 2822 dates; ``duration``, ``num_segments``, ``price`` … as strings
where Twilio sends strings)."""

from __future__ import annotations

from typing import Any

import orjson

from .. import clock
from ..store.records import (
    SandboxAddressRow,
    SandboxCallRow,
    SandboxConferenceRow,
    SandboxFeedbackRow,
    SandboxMessageRow,
    SandboxTranscriptionRow,
)

API_VERSION = "2010-04-01"


def _date(value: str | None) -> str | None:
    return clock.rfc2822(value) if value else None


def _str(value: int | None) -> str | None:
    return None if value is None else str(value)


def account_path(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}"


def message(m: SandboxMessageRow) -> dict[str, Any]:
    base = f"{account_path(m.account_sid)}/Messages/{m.sid}"
    return {
        "body": m.body,
        "num_segments": str(m.num_segments),
        "direction": m.direction,
        "from": m.from_number,
        "to": m.to_number,
        "date_updated": _date(m.date_updated),
        "price": m.price,
        "error_message": m.error_message,
        "uri": f"{base}.json",
        "account_sid": m.account_sid,
        "num_media": str(m.num_media),
        "status": m.status,
        "messaging_service_sid": m.messaging_service_sid,
        "sid": m.sid,
        "date_sent": _date(m.date_sent),
        "date_created": _date(m.date_created),
        "error_code": m.error_code,
        "price_unit": m.price_unit,
        "api_version": API_VERSION,
        "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
    }


_CALL_SUBRESOURCES = tuple(
    (name, "".join(p.capitalize() for p in name.split("_")))
    for name in ("feedback", "notifications", "recordings", "payments", "events", "siprec", "streams",
                 "user_defined_message_subscriptions", "user_defined_messages")
)  # fmt: skip


def call(c: SandboxCallRow) -> dict[str, Any]:
    acct = account_path(c.account_sid)
    base = f"{acct}/Calls/{c.sid}"
    uris = {name: f"{base}/{camel}.json" for name, camel in _CALL_SUBRESOURCES}
    uris["feedback_summaries"] = f"{acct}/Calls/FeedbackSummary.json"
    return {
        "sid": c.sid,
        "date_created": _date(c.date_created),
        "date_updated": _date(c.date_updated),
        "parent_call_sid": c.parent_call_sid,
        "account_sid": c.account_sid,
        "to": c.to_number,
        "to_formatted": c.to_formatted,
        "from": c.from_number,
        "from_formatted": c.from_formatted,
        "phone_number_sid": c.phone_number_sid,
        "status": c.status,
        "start_time": _date(c.start_time),
        "end_time": _date(c.end_time),
        "duration": _str(c.duration),
        "price": c.price,
        "price_unit": c.price_unit,
        "direction": c.direction,
        "answered_by": c.answered_by,
        "api_version": API_VERSION,
        "forwarded_from": c.forwarded_from,
        "group_sid": c.group_sid,
        "caller_name": c.caller_name,
        "queue_time": str(c.queue_time),
        "trunk_sid": c.trunk_sid,
        "uri": f"{base}.json",
        "subresource_uris": uris,
    }


def feedback(f: SandboxFeedbackRow) -> dict[str, Any]:
    return {
        "account_sid": f.account_sid,
        "date_created": _date(f.date_created),
        "date_updated": _date(f.date_updated),
        "issues": orjson.loads(f.issues),
        "quality_score": f.quality_score,
        "sid": f.call_sid,
        "uri": f"{account_path(f.account_sid)}/Calls/{f.call_sid}/Feedback.json",
    }


def conference(c: SandboxConferenceRow) -> dict[str, Any]:
    base = f"{account_path(c.account_sid)}/Conferences/{c.sid}"
    return {
        "account_sid": c.account_sid,
        "date_created": _date(c.date_created),
        "date_updated": _date(c.date_updated),
        "api_version": API_VERSION,
        "friendly_name": c.friendly_name,
        "region": c.region,
        "sid": c.sid,
        "status": c.status,
        "uri": f"{base}.json",
        "subresource_uris": {"participants": f"{base}/Participants.json", "recordings": f"{base}/Recordings.json"},
        "reason_conference_ended": c.reason_conference_ended,
        "call_sid_ending_conference": c.call_sid_ending_conference,
    }


def transcription(t: SandboxTranscriptionRow) -> dict[str, Any]:
    return {
        "account_sid": t.account_sid,
        "api_version": API_VERSION,
        "date_created": _date(t.date_created),
        "date_updated": _date(t.date_updated),
        "duration": _str(t.duration),
        # Twilio's OpenAPI types this price as a number (the others are strings)
        "price": None if t.price is None else float(t.price),
        "price_unit": t.price_unit,
        "recording_sid": t.recording_sid,
        "sid": t.sid,
        "status": t.status,
        "transcription_text": t.transcription_text,
        "type": t.type,
        "uri": f"{account_path(t.account_sid)}/Transcriptions/{t.sid}.json",
    }


def address(a: SandboxAddressRow) -> dict[str, Any]:
    return {
        "account_sid": a.account_sid,
        "city": a.city,
        "customer_name": a.customer_name,
        "date_created": _date(a.date_created),
        "date_updated": _date(a.date_updated),
        "friendly_name": a.friendly_name,
        "iso_country": a.iso_country,
        "postal_code": a.postal_code,
        "region": a.region,
        "sid": a.sid,
        "street": a.street,
        "uri": f"{account_path(a.account_sid)}/Addresses/{a.sid}.json",
        "emergency_enabled": a.emergency_enabled,
        "validated": a.validated,
        "verified": a.verified,
        "street_secondary": a.street_secondary,
    }
