"""Events in: validate CloudEvents against the catalogue, store them with
their deliveries in one transaction, and wake the dispatcher.

Batches are per event, not all-or-nothing: every valid event of a request is
stored, every invalid one is reported with its index and reason.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from .. import clock
from ..catalog import schema_url
from ..catalog.runtime import Catalog
from ..store.base import Store
from ..store.packing import Packer
from ..store.records import NewEvent

_DATASCHEMA = re.compile(r"/([A-Za-z0-9][A-Za-z0-9._-]*)/(\d{1,9})(?:\.json)?/?$")
_EXT_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_CORE = {"specversion", "type", "source", "id", "time", "dataschema", "datacontenttype", "subject", "data"}
MAX_ID = 256


@dataclass
class Rejection:
    index: int
    id: str | None
    message: str

    def view(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "code": 20001, "message": self.message}


@dataclass
class PublishResult:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.view() for r in self.rejected],
        }


class InvalidEvent(ValueError):
    pass


def new_event_id() -> str:
    return "EZ" + secrets.token_hex(16)


def _check_time(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEvent("time must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"time is not an RFC 3339 timestamp: {value[:60]!r}") from None
    if parsed.tzinfo is None:
        raise InvalidEvent("time must carry a UTC offset (e.g. 2024-01-01T00:00:00Z)")
    return value


class Publisher:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        dedupe_window_s: float = 86400.0,
        base_url: str = "",
        packer: Packer | None = None,
    ) -> None:
        self.store = store
        self.packer = packer or Packer()
        self.catalog = catalog
        self.dedupe_window_ms = int(dedupe_window_s * 1000)
        self.base_url = base_url
        self.on_accepted: Callable[[int], None] | None = None  # told how many events each publish stored

    async def _resolve(
        self, owner: str, type_: str, dataschema: Any, cache: dict[tuple[str, Any], Any]
    ) -> tuple[Any, int, str]:
        """(compiled schema, version, dataschema URL) for a type, once per request."""
        if dataschema is not None and not isinstance(dataschema, str):  # before hashing it as a cache key
            raise InvalidEvent("dataschema must be a URI ending in /<SchemaId>/<version>")
        key = (type_, dataschema)
        hit = cache.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        etype = await self.catalog.event_type(owner, type_)
        if etype is None:
            raise InvalidEvent(f"unknown event type {type_!r}")
        if etype.status == "discontinued":
            raise InvalidEvent(f"event type {type_} is discontinued")
        version: int | None
        if dataschema is not None:
            m = _DATASCHEMA.search(dataschema) if isinstance(dataschema, str) else None
            if m is None:
                raise InvalidEvent("dataschema must be a URI ending in /<SchemaId>/<version>")
            if m.group(1) != etype.schema_id:
                raise InvalidEvent(f"dataschema names {m.group(1)} but {type_} uses {etype.schema_id}")
            version = int(m.group(2))
        else:
            version = await self.catalog.latest_version(owner, etype.schema_id)
            if version is None:
                raise InvalidEvent(f"{etype.schema_id} has no schema version")
        compiled = await self.catalog.schema(owner, etype.schema_id, version)
        if compiled is None:
            raise InvalidEvent(f"{etype.schema_id} has no version {version}")
        out = (compiled, version, self.schema_url(etype.owner_sid is None, etype.schema_id, version))
        cache[key] = out
        return out

    async def _prepare(self, owner: str, raw: Any, now_iso: str, cache: dict[tuple[str, Any], Any]) -> NewEvent:
        if not isinstance(raw, dict):
            raise InvalidEvent("an event must be a JSON object")
        if raw.get("specversion") != "1.0":
            raise InvalidEvent('specversion must be "1.0"')
        type_ = raw.get("type")
        if not isinstance(type_, str) or not type_:
            raise InvalidEvent("type is required (a non-empty string)")
        source = raw.get("source")
        if not isinstance(source, str) or not source:
            raise InvalidEvent("source is required (a non-empty string)")
        event_id = raw.get("id")
        if event_id is None:
            event_id = new_event_id()
        elif not isinstance(event_id, str) or not event_id or len(event_id) > MAX_ID:
            raise InvalidEvent(f"id must be a non-empty string of at most {MAX_ID} characters")
        time_ = _check_time(raw["time"]) if "time" in raw else now_iso
        if "data_base64" in raw:
            raise InvalidEvent("data_base64 is not supported: data must be a JSON object")
        ctype = raw.get("datacontenttype", "application/json")
        if ctype != "application/json":
            raise InvalidEvent("datacontenttype must be application/json")
        extensions = raw.keys() - _CORE  # most events have none or one: a set difference in C
        for key in [k for k in raw if k in extensions] if extensions else ():  # in the event's order
            if not _EXT_NAME.match(key):
                raise InvalidEvent(
                    f"attribute {key[:40]!r} is not a valid CloudEvents extension name (a-z, 0-9, max 20)"
                )
            if not isinstance(raw[key], (str, int, bool)):
                raise InvalidEvent(f"extension attribute {key!r} must be a string, integer or boolean")
        if "subject" in raw and not isinstance(raw["subject"], str):
            raise InvalidEvent("subject must be a string")
        for name, text in (("type", type_), ("source", source), ("id", event_id)):
            if "\x00" in text:  # JSON may escape NUL; no database column should hold one
                raise InvalidEvent(f"{name} must not contain NUL characters")
        if len(type_) > 255:
            raise InvalidEvent("type is longer than 255 characters")
        compiled, version, schema_url = await self._resolve(owner, type_, raw.get("dataschema"), cache)
        data = raw.get("data")
        if not isinstance(data, dict):
            raise InvalidEvent("data is required and must be a JSON object")
        problem = compiled.first_error(data)
        if problem is not None:
            raise InvalidEvent(f"not valid against {compiled.schema_id} v{version}: {problem}")
        event = dict(raw)
        event["id"] = event_id
        event["time"] = time_
        event["datacontenttype"] = "application/json"
        event["dataschema"] = schema_url
        try:
            payload = orjson.dumps(event)
        except orjson.JSONEncodeError:  # nested deeper than orjson writes (255): parsed, but not storable
            raise InvalidEvent("data is nested too deeply to store (about 250 levels at most)") from None
        return self.packer.event(event_id, type_, version, time_, payload)

    def schema_url(self, builtin: bool, schema_id: str, version: int) -> str:
        return schema_url(self.base_url, builtin, schema_id, version)

    async def publish(self, account_sid: str, owner: str, raws: Sequence[Any]) -> PublishResult:
        now = clock.now()
        result = PublishResult()
        ready: list[NewEvent] = []
        seen: set[str] = set()
        now_iso = clock.iso_ms(now)
        cache: dict[tuple[str, Any], Any] = {}
        for i, raw in enumerate(raws):
            try:
                ev = await self._prepare(owner, raw, now_iso, cache)
            except InvalidEvent as exc:
                rid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
                result.rejected.append(Rejection(i, rid, str(exc)))
                continue
            if ev.id in seen:  # the same id twice in one request: stored once
                result.duplicates.append(ev.id)
                continue
            seen.add(ev.id)
            ready.append(ev)
        if ready:
            out = await self.store.deliveries.publish(account_sid, ready, int(now * 1000), self.dedupe_window_ms)
            result.accepted = out.stored
            result.duplicates = out.duplicates + result.duplicates
            if self.on_accepted is not None:
                self.on_accepted(len(out.stored))
        return result
