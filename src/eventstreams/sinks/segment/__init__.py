"""Segment sink: every CloudEvent becomes a Segment ``track`` call (reference §11.3).

Events are sent with Segment's HTTP Tracking API, ``POST <endpoint>/v1/batch``,
authenticated with HTTP Basic (the write key as user name, empty password),
body ``{"batch": [...], "sentAt": "<now>"}``, ``Content-Type: application/json``.
Any Segment-compatible collector works (RudderStack, Jitsu, ...).

Configuration: ``write_key`` (required) and ``endpoint`` (optional base URL;
default ``ctx.extra["segment_endpoint"]``, i.e. the ``EVENTSTREAMS_SEGMENT_ENDPOINT``
setting, ``https://api.segment.io``). EU workspaces use
``https://events.eu1.segmentapis.com``. ``/v1/batch`` is appended to the base URL
(unless it already ends with ``/v1/batch``; a base ending in ``/v1`` gets ``/batch``).

Mapping of one CloudEvent (like the sample in Twilio's Segment quickstart)::

    {"type": "track",
     "event": <CloudEvent type>,
     "messageId": <CloudEvent id>,
     "anonymousId": <derived from the phone, see below>,
     "properties": <CloudEvent data, unchanged>,
     "originalTimestamp": <CloudEvent time>,
     "timestamp": <CloudEvent time>,
     "context": {"externalIds": [{"id": <phone>, "type": "phone", "collection": "users", "encoding": "none"}],
                 "library": {"name": "eventstreams", "version": <eventstreams version>}},
     "integrations": {}}

Choices where Twilio documents nothing (keep ``docs/`` in sync):

* **Identity.** The phone is read from the ``data`` field that the event's
  schema version marks ``"identityType": "phone"`` (``to`` in
  ``Messaging.MessageStatus``, ``from`` in ``Messaging.InboundMessageV1``;
  nested object properties are searched too, first non-empty field in schema
  order wins). The schema id and version are the last two path segments of the
  event's ``dataschema`` URL (``.../<SchemaId>/<version>``, ``.json`` allowed)
  and the document comes from ``ctx.extra["schema_lookup"]`` (cached per schema
  version; without a lookup the built-in catalogue is used).
* **Phone normalisation** (:func:`normalize_phone`): surrounding spaces, a channel
  prefix ``whatsapp:``/``sms:``/``mms:``/``tel:`` and the separators
  ``space - ( ) .`` are removed, so ``"+ 1 (812) 609-7345"`` and
  ``"whatsapp:+18126097345"`` both become ``+18126097345``. The result must be
  ``+`` (optional) followed by 3 to 15 digits; anything else (e.g. a
  ``messenger:`` id) is not a phone and the event is not sent. ``properties``
  keep the original value.
* **anonymousId** (:func:`anonymous_id`): the decimal string of the first 8
  bytes (big-endian, unsigned) of SHA-256 over the UTF-8 normalised phone, e.g.
  ``+14155550100`` → a number of up to 20 digits like the quickstart sample's
  ``"13460360364754414896"``. Deterministic, so every event about one phone
  lands on one Segment profile, and no ``userId`` is set.
* **Events without an identity are not sent** (Segment would drop them with
  ``no_user_anon_id``; Twilio silently suppresses them). Instead of hiding
  them, the event's outcome is ``SKIPPED`` (no error code, never retried) with
  a message starting ``not sent: Segment requires an identity; ...`` that names
  the reason (no ``identityType`` field in the schema, field empty, not a phone,
  no or unknown ``dataschema``), so it shows in the delivery log as
  ``skipped``. It is not an error: no dead letter and no alert, since
  replaying the event would skip it again.
* **Oversize events**: a track call whose compact JSON exceeds
  :data:`MAX_EVENT_BYTES` (32 KiB, Segment's per-event limit) is not sent:
  ``DROPPED``, code **91303**, not retried, message ``not sent: ... bytes``.
* **Batches** hold at most :data:`MAX_BATCH_EVENTS` (2,500) calls and at most
  :data:`MAX_BATCH_BYTES` (500,000) bytes of request body, ``sentAt`` included
  (500 decimal kB: under Segment's 500 KB whichever way a KB is counted).
  Batches of one ``send`` go out concurrently (up to ``ctx.max_in_flight``);
  every event of a batch gets the batch's outcome.
* ``messageId`` is the CloudEvent id (stable across retries: Segment dedupes
  on it). Segment wants it under 100 characters; a longer id is replaced by
  ``"es-" + sha256(id).hex()``.
* ``timestamp``/``originalTimestamp`` fall back to ``data.timestamp`` when the
  event has no ``time``, and are omitted if neither exists (Segment then uses
  its receive time). ``sentAt`` is taken right before each request (after any
  throttle wait), UTC with milliseconds.
* Responses go through :func:`~eventstreams.outcome.classify_http`:
  2xx delivered; 429 and 5xx retried (``Retry-After`` honoured; a 429 with only
  Segment's ``X-RateLimit-Reset`` seconds uses that instead); other 4xx (e.g.
  400 for invalid JSON or an oversize body) are not retried.

Outbound safety is :mod:`eventstreams.sinks.http`'s client policy: the
endpoint (the sink's own or the operator's default) passes the SSRF policy at
creation and on every connection, redirects are not followed, proxies and
``.netrc`` are ignored and no cookies are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..spec import Field, SinkType
from .mapping import (
    DEFAULT_ENDPOINT,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    NOT_SENT_CODE,
    SchemaLookup,
    anonymous_id,
    batch_url,
    builtin_schema_lookup,
    find_phone,
    identity_fields,
    normalize_phone,
    parse_dataschema,
    split_batches,
    track_call,
)
from .sender import SegmentSender

__all__ = [
    "DEFAULT_ENDPOINT",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "MAX_EVENT_BYTES",
    "NOT_SENT_CODE",
    "SINK_TYPE",
    "SchemaLookup",
    "SegmentSender",
    "anonymous_id",
    "batch_url",
    "builtin_schema_lookup",
    "find_phone",
    "identity_fields",
    "normalize_phone",
    "parse_dataschema",
    "split_batches",
    "track_call",
]


# -- the sink type -----------------------------------------------------------------------------


def _destination(cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    return str(cfg.get("endpoint") or defaults.get("segment_endpoint") or DEFAULT_ENDPOINT)


SINK_TYPE = SinkType(
    name="segment",
    description="Segment track calls (HTTP Tracking API /v1/batch), one per event with a phone identity.",
    fields=(
        Field(
            "write_key", "string", "The Segment source's write key; masked in responses.", required=True, secret=True
        ),
        Field(
            "endpoint",
            "url",
            "Base URL of a Segment-compatible collector (default: the server's EVENTSTREAMS_SEGMENT_ENDPOINT,"
            " https://api.segment.io).",
            extension=True,
        ),
    ),
    sender=SegmentSender,
    destination=_destination,
)
