"""OpenAPI fragment of the events warehouse surface (warehouse/api.py)."""

from __future__ import annotations

from typing import Any

from .shapes import ERROR, STAMP, TEXT, form, json_body

_WAREHOUSE: dict[str, Any] = {
    "type": "object",
    "required": ["sid", "account_sid", "schema_name", "enabled", "interval", "url"],
    "properties": {
        "sid": {"type": "string"},
        "account_sid": {"type": "string"},
        "schema_name": {"type": "string"},
        "enabled": {"type": "boolean"},
        "interval": {"type": "integer", "description": "Seconds between scheduled loads."},
        "rows_loaded": {"type": "integer"},
        "loading": {"type": "boolean"},
        "next_load_at": {**STAMP, "nullable": True},
        "last_load_at": TEXT,
        "last_error": TEXT,
        "date_created": STAMP,
        "date_updated": STAMP,
        "url": {"type": "string", "format": "uri"},
        "links": {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}},
    },
}
_SETTINGS = {
    "SchemaName": {"type": "string", "pattern": "^[a-z_][a-z0-9_]{0,62}$",
                   "description": "Required the first time. A new name starts the load over into the new schema."},
    "Enabled": {"type": "boolean"},
    "Interval": {"type": "integer", "minimum": 60, "maximum": 366 * 86400, "description": "Seconds (default 3600)."},
}  # fmt: skip

PATHS: dict[str, Any] = {
    "/v1/EventsWarehouse": {
        "get": {
            "operationId": "FetchEventsWarehouse",
            "responses": {**json_body("200", "the account's events warehouse", _WAREHOUSE), "404": ERROR},
        },
        "post": {
            "operationId": "UpdateEventsWarehouse",
            "description": "Create (201) or change (200) the account's events warehouse: its tracking messages and "
                           "Event Streams events loaded into Segment's tables (docs/warehouse.md).",
            "requestBody": form(_SETTINGS, []),
            "responses": {**json_body("200", "changed", _WAREHOUSE), **json_body("201", "created", _WAREHOUSE),
                          "400": ERROR, "409": ERROR},
        },
        "delete": {
            "operationId": "DeleteEventsWarehouse",
            "description": "Stops loading; the tables stay in the warehouse.",
            "responses": {"204": {"description": "deleted"}, "404": ERROR},
        },
    },
    "/v1/EventsWarehouse/Loads": {
        "post": {
            "operationId": "CreateEventsWarehouseLoad",
            "description": "Load what is new now (queued; a serve or worker runs it).",
            "responses": {**json_body("202", "queued", _WAREHOUSE), "400": ERROR, "404": ERROR},
        },
    },
}  # fmt: skip
