"""The event catalogue: Twilio's event types and JSON Schemas, shipped as
data in catalog/data and loaded into the store on start, so built-in and
operator-registered types page and filter the same way."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from ..store.records import EventTypeRow, SchemaVersionRow

STATUSES = ("available", "deprecated", "restricted", "discontinued")
SCHEMA_HOST = "https://events-schemas.twilio.com"


def schema_url(base_url: str, builtin: bool, schema_id: str, version: int) -> str:
    """An event's ``dataschema``: Twilio's schemas keep Twilio's public URL (receivers written for
    Twilio see the same thing); tenants' schemas and ours for Segment traffic (``Segment.*``) are
    served by this server at ``/schemas/{id}/{version}``."""
    if builtin and not schema_id.startswith("Segment."):
        return f"{SCHEMA_HOST}/{schema_id}/{version}"
    return f"{base_url}/schemas/{schema_id}/{version}"


def _data() -> Any:
    return resources.files("eventstreams.catalog").joinpath("data")


@lru_cache(maxsize=1)
def builtin_types() -> list[EventTypeRow]:
    raw = json.loads(_data().joinpath("types.json").read_text())
    return [
        EventTypeRow(
            type=t["type"],
            schema_id=t["schema_id"],
            owner_sid=None,
            description=t["description"],
            status=t["status"],
            documentation_url=t.get("documentation_url"),
            segment_compatible=bool(t.get("segment_compatible", False)),
            date_created=t["date_created"],
            date_updated=t.get("date_updated", t["date_created"]),
        )
        for t in raw
    ]


@lru_cache(maxsize=1)
def builtin_schema_versions() -> list[SchemaVersionRow]:
    index = json.loads(_data().joinpath("schema_versions.json").read_text())
    out = []
    for schema_id, versions in sorted(index.items()):
        for v in versions:
            doc = _data().joinpath("schemas", schema_id, f"{v['version']}.json").read_text()
            out.append(
                SchemaVersionRow(
                    schema_id=schema_id,
                    version=int(v["version"]),
                    owner_sid=None,
                    document=json.dumps(json.loads(doc), separators=(",", ":")),
                    date_created=v["date_created"],
                )
            )
    return out


@lru_cache(maxsize=1)
def _builtin_index() -> dict[tuple[str, int], SchemaVersionRow]:
    return {(v.schema_id, v.version): v for v in builtin_schema_versions()}


def builtin_schema(schema_id: str, version: int) -> SchemaVersionRow | None:
    """One of Twilio's published schema versions (public, like events-schemas.twilio.com)."""
    return _builtin_index().get((schema_id, version))


@lru_cache(maxsize=1)
def builtin_examples() -> dict[str, dict[int, dict[str, Any]]]:
    """Example ``data`` per schema id and version (for tests and the sandbox)."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    folder = _data().joinpath("examples")
    for item in folder.iterdir():
        if item.name.endswith(".json"):
            raw = json.loads(item.read_text())
            out[item.name.removesuffix(".json")] = {int(k): v for k, v in raw.items()}
    return out
