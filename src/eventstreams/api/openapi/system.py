"""OpenAPI fragment of the root's own paths (api/app.py): health, metrics, this document."""

from __future__ import annotations

from typing import Any

from .shapes import ERROR, json_body

PATHS: dict[str, Any] = {
    "/healthz": {"get": {"operationId": "Health", "security": [], "responses": json_body("200", "store reachable")}},
    "/metrics": {
        "get": {
            "operationId": "Metrics",
            "description": "Prometheus metrics of the whole process; `Authorization: Bearer` with"
            " EVENTSTREAMS_METRICS_TOKEN (404 when that is not set).",
            "security": [],
            "responses": {"200": {"description": "Prometheus text format"}, "401": ERROR, "404": ERROR},
        }
    },
    "/openapi.json": {
        "get": {"operationId": "OpenApiDocument", "security": [], "responses": json_body("200", "this document")}
    },
}
