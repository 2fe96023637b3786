"""The catalogue at run time: event types and compiled schema validators,
cached in memory in front of the store.

Validation uses jsonschema-rs (compiled, ~1 µs per Messaging event here
against ~75 µs for the pure-Python jsonschema: see docs/benchmarks.md).
Every cache is bounded (least recently used goes first), so a tenant
registering many types or versions cannot grow the process without limit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import orjson
from cachetools import LRUCache, TTLCache

from ..store.base import Store
from ..store.records import EventTypeRow
from .schemas import MAX_OBJECT_PROPERTIES, SchemaRejected, compile_builtin, compile_custom, too_wide

TTL = 5.0  # seconds a cached type is trusted (types registered on another node appear within this)
MAX_CACHED_TYPES = 10_000
MAX_CACHED_SCHEMAS = 2_000
log = logging.getLogger("eventstreams.catalog")


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    schema_id: str
    version: int
    document: dict[str, Any]
    validator: Any
    custom: bool = False  # a tenant's schema: its events' objects are capped in width

    def first_error(self, data: Any) -> str | None:
        if self.custom and too_wide(data):
            return f"data: an object has more than {MAX_OBJECT_PROPERTIES} properties"
        try:
            self.validator.validate(data)  # one pass: stops at the first error
        except jsonschema_rs.ValidationError as err:
            path = "/".join(str(p) for p in err.instance_path)
            return f"{'data/' + path if path else 'data'}: {err.message}"
        except ValueError:  # jsonschema-rs reads at most ~255 levels of nesting ("Recursion limit reached")
            return "data: nested too deeply to validate"
        return None

    def project(self, data: dict[str, Any]) -> dict[str, Any]:
        """Keep only the fields this version declares (when it lists any)."""
        props = self.document.get("properties")
        if not isinstance(props, dict) or (self.document.get("additionalProperties") is True and not props):
            return data
        return {k: v for k, v in data.items() if k in props}


SchemaKey = tuple[str | None, str, int]  # (owning account or None for Twilio's, schema id, version)


class Catalog:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._types: TTLCache[tuple[str, str], EventTypeRow] = TTLCache(MAX_CACHED_TYPES, TTL, timer=time.monotonic)
        self._latest: TTLCache[tuple[str, str], int | None] = TTLCache(MAX_CACHED_TYPES, TTL, timer=time.monotonic)
        self._schemas: LRUCache[SchemaKey, CompiledSchema] = LRUCache(MAX_CACHED_SCHEMAS)
        # (reading account, schema id, version) -> the key of the version it sees; versions are immutable
        self._visible: LRUCache[tuple[str, str, int], SchemaKey] = LRUCache(MAX_CACHED_TYPES)

    async def event_type(self, owner: str, type_: str) -> EventTypeRow | None:
        key = (owner, type_)
        hit = self._types.get(key)
        if hit is not None:
            return hit
        row = await self.store.catalogue.get_type(owner, type_)
        if row is not None:  # unknown types are not cached: one registered a moment later works at once
            self._types[key] = row
        return row

    async def latest_version(self, owner: str, schema_id: str) -> int | None:
        key = (owner, schema_id)
        if key in self._latest:
            return self._latest[key]
        row = await self.store.catalogue.get_version(owner, schema_id, None)
        version = row.version if row else None
        self._latest[key] = version
        return version

    async def schema(self, owner: str, schema_id: str, version: int) -> CompiledSchema | None:
        vis = (owner, schema_id, version)
        seen = self._visible.get(vis)
        compiled = self._schemas.get(seen) if seen is not None else None
        if compiled is not None:
            return compiled
        row = await self.store.catalogue.get_version(owner, schema_id, version)
        if row is None:
            return None
        key: SchemaKey = (row.owner_sid, schema_id, version)
        compiled = self._schemas.get(key)
        if compiled is None:
            doc = orjson.loads(row.document)
            try:
                validator = compile_builtin(doc) if row.owner_sid is None else compile_custom(doc)
            except SchemaRejected as exc:
                # stored before registration refused such schemas: unusable, never fetched from
                log.warning("schema %s v%s of %s is unusable: %s", schema_id, version, row.owner_sid, exc)
                return None
            compiled = CompiledSchema(schema_id, version, doc, validator, custom=row.owner_sid is not None)
            self._schemas[key] = compiled
        self._visible[vis] = key
        return compiled
