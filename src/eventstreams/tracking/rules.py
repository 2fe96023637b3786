"""Segment's rules for one message (pure): what makes it rejected, the messageId, the batch's
``context``/``integrations`` merged in, ``receivedAt`` and the clock-skew correction of ``timestamp``.

Segment drops invalid messages silently; we keep them with the reason (the source's debugger shows
them, and the response counts them). Reasons use Segment's names where it has one
(``no_user_anon_id``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})
MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_EVENTS = 2500
MAX_MESSAGE_ID = 100


@dataclass(frozen=True)
class Checked:
    message: dict[str, Any]
    message_id: str
    type: str | None
    reason: str | None  # None: accepted


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` wins; nested objects merge."""
    out = dict(base)
    for k, v in over.items():
        b = out.get(k)
        out[k] = deep_merge(b, v) if isinstance(b, dict) and isinstance(v, dict) else v
    return out


def merge_batch(item: dict[str, Any], context: Any, integrations: Any) -> dict[str, Any]:
    """The batch's ``context`` (deep) and ``integrations`` (shallow) under the item's own."""
    out = dict(item)
    if isinstance(context, dict) and context:
        own = item.get("context")
        out["context"] = deep_merge(context, own) if isinstance(own, dict) else (own if "context" in item else context)
    if isinstance(integrations, dict) and integrations:
        own = item.get("integrations")
        out["integrations"] = {**integrations, **own} if isinstance(own, dict) else (
            own if "integrations" in item else integrations)  # fmt: skip
    return out


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        d = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    return d if d.tzinfo is not None else d.replace(tzinfo=UTC)


def iso(d: datetime) -> str:
    return d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def _present(value: Any) -> bool:
    return (isinstance(value, str) and value != "") or (isinstance(value, int | float) and not isinstance(value, bool))


_WRAPPER = len(b'[{"data":}]')


def _too_deep(mid: str | None, kind: str | None) -> Checked:
    """A message nested too deeply to write back out: rejected, and stored as a note (it cannot be
    stored as given)."""
    mid = mid if isinstance(mid, str) and 0 < len(mid) < MAX_MESSAGE_ID else f"api-{uuid.uuid4()}"
    note = {"messageId": mid, "type": kind, "note": "not stored: nested more than about 250 levels deep"}
    return Checked(note, mid, kind, "nested_too_deeply")


def check(item: Any, received: datetime, sent_at: Any = None, forced_type: str | None = None) -> Checked:
    """One message, as stored: enriched when accepted, as given (plus a messageId) when rejected."""
    if not isinstance(item, dict):
        try:
            orjson.dumps([{"value": item}])
        except orjson.JSONEncodeError:
            return _too_deep(None, None)
        return Checked({"value": item}, f"api-{uuid.uuid4()}", None, "not_an_object")
    msg = dict(item)
    msg.pop("writeKey", None)  # a credential: never stored with the message
    if forced_type is not None:
        msg["type"] = forced_type
    mid = msg.get("messageId")
    if mid is None or mid == "":
        mid = msg["messageId"] = f"api-{uuid.uuid4()}"
    kind = msg.get("type")
    kind = kind if isinstance(kind, str) else None

    def reject(reason: str) -> Checked:
        return Checked(msg, str(mid)[:MAX_MESSAGE_ID * 2], kind, reason)

    if not isinstance(mid, str) or len(mid) >= MAX_MESSAGE_ID:
        return reject("invalid_message_id")
    if kind not in TYPES:
        return reject("invalid_type")
    try:
        # as deep as it will ever be written: the data of a CloudEvent in a batch of them
        dumped = orjson.dumps([{"data": msg}])
    except orjson.JSONEncodeError:  # parsed (1,024 levels) but deeper than orjson writes (254)
        return _too_deep(mid, kind)
    if len(dumped) - _WRAPPER > MAX_EVENT_BYTES:
        return reject("message_too_large")
    if b"\\u0000" in dumped:  # PostgreSQL text cannot hold NUL; nor can most warehouses
        return reject("nul_character")
    if kind == "alias":
        if not _present(msg.get("userId")) or not _present(msg.get("previousId")):
            return reject("no_user_or_previous_id")
    elif not _present(msg.get("userId")) and not _present(msg.get("anonymousId")):
        return reject("no_user_anon_id")
    if kind == "track" and not (isinstance(msg.get("event"), str) and msg["event"].strip()):
        return reject("no_event")
    if kind == "group" and not _present(msg.get("groupId")):
        return reject("no_group_id")
    # receivedAt, and timestamp corrected for the sender's clock: receivedAt - (sentAt - timestamp)
    msg["receivedAt"] = iso(received)
    given = msg.get("timestamp")
    ts = _parse_time(given)
    if given is not None and ts is None:
        return reject("invalid_timestamp")
    sent = _parse_time(msg.get("sentAt") if msg.get("sentAt") is not None else sent_at)
    if ts is None:
        msg["timestamp"] = msg["receivedAt"]
    else:
        msg["originalTimestamp"] = given
        try:
            msg["timestamp"] = iso(received - (sent - ts)) if sent is not None else iso(ts)
        except OverflowError:  # a skew that lands outside datetime's range
            return reject("invalid_timestamp")
    if sent is not None:
        msg["sentAt"] = iso(sent)
    return Checked(msg, mid, kind, None)
