"""The OpenAPI document served at /openapi.json: Twilio's Events v1 spec
(shipped verbatim in twilio_events_v1.json) pointed at this server, plus
every eventstreams extension, served as one fragment per HTTP surface
(api/surface.py); tests/integration/test_fuzz_openapi.py fails when a route is
missing here."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from ..catalog import builtin_examples
from ..sinks import registry as sink_types

_TWILIO_ERROR_PROPS = {
    "code": {"type": "integer"},
    "message": {"type": "string"},
    "more_info": {"type": "string"},
    "status": {"type": "integer"},
}
_ERROR = {
    "description": "Twilio error",
    "content": {"application/json": {"schema": {"type": "object", "properties": _TWILIO_ERROR_PROPS}}},
}
_STAMP = {"type": "string", "format": "date-time"}
_TEXT = {"type": "string", "nullable": True}


def _form(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": props, "required": required}
            }
        }
    }


def _json(code: str, desc: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {code: {"description": desc, "content": {"application/json": {"schema": schema or {"type": "object"}}}}}


def _sid_param(name: str, prefix: str, desc: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": desc or f"A 34 character {prefix} SID",
        "schema": {"type": "string", "minLength": 34, "maxLength": 34, "pattern": f"^{prefix}[0-9a-fA-F]{{32}}$"},
    }


def _ac_param(name: str) -> dict[str, Any]:
    return _sid_param(name, "AC", "An account SID")


_SINK_SID = _sid_param("Sid", "DG", "The sink's SID")
_PAGING = [
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
_META = {
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


def _list(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "array", "items": item}, "meta": _META}}


def _legacy_list(key: str) -> dict[str, Any]:
    """The 2010-04-01 list envelope (relative ``*_uri`` fields)."""
    props: dict[str, Any] = {
        name: {"type": "string", "nullable": name in ("next_page_uri", "previous_page_uri")}
        for name in ("first_page_uri", "next_page_uri", "previous_page_uri", "uri")
    }
    props.update({n: {"type": "integer"} for n in ("end", "page", "page_size", "start")})
    props[key] = {"type": "array", "items": {"type": "object"}}
    return {"type": "object", "properties": props}


_ALERT = {
    "type": "object",
    "description": "Shaped like Twilio's Monitor Alert (monitor.twilio.com/v1/Alerts).",
    "properties": {
        "account_sid": {"type": "string"},
        "alert_text": {"type": "string"},
        "api_version": {"type": "string"},
        "date_created": _STAMP,
        "date_generated": _STAMP,
        "date_updated": _STAMP,
        "error_code": {"type": "string"},
        "log_level": {"type": "string", "enum": ["error", "warning", "notice", "debug"]},
        "more_info": {"type": "string", "format": "uri"},
        "request_method": {
            "type": "string",
            "nullable": True,
            "description": "How the sink was called: the webhook's method; POST for kinesis (PutRecords) and"
            " segment; null once the sink is deleted.",
        },
        "request_url": _TEXT,
        "request_variables": _TEXT,
        "resource_sid": {"type": "string", "description": "The sink's SID"},
        "response_body": {**_TEXT, "description": "Only in a fetched alert; null in lists (as Twilio)."},
        "response_headers": _TEXT,
        "sid": {"type": "string"},
        "url": {"type": "string", "format": "uri"},
        "request_headers": _TEXT,
        "service_sid": _TEXT,
    },
}
_DELIVERY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "sink_sid": {"type": "string"},
        "date_created": _STAMP,
        "outcome": {"type": "string"},
        "event_count": {"type": "integer"},
        "event_ids": {"type": "array", "items": {"type": "string"}},
        "error_code": {"type": "integer", "nullable": True},
        "http_status": {"type": "integer", "nullable": True},
        "detail": _TEXT,
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
        "error": _TEXT,
        "date_created": _STAMP,
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
                    "id": _TEXT,
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
                **_json("201", "every event accepted (or a duplicate)", _PUBLISH_RESULT),
                **_json("207", "some events rejected, the others stored", _PUBLISH_RESULT),
                **_json(
                    "400",
                    "no event stored: Twilio's error fields plus the publish result",
                    {"allOf": [{"type": "object", "properties": _TWILIO_ERROR_PROPS}, _PUBLISH_RESULT]},
                ),
                "413": _ERROR,
                "415": _ERROR,
            },
        }
    }


def _sink_list(op: str, key: str, item: dict[str, Any], desc: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op,
            "description": desc,
            "parameters": [_SINK_SID, *_PAGING],
            "responses": {**_json("200", key, _list(key, item)), "400": _ERROR, "404": _ERROR},
        }
    }


_DATE_FILTER = "In GMT, as YYYY-MM-DD or ISO 8601 (YYYY-MM-DDThh:mm:ssZ; an offset or fractional seconds are allowed)."

_EXTENSIONS: dict[str, Any] = {
    "/healthz": {"get": {"operationId": "Health", "security": [], "responses": _json("200", "store reachable")}},
    "/metrics": {
        "get": {
            "operationId": "Metrics",
            "description": "Prometheus metrics of the whole process; `Authorization: Bearer` with"
            " EVENTSTREAMS_METRICS_TOKEN (404 when that is not set).",
            "security": [],
            "responses": {"200": {"description": "Prometheus text format"}, "401": _ERROR, "404": _ERROR},
        }
    },
    "/openapi.json": {
        "get": {"operationId": "OpenApiDocument", "security": [], "responses": _json("200", "this document")}
    },
    "/schemas/{Id}/{SchemaVersion}": {
        "get": {
            "operationId": "FetchRawSchema",
            "description": "The JSON Schema document a schema version's `raw` link points at"
            " (`{SchemaVersion}.json` works too). Twilio's schemas are public; custom ones need credentials.",
            "security": [{}, {"accountSid_authToken": []}],
            "parameters": [
                {"name": "Id", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "SchemaVersion", "in": "path", "required": True, "schema": {"type": "integer"}},
            ],
            "responses": {"200": {"description": "JSON Schema"}, "401": _ERROR, "404": _ERROR},
        }
    },
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
            "parameters": [_SINK_SID],
            "requestBody": _form(
                {
                    "DeadLetters": {"type": "boolean"},
                    "EventId": {"type": "array", "items": {"type": "string"}},
                    "Since": {"type": "string", "format": "date-time"},
                    "Until": {"type": "string", "format": "date-time"},
                },
                [],
            ),
            "responses": {
                **_json(
                    "201",
                    "replay scheduled",
                    {"type": "object", "properties": {"sink_sid": {"type": "string"}, "replayed": {"type": "integer"}}},
                ),
                "400": _ERROR,
                "404": _ERROR,
            },
        }
    },
    "/v1/Sinks/{Sid}/SigningSecret": {
        "get": {
            "operationId": "FetchSigningSecret",
            "description": "eventstreams extension: the sink's Standard Webhooks secret.",
            "parameters": [_SINK_SID],
            "responses": {
                **_json(
                    "200",
                    "secret",
                    {"type": "object", "properties": {"sink_sid": {"type": "string"}, "secret": {"type": "string"}}},
                ),
                "404": _ERROR,
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
                *_PAGING,
            ],
            "responses": {**_json("200", "alerts", _list("alerts", _ALERT)), "400": _ERROR},
        }
    },
    "/v1/Alerts/{Sid}": {
        "get": {
            "operationId": "FetchAlert",
            "parameters": [_sid_param("Sid", "NO", "The alert's SID")],
            "responses": {**_json("200", "alert", _ALERT), "404": _ERROR},
        }
    },
    "/v1/Catalog/Types": {
        "post": {
            "operationId": "RegisterEventType",
            "description": "eventstreams extension: register an event type for your own applications.",
            "requestBody": _form(
                {
                    "Type": {"type": "string"},
                    "SchemaId": {"type": "string"},
                    "Description": {"type": "string"},
                    "Status": {"type": "string", "enum": ["available", "deprecated", "restricted", "discontinued"]},
                },
                ["Type", "SchemaId", "Description"],
            ),
            "responses": {**_json("201", "event type"), "400": _ERROR},
        }
    },
    "/v1/Catalog/Schemas/{Id}/Versions": {
        "post": {
            "operationId": "RegisterSchemaVersion",
            "description": "eventstreams extension: add the next version of one of your schemas.",
            "parameters": [{"name": "Id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": _form({"Schema": {"type": "string", "description": "JSON Schema document"}}, ["Schema"]),
            "responses": {**_json("201", "schema version"), "400": _ERROR},
        }
    },
    "/v1/Bridge/Credentials": {
        "get": {"operationId": "FetchBridgeCredentials", "responses": _json("200", "bridge status and URLs")},
        "post": {
            "operationId": "UpdateBridgeCredentials",
            "description": "eventstreams extension: the Twilio account and auth token the callback bridge checks.",
            "requestBody": _form(
                {"TwilioAccountSid": {"type": "string"}, "TwilioAuthToken": {"type": "string"}},
                ["TwilioAccountSid", "TwilioAuthToken"],
            ),
            "responses": {**_json("201", "configured"), **_json("200", "replaced"), "400": _ERROR},
        },
        "delete": {
            "operationId": "DeleteBridgeCredentials",
            "responses": {"204": {"description": "removed"}, "404": _ERROR},
        },
    },
    **{
        f"/bridge/{{AccountSid}}/{kind}": {
            "post": {
                "operationId": f"Bridge{name}",
                "description": "Twilio callback target (authenticated by X-Twilio-Signature, not Basic auth).",
                "security": [],
                "parameters": [_ac_param("AccountSid")],
                "requestBody": _form({"AccountSid": {"type": "string"}}, []),
                "responses": {"200": {"description": "accepted"}, "400": _ERROR, "403": _ERROR, "413": _ERROR},
            }
        }
        for kind, name in (
            ("messaging/status", "MessageStatus"),
            ("messaging/inbound", "InboundMessage"),
            ("voice/status", "CallStatus"),
        )
    },
    "/2010-04-01/Accounts.json": {
        "get": {
            "operationId": "ListAccount",
            "parameters": [
                {"name": "FriendlyName", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "Status",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["active", "suspended", "closed"]},
                },
                *_PAGING,
            ],
            "responses": {**_json("200", "accounts", _legacy_list("accounts")), "400": _ERROR},
        },
        "post": {
            "operationId": "CreateAccount",
            "requestBody": _form({"FriendlyName": {"type": "string"}}, []),
            "responses": {**_json("201", "subaccount"), "403": _ERROR},
        },
    },
    "/2010-04-01/Accounts/{Sid}.json": {
        "get": {
            "operationId": "FetchAccount",
            "parameters": [_ac_param("Sid")],
            "responses": {**_json("200", "account"), "404": _ERROR},
        },
        "post": {
            "operationId": "UpdateAccount",
            "parameters": [_ac_param("Sid")],
            "requestBody": _form(
                {
                    "FriendlyName": {"type": "string"},
                    "Status": {"type": "string", "enum": ["active", "suspended", "closed"]},
                },
                [],
            ),
            "responses": {**_json("200", "account"), "400": _ERROR, "404": _ERROR},
        },
    },
    "/2010-04-01/Accounts/{AccountSid}/Keys.json": {
        "get": {
            "operationId": "ListKey",
            "parameters": [_ac_param("AccountSid"), *_PAGING],
            "responses": {**_json("200", "keys", _legacy_list("keys")), "400": _ERROR, "404": _ERROR},
        },
        "post": {
            "operationId": "CreateNewKey",
            "parameters": [_ac_param("AccountSid")],
            "requestBody": _form({"FriendlyName": {"type": "string"}}, []),
            "responses": {**_json("201", "key with secret"), "404": _ERROR},
        },
    },
    "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}.json": {
        "get": {
            "operationId": "FetchKey",
            "parameters": [_ac_param("AccountSid"), _sid_param("Sid", "SK", "The API key's SID")],
            "responses": {**_json("200", "key (without its secret)"), "404": _ERROR},
        },
        "post": {
            "operationId": "UpdateKey",
            "parameters": [_ac_param("AccountSid"), _sid_param("Sid", "SK", "The API key's SID")],
            "requestBody": _form({"FriendlyName": {"type": "string"}}, []),
            "responses": {**_json("200", "key"), "400": _ERROR, "404": _ERROR},
        },
        "delete": {
            "operationId": "DeleteKey",
            "parameters": [_ac_param("AccountSid"), _sid_param("Sid", "SK", "The API key's SID")],
            "responses": {"204": {"description": "deleted"}, "404": _ERROR},
        },
    },
}


@lru_cache(maxsize=1)
def _twilio_spec() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resources.files("eventstreams.api").joinpath("twilio_events_v1.json").read_text())
    doc["paths"].pop("/v1/Schemas", None)  # declared by Twilio with no operation
    for item in doc["paths"].values():
        # Twilio pins each path to events.twilio.com; the document's own servers entry must apply
        item.pop("servers", None)
    doc["info"]["title"] = "eventstreams: Twilio Events v1 compatible API"
    return doc


def _select(*prefixes: str) -> dict[str, Any]:
    return {path: copy.deepcopy(item) for path, item in _EXTENSIONS.items() if path.startswith(prefixes)}


# -- each surface's fragment (its ``paths``) -----------------------------------------------------


def events_v1_paths() -> dict[str, Any]:
    """Twilio's Events v1 paths, verbatim, plus the operator catalogue and the raw schema documents."""
    return {**copy.deepcopy(_twilio_spec()["paths"]), **_select("/schemas/", "/v1/Catalog/")}


