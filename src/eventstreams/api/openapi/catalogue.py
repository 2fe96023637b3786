"""OpenAPI paths the Events v1 surface adds to Twilio's: the operator catalogue and raw schema documents."""

from __future__ import annotations

from typing import Any

from .shapes import ERROR, form, json_body

PATHS: dict[str, Any] = {
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
            "responses": {"200": {"description": "JSON Schema"}, "401": ERROR, "404": ERROR},
        }
    },
    "/v1/Catalog/Types": {
        "post": {
            "operationId": "RegisterEventType",
            "description": "eventstreams extension: register an event type for your own applications.",
            "requestBody": form(
                {
                    "Type": {"type": "string"},
                    "SchemaId": {"type": "string"},
                    "Description": {"type": "string"},
                    "Status": {"type": "string", "enum": ["available", "deprecated", "restricted", "discontinued"]},
                },
                ["Type", "SchemaId", "Description"],
            ),
            "responses": {**json_body("201", "event type"), "400": ERROR},
        }
    },
    "/v1/Catalog/Schemas/{Id}/Versions": {
        "post": {
            "operationId": "RegisterSchemaVersion",
            "description": "eventstreams extension: add the next version of one of your schemas.",
            "parameters": [{"name": "Id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": form({"Schema": {"type": "string", "description": "JSON Schema document"}}, ["Schema"]),
            "responses": {**json_body("201", "schema version"), "400": ERROR},
        }
    },
}
