"""Checks on the event catalogue shipped as data in ``eventstreams/catalog/data``.

These tests read the JSON files directly, so they guard the data itself,
independently of the code that loads it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import validators
from jsonschema.exceptions import ValidationError

DATA = Path(__file__).resolve().parents[2] / "src" / "eventstreams" / "catalog" / "data"
SCHEMA_DIR = DATA / "schemas"
EXAMPLE_DIR = DATA / "examples"

STATUSES = {"available", "deprecated", "restricted", "discontinued"}
TYPE_KEYS = {
    "type",
    "schema_id",
    "description",
    "status",
    "documentation_url",
    "date_created",
    "date_updated",
    "segment_compatible",
}
ISO_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
TYPE_RE = re.compile(r"^com\.(twilio|segment\.tracking)(\.[a-z0-9_-]+)+$")  # Twilio's, and ours for Segment traffic
SCHEMA_ID_RE = re.compile(r"^[A-Za-z0-9]+\.[A-Za-z0-9]+$")


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


TYPES: list[dict[str, Any]] = _load(DATA / "types.json")
VERSIONS: dict[str, list[dict[str, Any]]] = _load(DATA / "schema_versions.json")
SCHEMA_VERSION_PAIRS = [(sid, entry["version"]) for sid, entries in VERSIONS.items() for entry in entries]


def _schema(schema_id: str, version: int) -> dict[str, Any]:
    return _load(SCHEMA_DIR / schema_id / f"{version}.json")


def _examples(schema_id: str) -> dict[str, Any]:
    return _load(EXAMPLE_DIR / f"{schema_id}.json")


def _validator(schema: dict[str, Any]) -> Any:
    cls = validators.validator_for(schema)
    return cls(schema)


# --------------------------------------------------------------------- types.json


def test_types_well_formed() -> None:
    assert isinstance(TYPES, list)
    assert len(TYPES) > 0
    for entry in TYPES:
        assert set(entry) == TYPE_KEYS, entry.get("type")
        assert TYPE_RE.match(entry["type"]), entry["type"]
        assert SCHEMA_ID_RE.match(entry["schema_id"]), entry["schema_id"]
        assert isinstance(entry["description"], str) and entry["description"]
        assert entry["status"] in STATUSES, entry["type"]
        url = entry["documentation_url"]
        assert url is None or url.startswith("https://www.twilio.com/docs/"), entry["type"]
        assert ISO_SECONDS.match(entry["date_created"]), entry["type"]
        assert ISO_SECONDS.match(entry["date_updated"]), entry["type"]
        assert entry["date_updated"] >= entry["date_created"], entry["type"]
        assert isinstance(entry["segment_compatible"], bool), entry["type"]


def test_types_unique_and_sorted() -> None:
    names = [entry["type"] for entry in TYPES]
    assert len(names) == len(set(names))
    assert names == sorted(names)


def test_every_status_is_represented() -> None:
    assert {entry["status"] for entry in TYPES} == STATUSES


@pytest.mark.parametrize(
    ("type_name", "schema_id", "status", "segment"),
    [
        ("com.twilio.messaging.message.delivered", "Messaging.MessageStatus", "available", True),
        ("com.twilio.messaging.message.read", "Messaging.MessageStatus", "available", True),
        ("com.twilio.messaging.inbound-message.received", "Messaging.InboundMessageV1", "available", True),
        ("com.twilio.voice.status-callback.call.completed", "Voice.WebhookEvent", "available", None),
        ("com.twilio.voice.webhook.status-callback.call.completed", "Voice.WebhookEvent", "deprecated", None),
        ("com.twilio.voice.insights.call-summary.complete", "VoiceInsights.CallSummary", "available", None),
        ("com.twilio.taskrouter.task.created", "TaskRouter.WDSEvent", "available", None),
        ("com.twilio.conversations.delivery.updated", None, "discontinued", None),
        ("com.twilio.error-logs.error.logged", "ErrorLogs.Error", "available", None),
        ("com.twilio.iot.supersim.connection.data-session.started", None, "discontinued", None),
        ("com.twilio.engagement-intelligence.transcript.finished", None, "restricted", None),
        ("com.twilio.eventstreams.test-event", "EventStreams.TestSink", "available", None),
    ],
)
def test_known_types(type_name: str, schema_id: str | None, status: str, segment: bool | None) -> None:
    by_type = {entry["type"]: entry for entry in TYPES}
    assert type_name in by_type
    entry = by_type[type_name]
    if schema_id is not None:
        assert entry["schema_id"] == schema_id
    assert entry["status"] == status
    if segment is not None:
        assert entry["segment_compatible"] is segment


def test_twiml_requested_is_not_listed() -> None:
    # The API rejects this type even though some docs list it.
    assert "com.twilio.voice.twiml.requested" not in {entry["type"] for entry in TYPES}


# --------------------------------------------------------------------- schema_versions.json and files


def test_every_referenced_schema_has_versions() -> None:
    referenced = {entry["schema_id"] for entry in TYPES}
    assert referenced <= set(VERSIONS)
    for schema_id in referenced:
        assert VERSIONS[schema_id][0]["version"] == 1, schema_id


def test_no_unreferenced_schemas() -> None:
    assert set(VERSIONS) == {entry["schema_id"] for entry in TYPES}


def test_versions_ascending_and_dated() -> None:
    for schema_id, entries in VERSIONS.items():
        numbers = [entry["version"] for entry in entries]
        assert numbers == list(range(1, len(numbers) + 1)), schema_id
        dates = [entry["date_created"] for entry in entries]
        assert all(ISO_SECONDS.match(d) for d in dates), schema_id
        assert dates == sorted(dates), schema_id
        for entry in entries:
            assert set(entry) == {"version", "date_created"}, schema_id


def test_version_files_exist_and_no_strays() -> None:
    expected = {f"{sid}/{version}.json" for sid, version in SCHEMA_VERSION_PAIRS}
    actual = {p.relative_to(SCHEMA_DIR).as_posix() for p in SCHEMA_DIR.rglob("*") if p.is_file()}
    assert actual == expected
    examples = {p.name for p in EXAMPLE_DIR.iterdir() if p.is_file()}
    assert examples == {f"{sid}.json" for sid in VERSIONS}


# --------------------------------------------------------------------- schema documents


@pytest.mark.parametrize(("schema_id", "version"), SCHEMA_VERSION_PAIRS)
def test_schema_document_is_valid(schema_id: str, version: int) -> None:
    schema = _schema(schema_id, version)
    validators.validator_for(schema).check_schema(schema)
    assert schema["$schema"] in {
        "http://json-schema.org/draft-07/schema#",
        "https://json-schema.org/draft/2020-12/schema",
    }
    # Twilio's schemas keep Twilio's public URL; ours for Segment traffic are served by the server itself.
    host = "urn:eventstreams:schemas:" if schema_id.startswith("Segment.") else "https://events-schemas.twilio.com/"
    assert schema["$id"] == f"{host}{schema_id}/{version}"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is True
    assert isinstance(schema["title"], str) and schema["title"]
    properties = schema["properties"]
    assert properties
    for name, prop in properties.items():
        assert isinstance(prop.get("description"), str) and prop["description"], (schema_id, version, name)
    assert set(schema["required"]) <= set(properties), (schema_id, version)


@pytest.mark.parametrize(("schema_id", "version"), SCHEMA_VERSION_PAIRS)
def test_later_versions_do_not_drop_fields(schema_id: str, version: int) -> None:
    if version == 1:
        return
    previous = set(_schema(schema_id, version - 1)["properties"])
    current = set(_schema(schema_id, version)["properties"])
    assert previous <= current, (schema_id, version, previous - current)


# --------------------------------------------------------------------- examples


@pytest.mark.parametrize(("schema_id", "version"), SCHEMA_VERSION_PAIRS)
def test_example_validates(schema_id: str, version: int) -> None:
    examples = _examples(schema_id)
    assert set(examples) == {str(entry["version"]) for entry in VERSIONS[schema_id]}
    example = examples[str(version)]
    schema = _schema(schema_id, version)
    _validator(schema).validate(example)
    # Examples carry only the fields that version declares, so version projection is observable.
    assert set(example) <= set(schema["properties"]), (schema_id, version)


@pytest.mark.parametrize(("schema_id", "version"), SCHEMA_VERSION_PAIRS)
def test_example_missing_required_field_fails(schema_id: str, version: int) -> None:
    schema = _schema(schema_id, version)
    assert schema["required"], (schema_id, version)
    validator = _validator(schema)
    for field in schema["required"]:
        broken = dict(_examples(schema_id)[str(version)])
        del broken[field]
        with pytest.raises(ValidationError):
            validator.validate(broken)


def test_example_with_wrong_type_fails() -> None:
    schema = _schema("Messaging.MessageStatus", 2)
    broken = dict(_examples("Messaging.MessageStatus")["2"])
    broken["errorCode"] = "30003"
    with pytest.raises(ValidationError):
        _validator(schema).validate(broken)


def test_example_sids_and_numbers_look_real() -> None:
    example = _examples("Messaging.MessageStatus")["1"]
    for key, prefix in (("accountSid", "AC"), ("messageSid", "SM"), ("messagingServiceSid", "MG")):
        assert re.fullmatch(prefix + r"[0-9a-f]{32}", example[key]), key
    for key in ("from", "to"):
        assert re.fullmatch(r"\+[1-9]\d{6,14}", example[key]), key
    call = _examples("Voice.WebhookEvent")["1"]
    assert re.fullmatch(r"CA[0-9a-f]{32}", call["sid"])


# --------------------------------------------------------------------- specific schema facts


def test_message_status_has_several_distinct_versions() -> None:
    entries = VERSIONS["Messaging.MessageStatus"]
    assert len(entries) >= 3
    field_sets = [frozenset(_schema("Messaging.MessageStatus", e["version"])["properties"]) for e in entries]
    assert len(set(field_sets)) >= 3
    first, last = field_sets[0], field_sets[-1]
    assert {"errorCode", "body", "mcc", "mnc", "numberOfSegments"} <= last - first
    v1 = _schema("Messaging.MessageStatus", 1)
    must = {"accountSid", "eventName", "apiVersion", "timestamp", "messageSid", "messageStatus"}
    assert set(v1["required"]) >= must


@pytest.mark.parametrize(
    ("schema_id", "field"),
    [("Messaging.MessageStatus", "to"), ("Messaging.InboundMessageV1", "from")],
)
def test_phone_identity_annotation(schema_id: str, field: str) -> None:
    for entry in VERSIONS[schema_id]:
        prop = _schema(schema_id, entry["version"])["properties"][field]
        assert prop.get("identityType") == "phone", (schema_id, entry["version"])


def test_test_event_schema_requires_test_id() -> None:
    assert [e["version"] for e in VERSIONS["EventStreams.TestSink"]] == [1]
    schema = _schema("EventStreams.TestSink", 1)
    assert "test_id" in schema["required"]
    assert schema["properties"]["test_id"]["type"] == "string"
    validator = _validator(schema)
    validator.validate({"test_id": "cae2f9e2-c277-4612-8ad3-93c1a7a3ef88"})
    with pytest.raises(ValidationError):
        validator.validate({})
