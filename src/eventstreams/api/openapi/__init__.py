"""The OpenAPI document served at /openapi.json: Twilio's Events v1 spec (shipped verbatim in
api/twilio_events_v1.json) pointed at this server, with the paths of every mounted surface (and,
with the sandbox mounted, the 2010-04-01 schemas its paths reference, from api/twilio_api_v2010_sandbox.json).
Each surface's fragment lives in a module here; tests/integration/test_fuzz_openapi.py fails when a
route is missing from its surface's fragment."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from ...sinks import registry as sink_types
from . import (
    accounts,
    bridge,
    catalogue,
    events_warehouse,
    object_sources,
    operations,
    sandbox,
    sources,
    system,
    tracking,
)


@lru_cache(maxsize=1)
def _twilio_spec() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resources.files("eventstreams.api").joinpath("twilio_events_v1.json").read_text())
    doc["paths"].pop("/v1/Schemas", None)  # declared by Twilio with no operation
    for item in doc["paths"].values():
        # Twilio pins each path to events.twilio.com; the document's own servers entry must apply
        item.pop("servers", None)
    doc["info"]["title"] = "eventstreams: Twilio Events v1 compatible API"
    return doc


@lru_cache(maxsize=1)
def _twilio_v2010() -> dict[str, Any]:
    """Twilio's 2010-04-01 document, trimmed to the sandbox's operations (scripts/trim_twilio_v2010.py)."""
    doc: dict[str, Any] = json.loads(
        resources.files("eventstreams.api").joinpath("twilio_api_v2010_sandbox.json").read_text()
    )
    return doc


def _refs(node: Any) -> set[str]:
    """The component schema names ``node`` references."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        found = {ref.rsplit("/", 1)[1]} if isinstance(ref, str) and ref.startswith("#/components/schemas/") else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


# -- each surface's fragment (its ``paths``) -----------------------------------------------------


def events_v1_paths() -> dict[str, Any]:
    """Twilio's Events v1 paths, verbatim, plus the operator catalogue and the raw schema documents."""
    return {**copy.deepcopy(_twilio_spec()["paths"]), **copy.deepcopy(catalogue.PATHS)}


def operations_paths() -> dict[str, Any]:
    return copy.deepcopy(operations.PATHS)


def accounts_paths() -> dict[str, Any]:
    return copy.deepcopy(accounts.PATHS)


def bridge_paths() -> dict[str, Any]:
    return copy.deepcopy(bridge.PATHS)


def tracking_paths() -> dict[str, Any]:
    return copy.deepcopy(tracking.PATHS)


def sources_paths() -> dict[str, Any]:
    return copy.deepcopy(sources.PATHS)


def events_warehouse_paths() -> dict[str, Any]:
    return copy.deepcopy(events_warehouse.PATHS)


def object_sources_paths() -> dict[str, Any]:
    return copy.deepcopy(object_sources.PATHS)


def system_paths() -> dict[str, Any]:
    return copy.deepcopy(system.PATHS)


def sandbox_paths() -> dict[str, Any]:
    """Twilio's 2010-04-01 paths the sandbox serves (their schemas join the components when mounted),
    plus call feedback and our Sandbox.json."""
    return sandbox.paths(copy.deepcopy(_twilio_v2010()["paths"]))


def _v2010_schemas(doc: dict[str, Any]) -> None:
    """Add the 2010-04-01 component schemas the paths reference (none unless the sandbox is mounted)."""
    schemas = doc["components"]["schemas"]
    todo = _refs(doc["paths"]) - set(schemas)
    while todo:
        name = todo.pop()
        schema = _twilio_v2010()["components"]["schemas"][name]
        schemas[name] = copy.deepcopy(schema)
        todo |= _refs(schema) - set(schemas)


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
    _v2010_schemas(doc)
    _sink_types(doc)  # per call: the registry can change (tests register types)
    # the tracking API's write key: Basic auth with the key as username and an empty password
    doc["components"]["securitySchemes"]["writeKey"] = {"type": "http", "scheme": "basic"}
    doc["servers"] = [{"url": base_url}]
    return doc
