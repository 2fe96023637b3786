"""Segment sink: how a CloudEvent becomes a Segment track call, and batching (see the package doc)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from ... import __version__
from ...outcome import CODE_DROPPED, Outcome, OutcomeKind

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
BODY_HEAD = b'{"batch":['
BODY_TAIL = b'],"sentAt":"'
_BATCH_OVERHEAD = len(BODY_HEAD) + len(BODY_TAIL) + _SENT_AT_LEN + len(b'"}')


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


async def builtin_schema_lookup(schema_id: str, version: int) -> dict[str, Any] | None:
    """Schema lookup over the built-in catalogue only (used when the context has none).

    Parsed per call, a fresh dict each time: a sender caches what it derives from a
    schema (its identity fields), so each version is looked up once per sender."""
    from ... import catalog  # at call time: the catalogue is only needed once a schema is asked for

    row = catalog.builtin_schema(schema_id, version)
    return None if row is None else json.loads(row.document)


def path_label(path: tuple[str, ...]) -> str:
    return ".".join(path)


def value_at(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = data
    for name in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(name)
    return node


def find_phone(data: Mapping[str, Any], fields: Sequence[tuple[str, ...]]) -> tuple[str | None, list[str]]:
    """The first field of ``fields`` (identityType paths) holding a phone number, normalised; or None
    and why each field was passed over."""
    problems: list[str] = []
    for path in fields:
        value = value_at(data, path)
        label = path_label(path)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(f"field {label!r} is empty")
        elif not isinstance(value, str):
            problems.append(f"field {label!r} is not a string")
        elif (phone := normalize_phone(value)) is None:
            problems.append(f"field {label!r} is not a phone number ({value[:40]!r})")
        else:
            return phone, problems
    return None, problems


def track_call(doc: Mapping[str, Any], event_type: str, event_id: str, phone: str | None) -> dict[str, Any]:
    """The Segment ``track`` call of a CloudEvent (see the package doc). Without a phone it has no
    identity: the sink does not send such a call, the events warehouse stores it all the same."""
    data = doc.get("data")
    properties = data if isinstance(data, dict) else {}
    message_id = event_id
    if len(message_id) >= MAX_MESSAGE_ID:
        message_id = "es-" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()
    call: dict[str, Any] = {"type": "track", "event": event_type, "messageId": message_id}
    if phone is not None:
        call["anonymousId"] = anonymous_id(phone)
    call["properties"] = properties
    when = doc.get("time") or properties.get("timestamp")
    if isinstance(when, str) and when:
        call["originalTimestamp"] = when
        call["timestamp"] = when
    context: dict[str, Any] = {}
    if phone is not None:
        context["externalIds"] = [{"id": phone, "type": "phone", "collection": "users", "encoding": "none"}]
    context["library"] = dict(LIBRARY)
    call["context"] = context
    call["integrations"] = {}
    return call


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


def sent_at() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def loads(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)  # e.g. integers beyond 64 bits; raises ValueError if not JSON


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: e.g. integers beyond 64 bits
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def not_sent(message: str) -> Outcome:
    return Outcome(OutcomeKind.DROPPED, message=f"not sent: {message}", code=NOT_SENT_CODE, retryable=False)


def no_identity(event_type: str, why: str) -> Outcome:
    # Segment would drop it silently; we skip it visibly (delivery log), without alert or dead letter.
    return Outcome(OutcomeKind.SKIPPED, message=f"not sent: Segment requires an identity; {event_type}: {why}")
