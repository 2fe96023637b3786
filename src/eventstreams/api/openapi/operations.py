"""OpenAPI fragment of the publish and operations surface (api/delivery.py)."""

from __future__ import annotations

from typing import Any

from ...catalog import builtin_examples
from .shapes import ERROR, PAGING, SINK_SID, STAMP, TEXT, TWILIO_ERROR_PROPS, form, json_body, list_of, sid_param

_ALERT = {
    "type": "object",
    "description": "Shaped like Twilio's Monitor Alert (monitor.twilio.com/v1/Alerts).",
    "properties": {
        "account_sid": {"type": "string"},
        "alert_text": {"type": "string"},
        "api_version": {"type": "string"},
        "date_created": STAMP,
        "date_generated": STAMP,
        "date_updated": STAMP,
        "error_code": {"type": "string"},
        "log_level": {"type": "string", "enum": ["error", "warning", "notice", "debug"]},
        "more_info": {"type": "string", "format": "uri"},
        "request_method": {
            "type": "string",
            "nullable": True,
            "description": "How the sink was called: the webhook's method; POST for kinesis (PutRecords) and"
            " segment; null once the sink is deleted.",
        },
        "request_url": TEXT,
        "request_variables": TEXT,
        "resource_sid": {"type": "string", "description": "The sink's SID"},
        "response_body": {**TEXT, "description": "Only in a fetched alert; null in lists (as Twilio)."},
        "response_headers": TEXT,
        "sid": {"type": "string"},
        "url": {"type": "string", "format": "uri"},
        "request_headers": TEXT,
        "service_sid": TEXT,
    },
}


_DELIVERY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "sink_sid": {"type": "string"},
        "date_created": STAMP,
        "outcome": {"type": "string"},
        "event_count": {"type": "integer"},
        "event_ids": {"type": "array", "items": {"type": "string"}},
        "error_code": {"type": "integer", "nullable": True},
        "http_status": {"type": "integer", "nullable": True},
        "detail": TEXT,
    },
}


_DEAD_LETTER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "sink_sid": {"type": "string"},
        "event_id": {"type": "string"},
        "type": {"type": "string"},
        "attempts": {"type": "integer"},
        "error_code": {"type": "integer", "nullable": True},
        "error": TEXT,
        "date_created": STAMP,
    },
}


_CLOUDEVENT = {
    "type": "object",
    "description": "A CloudEvent (structured JSON). data must validate against the type's schema; other"
    " attributes are CloudEvents extensions (lowercase a-z0-9, at most 20 characters; string, integer or"
    " boolean).",
    "required": ["specversion", "type", "source", "data"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "type": {"type": "string", "minLength": 1, "maxLength": 255},
        "source": {"type": "string", "minLength": 1},
        "id": {"type": "string", "minLength": 1, "maxLength": 256, "description": "Generated when absent"},
        "time": {"type": "string", "format": "date-time", "description": "Now when absent"},
        "dataschema": {"type": "string", "description": "A URI ending in /<SchemaId>/<version>"},
        "datacontenttype": {"type": "string", "enum": ["application/json"]},
        "subject": {"type": "string"},
        "data": {"type": "object"},
    },
}


