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

import asyncio
import base64
import dataclasses
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import orjson
from yarl import URL

from .. import __version__
from ..netpolicy import AsyncResolver
from ..outcome import CODE_DROPPED, Outcome, OutcomeKind, classify_http
from .base import OutgoingEvent, Pacer, SinkContext, SinkSender
from .http import USER_AGENT, HttpClient, outcome_for_exception, read_excerpt
from .spec import Field, SinkType

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
    "identity_fields",
    "normalize_phone",
    "parse_dataschema",
    "split_batches",
]

#: ``await lookup(schema_id, version)`` -> the JSON Schema document, or ``None``.
SchemaLookup = Callable[[str, int], Awaitable[dict[str, Any] | None]]

DEFAULT_ENDPOINT = "https://api.segment.io"
#: Segment's limit for one call inside a batch (compact JSON bytes).
MAX_EVENT_BYTES = 32 * 1024
#: Largest request body sent to ``/v1/batch`` (Segment: 500 KB).
MAX_BATCH_BYTES = 500_000
#: Most calls per batch (Segment: 2,500).
MAX_BATCH_EVENTS = 2500
#: Error code of oversize events, which are not sent ("dropped"). Events without an identity are
#: skipped instead, without a code.
NOT_SENT_CODE = CODE_DROPPED
#: Segment wants ``messageId`` under this many characters.
MAX_MESSAGE_ID = 100

LIBRARY = {"name": "eventstreams", "version": __version__}

_PHONE = re.compile(r"\+?[0-9]{3,15}")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_PHONE_CHANNELS = ("whatsapp", "sms", "mms", "tel")
_SENT_AT_LEN = len("2026-03-29T04:00:58.120Z")
_BODY_HEAD = b'{"batch":['
_BODY_TAIL = b'],"sentAt":"'
_BATCH_OVERHEAD = len(_BODY_HEAD) + len(_BODY_TAIL) + _SENT_AT_LEN + len(b'"}')


# -- identity ----------------------------------------------------------------------------------


def parse_dataschema(url: str) -> tuple[str, int] | None:
    """``(schema_id, version)`` from ``.../<SchemaId>/<version>[.json]``, or ``None``."""
    path = urlsplit(url).path.rstrip("/")
    parts = path.rsplit("/", 2)
    if len(parts) < 3 or not parts[1]:
        return None
    version = parts[2].removesuffix(".json")
    if not (version.isascii() and version.isdigit()):
        return None
    return parts[1], int(version)


