"""OpenAPI fragment of the Segment-compatible tracking surface (tracking/api.py)."""

from __future__ import annotations

from typing import Any

_SEGMENT_ERROR = {
    "description": "Segment's error shape",
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["code", "message"],
        "properties": {"success": {"type": "boolean"}, "code": {"type": "string"}, "message": {"type": "string"}},
    }}},
}  # fmt: skip
_OK = {
    "description": "stored before this answer; rejected messages are counted and kept with their reason",
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["success", "accepted", "rejected", "duplicates"],
        "properties": {"success": {"type": "boolean"}, "accepted": {"type": "integer"},
                       "rejected": {"type": "integer"}, "duplicates": {"type": "integer"},
                       "reasons": {"type": "array", "items": {"type": "string"}}},
    }}},
}  # fmt: skip
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "userId": {"type": "string"}, "anonymousId": {"type": "string"}, "messageId": {"type": "string"},
        "event": {"type": "string"}, "properties": {"type": "object"}, "traits": {"type": "object"},
        "context": {"type": "object"}, "integrations": {"type": "object"}, "timestamp": {"type": "string"},
        "sentAt": {"type": "string"}, "groupId": {"type": "string"}, "previousId": {"type": "string"},
        "name": {"type": "string"}, "category": {"type": "string"}, "writeKey": {"type": "string"},
    },
}  # fmt: skip
_SECURITY: list[dict[str, list[str]]] = [{"writeKey": []}]


def _op(name: str, schema: dict[str, Any], limit: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": f"Segment{name}",
            "description": f"Segment HTTP Tracking API ({limit}); the write key as Basic username, or writeKey "
            "in the body.",
            "security": _SECURITY,
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": {"200": _OK, "400": _SEGMENT_ERROR, "401": _SEGMENT_ERROR, "403": _SEGMENT_ERROR,
                          "429": _SEGMENT_ERROR},
        }
    }  # fmt: skip


_BATCH = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "items": {**_MESSAGE, "properties": {**_MESSAGE["properties"],
                                                                         "type": {"type": "string"}}}},
        "context": {"type": "object"}, "integrations": {"type": "object"}, "sentAt": {"type": "string"},
        "writeKey": {"type": "string"},
    },
}  # fmt: skip

PATHS: dict[str, Any] = {
    **{f"/v1/{kind}": _op(kind.capitalize(), _MESSAGE, "32 KB")
       for kind in ("alias", "group", "identify", "page", "screen", "track")},
    "/v1/batch": _op("Batch", _BATCH, "500 KB, 2,500 messages of 32 KB"),
    "/v1/import": _op("Import", _BATCH, "as batch, for historical data"),
}  # fmt: skip