_PUBLISH_RESULT = {
    "type": "object",
    "properties": {
        "accepted": {"type": "array", "items": {"type": "string"}},
        "duplicates": {"type": "array", "items": {"type": "string"}},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "id": TEXT,
                    "code": {"type": "integer"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def _example_event() -> dict[str, Any]:
    examples = builtin_examples()["Messaging.MessageStatus"]
    return {
        "specversion": "1.0",
        "type": "com.twilio.messaging.message.delivered",
        "source": "/example",
        "data": examples[max(examples)],
    }


def _publish() -> dict[str, Any]:
    one = _example_event()
    return {
        "post": {
            "operationId": "PublishEvents",
            "description": "eventstreams extension: publish CloudEvents, one per request"
            " (application/cloudevents+json or application/json) or a batch (application/cloudevents-batch+json,"
            " a JSON array). Each event is accepted, a duplicate (its id was seen within the dedupe window)"
            " or rejected with its index and reason.",
            "requestBody": {
                "required": True,
                "content": {
                    "application/cloudevents+json": {"schema": _CLOUDEVENT, "example": one},
                    "application/json": {"schema": _CLOUDEVENT, "example": one},
                    "application/cloudevents-batch+json": {
                        "schema": {"type": "array", "items": _CLOUDEVENT, "minItems": 1, "maxItems": 1000},
                        "example": [one],
                    },
                },
            },
            "responses": {
                **json_body("201", "every event accepted (or a duplicate)", _PUBLISH_RESULT),
                **json_body("207", "some events rejected, the others stored", _PUBLISH_RESULT),
                **json_body(
                    "400",
                    "no event stored: Twilio's error fields plus the publish result",
                    {"allOf": [{"type": "object", "properties": TWILIO_ERROR_PROPS}, _PUBLISH_RESULT]},
                ),
                "413": ERROR,
                "415": ERROR,
            },
        }
    }


def _sink_list(op: str, key: str, item: dict[str, Any], desc: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op,
            "description": desc,
            "parameters": [SINK_SID, *PAGING],
            "responses": {**json_body("200", key, list_of(key, item)), "400": ERROR, "404": ERROR},
        }
    }


_DATE_FILTER = "In GMT, as YYYY-MM-DD or ISO 8601 (YYYY-MM-DDThh:mm:ssZ; an offset or fractional seconds are allowed)."


PATHS: dict[str, Any] = {
    "/v1/Events": _publish(),
    "/v1/Sinks/{Sid}/Deliveries": _sink_list(
        "ListDelivery", "deliveries", _DELIVERY, "eventstreams extension: the sink's delivery log, oldest first."
    ),
    "/v1/Sinks/{Sid}/DeadLetters": _sink_list(
        "ListDeadLetter", "dead_letters", _DEAD_LETTER, "eventstreams extension: the sink's dead letters."
    ),
    "/v1/Sinks/{Sid}/Replay": {
        "post": {
            "operationId": "CreateReplay",
            "description": "eventstreams extension: deliver again to this sink its dead letters"
            " (DeadLetters=true, optionally only the EventIds given), chosen stored events (EventId), or the"
            " stored events received in [Since, Until].",
            "parameters": [SINK_SID],
            "requestBody": form(
                {
                    "DeadLetters": {"type": "boolean"},
                    "EventId": {"type": "array", "items": {"type": "string"}},
                    "Since": {"type": "string", "format": "date-time"},
                    "Until": {"type": "string", "format": "date-time"},
                },
                [],
            ),
            "responses": {
                **json_body(
                    "201",
                    "replay scheduled",
                    {"type": "object", "properties": {"sink_sid": {"type": "string"}, "replayed": {"type": "integer"}}},
                ),
                "400": ERROR,
                "404": ERROR,
            },
        }
    },
    "/v1/Sinks/{Sid}/SigningSecret": {
        "get": {
            "operationId": "FetchSigningSecret",
            "description": "eventstreams extension: the sink's Standard Webhooks secret.",
            "parameters": [SINK_SID],
            "responses": {
                **json_body(
                    "200",
                    "secret",
                    {"type": "object", "properties": {"sink_sid": {"type": "string"}, "secret": {"type": "string"}}},
                ),
                "404": ERROR,
            },
        }
    },
    "/v1/Alerts": {
        "get": {
            "operationId": "ListAlert",
            "description": "Delivery alerts, shaped like Twilio's Monitor Alerts list, oldest first.",
            "parameters": [
                {
                    "name": "LogLevel",
                    "in": "query",
                    "description": "Only alerts of this log level.",
                    "schema": {"type": "string", "enum": ["error", "warning", "notice", "debug"]},
                },
                {
                    "name": "StartDate",
                    "in": "query",
                    "description": "Only alerts raised on or after this time (a date: from the start of that day). "
                    + _DATE_FILTER,
                    "schema": {"type": "string", "format": "date-time"},
                },
                {
                    "name": "EndDate",
                    "in": "query",
                    "description": "Only alerts raised on or before this time (a date: through the end of that day;"
                    " a time without fractional seconds: through the end of that second). " + _DATE_FILTER,
                    "schema": {"type": "string", "format": "date-time"},
                },
                *PAGING,
            ],
            "responses": {**json_body("200", "alerts", list_of("alerts", _ALERT)), "400": ERROR},
        }
    },
    "/v1/Alerts/{Sid}": {
        "get": {
            "operationId": "FetchAlert",
            "parameters": [sid_param("Sid", "NO", "The alert's SID")],
            "responses": {**json_body("200", "alert", _ALERT), "404": ERROR},
        }
    },
}