def identity_fields(schema: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    """Paths of the properties a JSON Schema marks ``"identityType": "phone"``, in schema order.

    Nested object properties are searched too (depth-first); each path is the
    tuple of property names from ``data`` down.
    """
    found: list[tuple[str, ...]] = []

    def walk(node: Mapping[str, Any], prefix: tuple[str, ...], depth: int) -> None:
        props = node.get("properties")
        if not isinstance(props, Mapping) or depth > 16:
            return
        for name, sub in props.items():
            if not isinstance(name, str) or not isinstance(sub, Mapping):
                continue
            if sub.get("identityType") == "phone":
                found.append((*prefix, name))
            walk(sub, (*prefix, name), depth + 1)

    walk(schema, (), 0)
    return tuple(found)


def normalize_phone(value: str) -> str | None:
    """The phone number in ``value`` as used for identity (see module doc), or ``None``."""
    text = value.strip()
    channel, sep, rest = text.partition(":")
    if sep and channel.strip().lower() in _PHONE_CHANNELS:
        text = rest
    compact = _PHONE_SEPARATORS.sub("", text)
    return compact if _PHONE.fullmatch(compact) else None


def anonymous_id(phone: str) -> str:
    """Deterministic Segment ``anonymousId`` for a normalised phone: the decimal
    value of the first 8 bytes (big-endian) of SHA-256 over its UTF-8 bytes."""
    return str(int.from_bytes(hashlib.sha256(phone.encode("utf-8")).digest()[:8], "big"))


@lru_cache(maxsize=1)
def _builtin_schemas() -> dict[tuple[str, int], dict[str, Any]]:
    from ..catalog import builtin_schema_versions

    return {(row.schema_id, row.version): json.loads(row.document) for row in builtin_schema_versions()}


async def builtin_schema_lookup(schema_id: str, version: int) -> dict[str, Any] | None:
    """Schema lookup over the built-in catalogue only (used when the context has none)."""
    return _builtin_schemas().get((schema_id, version))


def _path_label(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _value_at(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = data
    for name in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(name)
    return node


# -- batching ----------------------------------------------------------------------------------


def split_batches(
    sizes: Sequence[int], max_bytes: int = MAX_BATCH_BYTES, max_events: int = MAX_BATCH_EVENTS
) -> list[range]:
    """Split items of the given serialised sizes into consecutive batches whose
    ``/v1/batch`` body stays within ``max_bytes`` and ``max_events``."""
    batches: list[range] = []
    start = 0
    size = _BATCH_OVERHEAD
    for i, item in enumerate(sizes):
        add = item + (1 if i > start else 0)  # the comma between items
        if i > start and (size + add > max_bytes or i - start >= max_events):
            batches.append(range(start, i))
            start, size, add = i, _BATCH_OVERHEAD, item
        size += add
    if start < len(sizes):
        batches.append(range(start, len(sizes)))
    return batches


def batch_url(endpoint: str) -> str:
    """``<endpoint>/v1/batch`` (see module doc); ``ValueError`` for a non-HTTP(S) URL."""
    parts = urlsplit(endpoint)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"segment endpoint must be an http(s) URL with a host, not {endpoint!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("segment endpoint must not carry credentials (the write key is the credential)")
    base = endpoint.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if base.endswith("/v1/batch"):
        return base
    if base.endswith("/v1"):
        return base + "/batch"
    return base + "/v1/batch"


def _sent_at() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _loads(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)  # e.g. integers beyond 64 bits; raises ValueError if not JSON


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: e.g. integers beyond 64 bits
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _not_sent(message: str) -> Outcome:
    return Outcome(OutcomeKind.DROPPED, message=f"not sent: {message}", code=NOT_SENT_CODE, retryable=False)


def _no_identity(event_type: str, why: str) -> Outcome:
    # Segment would drop it silently; we skip it visibly (delivery log), without alert or dead letter.
    return Outcome(OutcomeKind.SKIPPED, message=f"not sent: Segment requires an identity; {event_type}: {why}")


# -- the sender --------------------------------------------------------------------------------


class SegmentSender(SinkSender):
    """Delivers events to a ``segment`` sink as batched ``track`` calls (see the module doc).

    Configuration keys: ``write_key`` (string) and optional ``endpoint`` (base
    URL). Invalid configuration raises ``ValueError``. ``schema_lookup``
    overrides ``ctx.extra["schema_lookup"]``; ``resolver`` replaces system DNS
    for connect-time lookups (tests).
    """

    def __init__(
        self,
        ctx: SinkContext,
        *,
        schema_lookup: SchemaLookup | None = None,
        resolver: AsyncResolver | None = None,
    ) -> None:
        config = ctx.configuration
        write_key = config.get("write_key")
        if not isinstance(write_key, str) or not write_key:
            raise ValueError("segment sink configuration needs a 'write_key'")
        endpoint = config.get("endpoint") or ctx.extra.get("segment_endpoint") or DEFAULT_ENDPOINT
        if not isinstance(endpoint, str):
            raise ValueError(f"segment sink endpoint must be a string, not {endpoint!r}")
        self._http = HttpClient(
            allow_private=ctx.allow_private, timeout=ctx.timeout, max_in_flight=ctx.max_in_flight, resolver=resolver
        )
        lookup = schema_lookup or ctx.extra.get("schema_lookup") or builtin_schema_lookup
        if not callable(lookup):
            raise ValueError("schema_lookup must be an async callable")

        self._ctx = ctx
        self.url = batch_url(endpoint)
        self._authorization = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode("ascii")
        self._lookup: SchemaLookup = lookup
        self._identity: dict[tuple[str, int], tuple[tuple[str, ...], ...]] = {}
        self._refusal = self._http.refusal(self.url)
        self._slots = asyncio.Semaphore(ctx.max_in_flight)

    # -- public API ------------------------------------------------------------------------

    async def send(self, events: Sequence[OutgoingEvent], pacer: Pacer) -> list[Outcome]:
        """Deliver ``events``; one outcome per event, in order. Never raises for delivery failures."""
        if not events:
            return []
        outcomes: list[Outcome | None] = [None] * len(events)
        parsed: list[dict[str, Any] | None] = []
        for i, event in enumerate(events):
            try:
                doc = _loads(event.payload)
            except (ValueError, RecursionError) as exc:
                doc = None
                outcomes[i] = _not_sent(f"event payload is not valid JSON ({type(exc).__name__})")
            if doc is not None and not isinstance(doc, dict):
                doc, outcomes[i] = None, _not_sent("event payload is not a JSON object")
            parsed.append(doc)

        failed_lookups = await self._load_schemas(parsed)
        items: list[tuple[int, bytes]] = []
        for i, (event, doc) in enumerate(zip(events, parsed, strict=True)):
            if doc is None:
                continue
            try:
                call = self._track(event, doc, failed_lookups)
                if isinstance(call, Outcome):
                    outcomes[i] = call
                    continue
                body = _dumps(call)
            except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on deeply nested data; never raise
                outcomes[i] = Outcome.internal(f"cannot build track call: {type(exc).__name__}: {exc}")
                continue
            if len(body) > MAX_EVENT_BYTES:
                outcomes[i] = _not_sent(
                    f"the Segment track call is {len(body)} bytes; Segment accepts at most {MAX_EVENT_BYTES}"
                    " bytes per event"
                )
                continue
            items.append((i, body))

        groups = [[items[j] for j in batch] for batch in split_batches([len(body) for _, body in items])]
        results = await asyncio.gather(*(self._deliver([body for _, body in group], pacer) for group in groups))
        for group, outcome in zip(groups, results, strict=True):
            for i, _ in group:
                outcomes[i] = outcome
        return [outcome if outcome is not None else Outcome.internal("no outcome") for outcome in outcomes]

    async def close(self) -> None:
        """Close the connection pool (a later ``send`` opens a new one)."""
        await self._http.close()

    # -- mapping ---------------------------------------------------------------------------

    async def _load_schemas(self, parsed: Sequence[dict[str, Any] | None]) -> dict[tuple[str, int], str]:
        """Fill the identity cache for every schema version in ``parsed``; return failed lookups."""
        wanted: set[tuple[str, int]] = set()
        for doc in parsed:
            if doc is None:
                continue
            schema = doc.get("dataschema")
            key = parse_dataschema(schema) if isinstance(schema, str) else None
            if key is not None and key not in self._identity:
                wanted.add(key)
        failed: dict[tuple[str, int], str] = {}
        for key in sorted(wanted):
            try:
                document = await self._lookup(*key)
            except Exception as exc:  # noqa: BLE001 - a store hiccup: retry the events, do not raise
                failed[key] = f"{type(exc).__name__}: {exc}"
                continue
            if document is None:
                failed[key] = ""  # unknown schema version: not cached, may be registered later
                continue
            self._identity[key] = identity_fields(document)
        return failed

    def _track(
        self, event: OutgoingEvent, doc: dict[str, Any], failed_lookups: Mapping[tuple[str, int], str]
    ) -> dict[str, Any] | Outcome:
        raw_type = doc.get("type")
        event_type = raw_type if isinstance(raw_type, str) and raw_type else event.type
        data = doc.get("data")
        schema = doc.get("dataschema")
        if not isinstance(schema, str) or not schema:
            return _no_identity(event_type, "the event has no dataschema to find its identityType field")
        key = parse_dataschema(schema)
        if key is None:
            return _no_identity(event_type, f"dataschema {schema!r} does not end in /<SchemaId>/<version>")
        if key in failed_lookups:
            error = failed_lookups[key]
            if error:
                return Outcome.internal(f"schema lookup for {key[0]} v{key[1]} failed: {error}")
            return _no_identity(event_type, f"schema {key[0]} version {key[1]} is unknown")
        fields = self._identity[key]
        if not fields:
            return _no_identity(event_type, f"schema {key[0]} v{key[1]} has no identityType: phone field")
        if not isinstance(data, dict):
            return _no_identity(event_type, "the event has no data object")
        phone: str | None = None
        problems: list[str] = []
        for path in fields:
            value = _value_at(data, path)
            label = _path_label(path)
            if value is None or (isinstance(value, str) and not value.strip()):
                problems.append(f"field {label!r} is empty")
            elif not isinstance(value, str):
                problems.append(f"field {label!r} is not a string")
            elif (phone := normalize_phone(value)) is None:
                problems.append(f"field {label!r} is not a phone number ({value[:40]!r})")
            else:
                break
        if phone is None:
            return _no_identity(event_type, "; ".join(problems))

        message_id = str(doc.get("id") or event.id)
        if len(message_id) >= MAX_MESSAGE_ID:
            message_id = "es-" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()
        call: dict[str, Any] = {
            "type": "track",
            "event": event_type,
            "messageId": message_id,
            "anonymousId": anonymous_id(phone),
            "properties": data,
        }
        when = doc.get("time") or data.get("timestamp")
        if isinstance(when, str) and when:
            call["originalTimestamp"] = when
            call["timestamp"] = when
        call["context"] = {
            "externalIds": [{"id": phone, "type": "phone", "collection": "users", "encoding": "none"}],
            "library": dict(LIBRARY),
        }
        call["integrations"] = {}
        return call

    # -- HTTP --------------------------------------------------------------------------------

    async def _deliver(self, calls: list[bytes], pacer: Pacer) -> Outcome:
        async with self._slots:
            await pacer.wait(len(calls))
            outcome = await self._attempt(calls)
            pacer.observe(outcome)
        return outcome

    async def _attempt(self, calls: list[bytes]) -> Outcome:
        if self._refusal is not None:
            return self._refusal
        body = b"".join((_BODY_HEAD, b",".join(calls), _BODY_TAIL, _sent_at().encode("ascii"), b'"}'))
        headers = {
            "Authorization": self._authorization,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            async with self._http.request("POST", URL(self.url), data=body, headers=headers) as resp:
                excerpt = await read_excerpt(resp)
                outcome = classify_http(resp.status, resp.headers, excerpt)
                reset = resp.headers.get("X-RateLimit-Reset")
                if resp.status == 429 and outcome.retry_after is None and reset and reset.strip().isdigit():
                    outcome = dataclasses.replace(outcome, retry_after=reset.strip())
                return outcome
        except Exception as exc:  # noqa: BLE001 - send() must not raise for one bad request
            return outcome_for_exception(exc, self._ctx.timeout, "segment endpoint")


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
