"""OpenAPI fragment of the root's own paths (api/app.py, api/ops.py): health, readiness, metrics, this
document."""

from __future__ import annotations

from typing import Any

from .shapes import ERROR, json_body

_CHECK = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "detail": {"type": "string"}},
    "required": ["ok"],
}
_READINESS = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "checks": {
            "type": "object",
            "description": "store, migrations, and dispatcher (when this process delivers)",
            "additionalProperties": _CHECK,
        },
    },
    "required": ["status", "checks"],
}

PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "operationId": "Health",
            "description": "Liveness: the process answers. Asks nothing of the store.",
            "security": [],
            "responses": json_body(
                "200", "alive", {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}}
            ),
        }
    },
    "/readyz": {
        "get": {
            "operationId": "Readiness",
            "description": "Readiness: the store answers, every packaged migration is applied, and the delivery"
            " dispatcher runs when this process delivers. Each check is listed.",
            "security": [],
            "responses": {
                **json_body("200", "ready", _READINESS),
                **json_body("503", "a check failed", _READINESS),
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "Metrics",
            "description": "Prometheus metrics of the whole process (of every process sharing"
            " PROMETHEUS_MULTIPROC_DIR); `Authorization: Bearer` with EVENTSTREAMS_METRICS_TOKEN (404 when that"
            " is not set). docs/operations.md lists them.",
            "security": [],
            "responses": {"200": {"description": "Prometheus text format"}, "401": ERROR, "404": ERROR},
        }
    },
    "/openapi.json": {
        "get": {"operationId": "OpenApiDocument", "security": [], "responses": json_body("200", "this document")}
    },
}