def operations_paths() -> dict[str, Any]:
    return _select("/v1/Events", "/v1/Sinks/{Sid}/", "/v1/Alerts")


def accounts_paths() -> dict[str, Any]:
    return _select("/2010-04-01/")


def bridge_paths() -> dict[str, Any]:
    return _select("/v1/Bridge/", "/bridge/")


def system_paths() -> dict[str, Any]:
    return _select("/healthz", "/openapi.json", "/metrics")


def _sink_types(doc: dict[str, Any]) -> None:
    """The sink_type enum and each type's sink_configuration schema, from the sink registry
    (Twilio's ``email`` type is not offered: see docs/api.md)."""
    schemas = doc["components"]["schemas"]
    schemas["sink_enum_sink_type"]["enum"] = sink_types.names()
    refs = []
    for name, schema in sink_types.schemas().items():
        schemas[f"sink_configuration_{name}"] = schema
        refs.append({"$ref": f"#/components/schemas/sink_configuration_{name}"})
    described = "The sink's configuration, one of the sink_configuration_<type> schemas (secret fields masked)."
    schemas["events.v1.sink"]["properties"]["sink_configuration"] = {
        "nullable": True,
        "description": described,
        "anyOf": refs,
    }
    sinks = doc["paths"].get("/v1/Sinks")
    if sinks is not None:
        create = sinks["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        create["schema"]["properties"]["SinkConfiguration"]["description"] = (
            "The sink's configuration as a JSON object, per SinkType: see the sink_configuration_<type> schemas."
        )


def openapi_document(base_url: str, surfaces: Sequence[Any]) -> dict[str, Any]:
    """Twilio's document (info, components, security) with the paths of every mounted surface."""
    doc = copy.deepcopy({k: v for k, v in _twilio_spec().items() if k != "paths"})
    doc["paths"] = {}
    for surface in surfaces:
        if surface.openapi is not None:
            doc["paths"].update(surface.openapi())
    _sink_types(doc)  # per call: the registry can change (tests register types)
    doc["servers"] = [{"url": base_url}]
    return doc
