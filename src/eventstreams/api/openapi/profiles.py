"""OpenAPI fragment of the Profiles surface (profiles/api.py): Segment's Profile API paths."""

from __future__ import annotations

import copy
from typing import Any

_ERROR = {
    "description": "Segment's Profile API error shape",
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"],
                                 "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
    }}},
}  # fmt: skip
_CURSOR = {
    "type": "object",
    "properties": {"url": {"type": "string"}, "has_more": {"type": "boolean"}, "next": {"type": "string"},
                   "limit": {"type": "integer"}},
}  # fmt: skip
_EXTERNAL_ID = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "type": {"type": "string"}, "source_id": {"type": "string", "nullable": True},
        "collection": {"type": "string"}, "created_at": {"type": "string"}, "encoding": {"type": "string"},
        "first_message_id": {"type": "string"},
    },
}  # fmt: skip
_PARAMS: list[dict[str, Any]] = [
    {"name": "space", "in": "path", "required": True, "description": "Your account SID (AC…), or a subaccount's",
     "schema": {"type": "string"}},
    {"name": "identifier", "in": "path", "required": True,
     "description": "id_type:value, e.g. user_id:42, anonymous_id:a1, email:jane@example.com, phone:+14155552671",
     "schema": {"type": "string"}},
    {"name": "next", "in": "query", "required": False, "description": "The cursor a previous page returned",
     "schema": {"type": "string"}},
    {"name": "cursor", "in": "query", "required": False, "description": "Same as next", "schema": {"type": "string"}},
]  # fmt: skip


def _limit(most: int) -> dict[str, Any]:
    return {"name": "limit", "in": "query", "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": most}}  # fmt: skip


def _get(op: str, description: str, body: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    return {"get": {
        "operationId": f"SegmentProfile{op}",
        "description": description + " Twilio Basic auth (account SID + auth token, or an API key).",
        "security": [{"accountSid_authToken": []}],
        "parameters": copy.deepcopy(_PARAMS) + params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": body}}},
                      "400": _ERROR, "401": _ERROR, "404": _ERROR},
    }}  # fmt: skip


_BASE = "/v1/spaces/{space}/collections/users/profiles/{identifier}"
_INCLUDE = {"name": "include", "in": "query", "required": False, "schema": {"type": "string"},
            "description": "Comma-separated names to include"}  # fmt: skip

PATHS: dict[str, Any] = {
    f"{_BASE}/traits": _get("Traits", "A profile's traits (latest wins by message timestamp).", {
        "type": "object", "properties": {"traits": {"type": "object"}, "cursor": _CURSOR}},
        [_limit(200), _INCLUDE, {"name": "verbose", "in": "query", "required": False, "schema": {"type": "string"}}]),
    f"{_BASE}/external_ids": _get("ExternalIds", "A profile's identifiers.", {
        "type": "object", "properties": {"data": {"type": "array", "items": _EXTERNAL_ID}, "cursor": _CURSOR}},
        [_limit(100), _INCLUDE]),
    f"{_BASE}/events": _get("Events", "A profile's messages, newest first by default.", {
        "type": "object", "properties": {"data": {"type": "array", "items": {"type": "object"}}, "cursor": _CURSOR}},
        [_limit(100), {"name": "sort", "in": "query", "required": False,
                       "schema": {"type": "string", "enum": ["asc", "desc"]}}]),
    f"{_BASE}/links": _get("Links", "Accounts the user was seen in (group calls), then merges and refused merges.", {
        "type": "object", "properties": {"data": {"type": "array", "items": {"type": "object"}}, "cursor": _CURSOR}},
        [_limit(100)]),
}  # fmt: skip


def paths() -> dict[str, Any]:
    return copy.deepcopy(PATHS)
