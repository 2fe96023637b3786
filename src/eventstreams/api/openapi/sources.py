"""OpenAPI fragment of the tracking sources surface (tracking/sources_api.py)."""

from __future__ import annotations

from typing import Any

from .shapes import ERROR, PAGING, STAMP, TEXT, form, json_body, list_of, sid_param

_SID = sid_param("Sid", "TS", "The source's SID")
_RATE_LIMIT = {
    "type": "integer",
    "minimum": 1,
    "maximum": 100000,
    "description": "Requests per second before the tracking API answers 429 (default 1000).",
}
_NAME = {
    "type": "string",
    "pattern": "^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$",
    "description": "Unique in the account.",
}
_SOURCE: dict[str, Any] = {
    "type": "object",
    "required": ["sid", "account_sid", "name", "enabled", "rate_limit", "date_created", "date_updated", "url"],
    "properties": {
        "sid": {"type": "string"},
        "account_sid": {"type": "string"},
        "name": {"type": "string"},
        "enabled": {"type": "boolean"},
        "rate_limit": {"type": "integer"},
        "date_created": STAMP,
        "date_updated": STAMP,
        "url": {"type": "string", "format": "uri"},
        "links": {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}},
    },
}
_WITH_KEY: dict[str, Any] = {
    **_SOURCE,
    "required": [*_SOURCE["required"], "write_key"],
    "properties": {
        **_SOURCE["properties"],
        "write_key": {"type": "string", "description": "Shown in this answer only, never again."},
    },
}
_MESSAGE = {
    "type": "object",
    "properties": {
        "account_sid": {"type": "string"},
        "source_sid": {"type": "string"},
        "message_id": {"type": "string"},
        "type": TEXT,
        "status": {"type": "string", "enum": ["accepted", "rejected"]},
        "reason": {**TEXT, "description": "Why a rejected message was rejected (null when accepted)."},
        "received_at": STAMP,
        "payload": {"description": "The message as received (JSON)."},
    },
}

PATHS: dict[str, Any] = {
    "/v1/Sources": {
        "get": {
            "operationId": "ListSource",
            "parameters": PAGING,
            "responses": {**json_body("200", "sources", list_of("sources", _SOURCE)), "400": ERROR},
        },
        "post": {
            "operationId": "CreateSource",
            "requestBody": form({"Name": _NAME, "RateLimit": _RATE_LIMIT}, ["Name"]),
            "responses": {
                **json_body("201", "the source with its write key", _WITH_KEY),
                "400": ERROR,
                "409": ERROR,
            },
        },
    },
    "/v1/Sources/{Sid}": {
        "get": {
            "operationId": "FetchSource",
            "parameters": [_SID],
            "responses": {**json_body("200", "source", _SOURCE), "404": ERROR},
        },
        "post": {
            "operationId": "UpdateSource",
            "parameters": [_SID],
            "requestBody": form({"Name": _NAME, "Enabled": {"type": "boolean"}, "RateLimit": _RATE_LIMIT}, []),
            "responses": {**json_body("200", "source", _SOURCE), "400": ERROR, "404": ERROR, "409": ERROR},
        },
        "delete": {
            "operationId": "DeleteSource",
            "parameters": [_SID],
            "responses": {"204": {"description": "deleted, with its messages"}, "404": ERROR},
        },
    },
    "/v1/Sources/{Sid}/WriteKey": {
        "post": {
            "operationId": "RotateSourceWriteKey",
            "description": "A new write key, shown once; the old one stops working at once.",
            "parameters": [_SID],
            "responses": {
                **json_body("201", "the source with its new write key", _WITH_KEY),
                "400": ERROR,
                "404": ERROR,
            },
        },
    },
    "/v1/Sources/{Sid}/Messages": {
        "get": {
            "operationId": "ListSourceMessage",
            "description": "The source's debugger: what it received, newest first (rejected ones with why).",
            "parameters": [
                _SID,
                {"name": "Status", "in": "query", "schema": {"type": "string", "enum": ["accepted", "rejected"]}},
                *PAGING,
            ],
            "responses": {**json_body("200", "messages", list_of("messages", _MESSAGE)), "400": ERROR, "404": ERROR},
        },
    },
}
