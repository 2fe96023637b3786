"""Shapes every surface's OpenAPI fragment shares: Twilio's error, paging, form bodies, SIDs."""

from __future__ import annotations

from typing import Any

TWILIO_ERROR_PROPS = {
    "code": {"type": "integer"},
    "message": {"type": "string"},
    "more_info": {"type": "string"},
    "status": {"type": "integer"},
}


ERROR = {
    "description": "Twilio error",
    "content": {"application/json": {"schema": {"type": "object", "properties": TWILIO_ERROR_PROPS}}},
}


STAMP = {"type": "string", "format": "date-time"}


TEXT = {"type": "string", "nullable": True}


def form(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:  # OpenAPI 3.0 (JSON Schema draft 4) rejects an empty list
        schema["required"] = required
    return {"content": {"application/x-www-form-urlencoded": {"schema": schema}}}


def json_body(code: str, desc: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {code: {"description": desc, "content": {"application/json": {"schema": schema or {"type": "object"}}}}}


def sid_param(name: str, prefix: str, desc: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": desc or f"A 34 character {prefix} SID",
        "schema": {"type": "string", "minLength": 34, "maxLength": 34, "pattern": f"^{prefix}[0-9a-fA-F]{{32}}$"},
    }


def ac_param(name: str) -> dict[str, Any]:
    return sid_param(name, "AC", "An account SID")


SINK_SID = sid_param("Sid", "DG", "The sink's SID")


PAGING = [
    {
        "name": "PageSize",
        "in": "query",
        "description": "How many resources to return in each list page (default 50).",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
    {
        "name": "Page",
        "in": "query",
        "description": "The page index; without PageToken, an offset of Page * PageSize.",
        "schema": {"type": "integer", "minimum": 0, "maximum": 1000000},
    },
    {
        "name": "PageToken",
        "in": "query",
        "description": "The opaque cursor of a next_page_url or previous_page_url.",
        "schema": {"type": "string"},
    },
]


META = {
    "type": "object",
    "properties": {
        "first_page_url": {"type": "string", "format": "uri"},
        "key": {"type": "string"},
        "next_page_url": {"type": "string", "format": "uri", "nullable": True},
        "page": {"type": "integer"},
        "page_size": {"type": "integer"},
        "previous_page_url": {"type": "string", "format": "uri", "nullable": True},
        "url": {"type": "string", "format": "uri"},
    },
}


def list_of(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "array", "items": item}, "meta": META}}


def legacy_list_of(key: str) -> dict[str, Any]:
    """The 2010-04-01 list envelope (relative ``*_uri`` fields)."""
    props: dict[str, Any] = {
        name: {"type": "string", "nullable": name in ("next_page_uri", "previous_page_uri")}
        for name in ("first_page_uri", "next_page_uri", "previous_page_uri", "uri")
    }
    props.update({n: {"type": "integer"} for n in ("end", "page", "page_size", "start")})
    props[key] = {"type": "array", "items": {"type": "object"}}
    return {"type": "object", "properties": props}
