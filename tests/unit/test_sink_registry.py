"""The sink registry: declarative fields drive validation, OpenAPI and redaction; a new type
needs only its own module (here: declared in the test), the registry list and tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from eventstreams.api.app import surfaces
from eventstreams.api.openapi import openapi_document
from eventstreams.config import Settings
from eventstreams.delivery.dispatcher import destination_of
from eventstreams.delivery.policy import RetryPolicy, error_code
from eventstreams.delivery.service import dispatcher_config
from eventstreams.errors import TwilioError
from eventstreams.outcome import Outcome
from eventstreams.sinks import UnsupportedSink, create_sender, registry, stub
from eventstreams.sinks.base import NoPacer, OutgoingEvent, Pacer, SinkContext, SinkSender
from eventstreams.sinks.spec import MASK, ConfigOptions, Field, SinkType, fail

OPTIONS = ConfigOptions()
KINESIS = {
    "arn": "arn:aws:kinesis:us-east-1:111111111111:stream/s",
    "role_arn": "arn:aws:iam::111111111111:role/r",
    "external_id": "x",
}


def error(sink_type: str, cfg: Any, options: ConfigOptions = OPTIONS) -> str:
    with pytest.raises(TwilioError) as caught:
        registry.validate(sink_type, cfg, options)
    assert caught.value.code == 91000 and caught.value.status == 400
    return caught.value.message


# -- a throwaway type: touches nothing outside its declaration ---------------------------------


class PigeonSender(SinkSender):
    def __init__(self, ctx: SinkContext) -> None:
        self.ctx = ctx

    async def send(self, events: Sequence[OutgoingEvent], pacer: Pacer) -> list[Outcome]:
        return [Outcome.success() for _ in events]


def _loft(cfg: dict[str, Any], options: ConfigOptions) -> None:
    if cfg["loft"] == "nowhere":
        raise fail("sink_configuration.loft must be somewhere")


PIGEON = SinkType(
    name="pigeon",
    description="Carrier pigeons.",
    fields=(
        Field("loft", "string", "Where the birds live.", required=True),
        Field("band_code", "string", "The leg band's code.", required=True, secret=True),
        Field("birds", "integer", "How many.", minimum=1, maximum=12, extension=True),
    ),
    sender=PigeonSender,
    destination=lambda cfg, defaults: f"loft {cfg['loft']}",
    request_method=lambda cfg: "FLY",
    check=_loft,
)


def test_a_new_type_is_known_everywhere_once_registered() -> None:
    cfg = {"loft": "roof", "band_code": "s3cret", "birds": 3}
    assert "pigeon" not in registry.names()
    assert "sink_type must be one of" in error("pigeon", cfg)
    with registry.registered(PIGEON):
        # API validation (the control plane calls registry.validate)
        assert registry.validate("pigeon", cfg, OPTIONS) == cfg
        assert "band_code is required for pigeon sinks" in error("pigeon", {"loft": "roof"})
        assert "birds must be an integer from 1 to 12" in error("pigeon", {**cfg, "birds": 40})
        assert "loft must be somewhere" in error("pigeon", {**cfg, "loft": "nowhere"})
        assert "unknown sink_configuration field(s) for pigeon: wings" in error("pigeon", {**cfg, "wings": 2})
        # OpenAPI: the enum and the configuration schema
        doc = openapi_document("http://x", surfaces())
        schemas = doc["components"]["schemas"]
        assert "pigeon" in schemas["sink_enum_sink_type"]["enum"]
        pigeon = schemas["sink_configuration_pigeon"]
        assert pigeon["required"] == ["loft", "band_code"]
        assert pigeon["properties"]["band_code"]["x-eventstreams-secret"] is True
        assert pigeon["properties"]["birds"] == {
            "type": "integer",
            "description": "How many.",
            "minimum": 1,
            "maximum": 12,
            "x-eventstreams-extension": True,
        }
        # redaction, the dispatcher's destination text, alerts' request_method, the sender
        assert registry.redact("pigeon", cfg) == {**cfg, "band_code": MASK}
        assert destination_of("pigeon", cfg, "https://api.segment.io") == "loft roof"
        assert registry.request_method("pigeon", cfg) == "FLY"
        ctx = SinkContext("DG1", "AC1", "pigeon", cfg, "token", "whsec_x")
        assert isinstance(create_sender(ctx), PigeonSender)
    assert "pigeon" not in registry.names()
    assert "pigeon" not in openapi_document("http://x", surfaces())["components"]["schemas"]["sink_enum_sink_type"]["enum"]
    with pytest.raises(UnsupportedSink):
        create_sender(SinkContext("DG1", "AC1", "pigeon", cfg, "token", "whsec_x"))


def test_builtin_types_in_order() -> None:
    assert registry.names() == ["kinesis", "webhook", "segment", "twilio-sms"]
    assert error("email", {"to": "x"}) == (
        "Sink could not be created: sink_type must be one of kinesis, webhook, segment, twilio-sms (got 'email')"
    )


# -- array and object fields: the JSON type here, the contents in the type's check hook --------


def _routes(cfg: dict[str, Any], options: ConfigOptions) -> None:
    for i, route in enumerate(cfg["routes"]):
        if not isinstance(route, dict) or not isinstance(route.get("to"), str):
            raise fail(f"sink_configuration.routes[{i}].to must be a string")


FLOCK = SinkType(
    name="flock",
    description="Many pigeons.",
    fields=(
        Field("routes", "array", "Where to fly.", required=True, minimum=1, maximum=3,
              items={"type": "object", "properties": {"to": {"type": "string"}}}),
        Field("labels", "object", "Free-form labels.", properties={"colour": {"type": "string"}}),
    ),
    sender=PigeonSender,
    destination=lambda cfg, defaults: "the sky",
    check=_routes,
)  # fmt: skip


def test_array_and_object_fields_validate_their_json_type_and_leave_contents_to_the_check() -> None:
    ok = {"routes": [{"to": "north"}], "labels": {"colour": "grey"}}
    with registry.registered(FLOCK):
        assert registry.validate("flock", ok, OPTIONS) == ok
        assert "routes must be a JSON array" in error("flock", {"routes": {"to": "north"}})
        assert "routes must hold from 1 to 3 items" in error("flock", {"routes": []})
        assert "routes must hold from 1 to 3 items" in error("flock", {"routes": [{"to": "x"}] * 4})
        assert "routes[1].to must be a string" in error("flock", {"routes": [{"to": "x"}, {"to": 5}]})
        assert "labels must be a JSON object" in error("flock", {**ok, "labels": ["grey"]})
        schema = openapi_document("http://x", surfaces())["components"]["schemas"]
        config = next(v for k, v in schema.items() if v.get("title") == "flock sink configuration")
        routes = config["properties"]["routes"]
        assert routes["type"] == "array" and routes["minItems"] == 1 and routes["maxItems"] == 3
        assert routes["items"]["properties"]["to"] == {"type": "string"}
        assert "minimum" not in routes and "minLength" not in routes
        labels = config["properties"]["labels"]
        assert labels["type"] == "object" and labels["properties"] == {"colour": {"type": "string"}}


# -- validation keeps today's messages ---------------------------------------------------------


@pytest.mark.parametrize(
    ("sink_type", "cfg", "message"),
    [
        ("webhook", [], "sink_configuration must be a non-empty JSON object"),
        ("webhook", {}, "sink_configuration must be a non-empty JSON object"),
        ("webhook", {"method": "POST"}, "sink_configuration.destination is required for webhook sinks"),
        ("webhook", {"destination": "https://h.example/", "method": "PUT"}, "method must be POST or GET"),
        ("webhook", {"destination": 5, "method": "POST"}, "destination must be a string"),
        ("webhook", {"destination": "ftp://h.example/", "method": "POST"}, "must be an http or https URL"),
        ("webhook", {"destination": "https://h.example/" + "a" * 2048, "method": "POST"}, "too long"),
        (
            "webhook",
            {"destination": "https://h.example/", "method": "POST", "batch_events": "maybe"},
            "batch_events must be a boolean",
        ),
        (
            "webhook",
            {"destination": "https://h.example/", "method": "POST", "standard_webhooks": "true"},
            "standard_webhooks must be a boolean",
        ),
        ("kinesis", {**KINESIS, "arn": "arn:aws:s3:::b"}, "arn must be a Kinesis stream ARN"),
        ("kinesis", {**KINESIS, "role_arn": "role"}, "role_arn must be an IAM role ARN"),
        # a trailing newline passed re.match's "$" and then failed at AWS, retried for hours
        ("kinesis", {**KINESIS, "arn": KINESIS["arn"] + "\n"}, "arn must be a Kinesis stream ARN"),
        ("kinesis", {**KINESIS, "role_arn": KINESIS["role_arn"] + "\n"}, "role_arn must be an IAM role ARN"),
        ("kinesis", {**KINESIS, "partition_key": ""}, "partition_key is required for kinesis sinks"),
        ("kinesis", {**KINESIS, "data_as_string": 1}, "data_as_string must be a boolean"),
        ("segment", {"endpoint": "https://e.example"}, "write_key is required for segment sinks"),
    ],
)
def test_validation_messages(sink_type: str, cfg: Any, message: str) -> None:
    assert message in error(sink_type, cfg)


def test_webhook_normalisation() -> None:
    cfg = registry.validate("webhook", {"destination": "https://h.example/", "method": "get"}, OPTIONS)
    assert cfg == {"destination": "https://h.example/", "method": "GET", "batch_events": False}
    cfg = registry.validate(
        "webhook", {"destination": "https://h.example/", "method": "POST", "batch_events": "TRUE"}, OPTIONS
    )
    assert cfg["batch_events"] is True


def test_kinesis_endpoint_url_needs_the_operator() -> None:
    """Finding 3: a tenant's endpoint_url would receive STS calls signed with the operator's credentials."""
    cfg = {**KINESIS, "endpoint_url": "https://kinesis.example.com"}
    message = error("kinesis", cfg, ConfigOptions(allow_private=True))
    assert "endpoint_url is not allowed on this server" in message and "EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL" in message
    assert registry.validate("kinesis", cfg, ConfigOptions(allow_sink_endpoint_url=True)) == cfg
    # even when allowed, the SSRF policy applies
    inward = {**cfg, "endpoint_url": "http://2130706433:4566"}
    assert "not a public address" in error("kinesis", inward, ConfigOptions(allow_sink_endpoint_url=True))


# -- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "shown"),
    [
        ("https://user:pa%40ss@hooks.example.com/x?y=1", "https://user:****@hooks.example.com/x?y=1"),
        ("https://user:@hooks.example.com/x", "https://user:****@hooks.example.com/x"),
        ("https://token@hooks.example.com/x", "https://token@hooks.example.com/x"),
        ("https://hooks.example.com:8443/x", "https://hooks.example.com:8443/x"),
    ],
)
def test_webhook_password_masked(destination: str, shown: str) -> None:
    cfg = {"destination": destination, "method": "POST", "batch_events": False}
    assert registry.redact("webhook", cfg) == {**cfg, "destination": shown}


def test_segment_write_key_masked_and_unknown_types_show_nothing() -> None:
    assert registry.redact("segment", {"write_key": "wk_live"}) == {"write_key": MASK}
    assert registry.redact("kinesis", KINESIS) == KINESIS
    assert registry.redact("gone", {"anything": "secret"}) == {}


def test_destination_and_method_of_builtin_types() -> None:
    hook = {"destination": "https://u:p@hooks.example.com/x", "method": "get"}
    assert destination_of("webhook", hook, "https://api.segment.io") == "https://hooks.example.com/x"
    assert registry.request_method("webhook", hook) == "GET"
    assert destination_of("kinesis", KINESIS, "https://api.segment.io") == KINESIS["arn"]
    assert registry.request_method("kinesis", KINESIS) == "POST"
    assert destination_of("segment", {"write_key": "k"}, "https://seg.example") == "https://seg.example"
    assert destination_of("segment", {"write_key": "k", "endpoint": "https://e.example"}, "x") == "https://e.example"
    assert destination_of("gone", {}, "x") == "gone"


# -- the stub sink -----------------------------------------------------------------------------


def event(i: int) -> OutgoingEvent:
    return OutgoingEvent(f"EZ{i:032x}", "t", b"{}")


async def test_stub_records_and_answers_as_scripted() -> None:
    stub.SENDERS.clear()
    down = Outcome.connect_error("down")
    prepared = stub.prepare("s1", Outcome.success(), down)
    with registry.registered(stub.SINK_TYPE):
        assert registry.validate("stub", {"name": "s1"}, OPTIONS) == {"name": "s1"}
        sender = create_sender(SinkContext("DG1", "AC1", "stub", {"name": "s1"}, "t", "whsec_x"))
        assert sender is prepared
        outcomes = await sender.send([event(1), event(2), event(3)], NoPacer())
        assert outcomes == [Outcome.success(), down, Outcome.success(200)]
        prepared.then(lambda e: Outcome.dropped(e.id))
        assert (await sender.send([event(4)], NoPacer()))[0] == Outcome.dropped(event(4).id)
        assert [e.id for e in prepared.events] == [event(i).id for i in range(1, 5)]
        assert prepared.wait_for(4, timeout=0)
        decision = RetryPolicy().decide(down, attempt=1, first_attempt_at=0.0, now=0.0)
        assert decision.is_retry and error_code(down) == 91307
    assert "stub" not in registry.names()


def test_registered_restores_a_replaced_type() -> None:
    original = registry.get("webhook")

    def only_example(cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
        return "example"

    replaced = SinkType("webhook", "x", (), PigeonSender, only_example)
    with registry.registered(replaced):
        assert registry.get("webhook") is replaced
    assert registry.get("webhook") is original


def test_the_endpoint_url_setting_reaches_the_dispatcher() -> None:
    assert Settings.from_env({}).allow_sink_endpoint_url is False
    on = Settings.from_env({"EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL": "true"})
    assert on.allow_sink_endpoint_url is True and dispatcher_config(on).allow_sink_endpoint_url is True
