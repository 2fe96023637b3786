"""The OpenAPI document served at /openapi.json: Twilio's Events v1 spec
(shipped verbatim in twilio_events_v1.json) pointed at this server, plus
the eventstreams extensions."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import Any

_ERROR = {
    "description": "Twilio error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "code": {"type": "integer"},
                    "message": {"type": "string"},
                    "more_info": {"type": "string"},
                    "status": {"type": "integer"},
                },
            }
        }
    },
}


def _form(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": props, "required": required}
            }
        }
    }


def _json_ok(code: str, desc: str) -> dict[str, Any]:
    return {code: {"description": desc, "content": {"application/json": {"schema": {"type": "object"}}}}}


def _ac_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^AC[0-9a-fA-F]{32}$"},
    }


_EXTENSIONS: dict[str, Any] = {
    "/healthz": {"get": {"operationId": "Health", "security": [], "responses": _json_ok("200", "store reachable")}},
    "/schemas/{Id}/{SchemaVersion}": {
        "get": {
            "operationId": "FetchRawSchema",
            "description": "The JSON Schema document a schema version's `raw` link points at.",
            "parameters": [
                {"name": "Id", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "SchemaVersion", "in": "path", "required": True, "schema": {"type": "integer"}},
            ],
            "responses": {"200": {"description": "JSON Schema"}, "404": _ERROR},
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
            "responses": {**_json_ok("201", "event type"), "400": _ERROR},
        }
    },
    "/v1/Catalog/Schemas/{Id}/Versions": {
        "post": {
            "operationId": "RegisterSchemaVersion",
            "description": "eventstreams extension: add the next version of one of your schemas.",
            "parameters": [{"name": "Id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": _form({"Schema": {"type": "string", "description": "JSON Schema document"}}, ["Schema"]),
            "responses": {**_json_ok("201", "schema version"), "400": _ERROR},
        }
    },
    "/v1/Bridge/Credentials": {
        "get": {"operationId": "FetchBridgeCredentials", "responses": _json_ok("200", "bridge status and URLs")},
        "post": {
            "operationId": "UpdateBridgeCredentials",
            "description": "eventstreams extension: the Twilio account and auth token the callback bridge checks.",
            "requestBody": _form(
                {"TwilioAccountSid": {"type": "string"}, "TwilioAuthToken": {"type": "string"}},
                ["TwilioAccountSid", "TwilioAuthToken"],
            ),
            "responses": {**_json_ok("201", "configured"), "400": _ERROR},
        },
        "delete": {"operationId": "DeleteBridgeCredentials", "responses": {"204": {"description": "removed"}}},
    },
    **{
        f"/bridge/{{AccountSid}}/{kind}": {
            "post": {
                "operationId": f"Bridge{name}",
                "description": "Twilio callback target (authenticated by X-Twilio-Signature, not Basic auth).",
                "security": [],
                "parameters": [_ac_param("AccountSid")],
                "requestBody": _form({"AccountSid": {"type": "string"}}, []),
                "responses": {"200": {"description": "accepted"}, "400": _ERROR, "403": _ERROR, "404": _ERROR},
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
                {"name": "PageSize", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                {"name": "Page", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": _json_ok("200", "accounts"),
        },
        "post": {
            "operationId": "CreateAccount",
            "requestBody": _form({"FriendlyName": {"type": "string"}}, []),
            "responses": {**_json_ok("201", "subaccount"), "403": _ERROR},
        },
    },
    "/2010-04-01/Accounts/{Sid}.json": {
        "get": {
            "operationId": "FetchAccount",
            "parameters": [_ac_param("Sid")],
            "responses": {**_json_ok("200", "account"), "404": _ERROR},
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
            "responses": {**_json_ok("200", "account"), "400": _ERROR, "404": _ERROR},
        },
    },
    "/2010-04-01/Accounts/{AccountSid}/Keys.json": {
        "get": {
            "operationId": "ListKey",
            "parameters": [_ac_param("AccountSid")],
            "responses": _json_ok("200", "keys"),
        },
        "post": {
            "operationId": "CreateNewKey",
            "parameters": [_ac_param("AccountSid")],
            "requestBody": _form({"FriendlyName": {"type": "string"}}, []),
            "responses": _json_ok("201", "key with secret"),
        },
    },
}


@lru_cache(maxsize=1)
def _base_document() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resources.files("eventstreams.api").joinpath("twilio_events_v1.json").read_text())
    doc["paths"].pop("/v1/Schemas", None)  # declared by Twilio with no operation
    enum = doc["components"]["schemas"]["sink_enum_sink_type"]
    enum["enum"] = [e for e in enum["enum"] if e != "email"]  # not supported: see docs/api.md
    doc["paths"].update(copy.deepcopy(_EXTENSIONS))
    doc["info"]["title"] = "eventstreams: Twilio Events v1 compatible API"
    return doc


def openapi_document(base_url: str) -> dict[str, Any]:
    doc = copy.deepcopy(_base_document())
    doc["servers"] = [{"url": base_url}]
    return doc
