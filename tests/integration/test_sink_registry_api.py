"""Sinks through the API and the dispatcher with the official twilio client, on SQLite and
PostgreSQL: the SSRF policy at creation and at delivery (findings 3 and 7), secret fields masked
in responses (finding 6), and a test-only sink type (the stub) served end to end."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from eventstreams.catalog import builtin_examples
from eventstreams.config import Settings
from eventstreams.sinks import registry, stub
from tests.conftest import Receiver, Server, own_server

DELIVERED = "com.twilio.messaging.message.delivered"
EXAMPLES = builtin_examples()["Messaging.MessageStatus"]
KINESIS = {
    "arn": "arn:aws:kinesis:us-east-1:111111111111:stream/s",
    "role_arn": "arn:aws:iam::111111111111:role/r",
    "external_id": "x",
}


@pytest.fixture(scope="module")
def strict_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the production defaults: no private destinations, no per-sink endpoint_url."""
    with own_server(backend, tmp_path_factory.mktemp(f"strict-{backend}"), allow_private_destinations=False) as srv:
        yield srv


def create_error(server: Server, sink_type: str, cfg: dict[str, Any]) -> str:
    client = server.client(*server.new_account())
    with pytest.raises(TwilioRestException) as caught:
        client.events.v1.sinks.create(description="d", sink_type=sink_type, sink_configuration=cfg)
    assert (caught.value.status, caught.value.code) == (400, 91000)
    return str(caught.value.msg)


def publish(server: Server, auth: tuple[str, str], n: int) -> None:
    events = [
        {"specversion": "1.0", "type": DELIVERED, "source": "/t", "id": f"EZ{i:032x}", "data": EXAMPLES[max(EXAMPLES)]}
        for i in range(n)
    ]
    r = requests.post(
        f"{server.url}/v1/Events",
        data=json.dumps(events),
        headers={"Content-Type": "application/cloudevents-batch+json"},
        auth=auth,
        timeout=10,
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("sink_type", "cfg"),
    [
        ("webhook", {"destination": "http://2130706433:8080/hook", "method": "POST"}),
        ("webhook", {"destination": "http://0x7f000001/hook", "method": "POST"}),
        ("webhook", {"destination": "http://0177.0.0.1/hook", "method": "POST"}),
        ("webhook", {"destination": "http://127.1/hook", "method": "POST"}),
        ("webhook", {"destination": "http://localhost./hook", "method": "POST"}),
        ("webhook", {"destination": "http://[64:ff9b::7f00:1]/hook", "method": "POST"}),
        ("webhook", {"destination": "http://[::127.0.0.1]/hook", "method": "POST"}),
        ("webhook", {"destination": "http://metadata.google.internal/computeMetadata/v1/", "method": "GET"}),
        ("segment", {"write_key": "wk", "endpoint": "http://169.254.169.254/latest"}),
        ("segment", {"write_key": "wk", "endpoint": "http://100.100.100.200/"}),
        # spellings the client's IDNA mapping turns into loopback / the metadata service
        ("segment", {"write_key": "wk", "endpoint": "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:8080"}),
        ("segment", {"write_key": "wk", "endpoint": "http://127\u30020\u30020\u30021:8080"}),
        ("segment", {"write_key": "wk", "endpoint": "http://\u2460\u2461\u2466.0.0.1/"}),
        ("webhook", {"destination": "http://\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14/", "method": "POST"}),
    ],
)
def test_creation_refuses_internal_destinations(strict_server: Server, sink_type: str, cfg: dict[str, Any]) -> None:
    message = create_error(strict_server, sink_type, cfg)
    assert "not a public address" in message and "EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS" in message


def test_creation_refuses_a_kinesis_endpoint_url_unless_the_operator_allows_it(strict_server: Server) -> None:
    """Finding 3: the endpoint would receive an STS AssumeRole signed with the operator's credentials."""
    message = create_error(strict_server, "kinesis", {**KINESIS, "endpoint_url": "https://kinesis.example.com"})
    assert "endpoint_url is not allowed on this server" in message
    assert "EVENTSTREAMS_ALLOW_SINK_ENDPOINT_URL" in message


def test_refused_destination_is_dead_lettered_at_once(strict_server: Server, receiver: Receiver) -> None:
    """A destination refused at connect time (here: a sink stored while private destinations were
    allowed) fails at once with 91307, instead of being retried for the 4-hour window, and the
    delivery log does not tell what the host resolves to."""
    server = strict_server
    account = server.new_account()
    control = server.services.control
    lenient = Settings(**{**control.settings.__dict__, "allow_private_destinations": True})
    strict, control.settings = control.settings, lenient
    try:
        client = server.client(*account)
        sink = client.events.v1.sinks.create(
            description="inward",
            sink_type="webhook",
            sink_configuration={"destination": receiver.url + "/in", "method": "POST", "batch_events": True},
        )
    finally:
        control.settings = strict
    client.events.v1.subscriptions.create(description="s", sink_sid=sink.sid, types=[{"type": DELIVERED}])
    publish(server, account, 2)
    url = f"{server.url}/v1/Sinks/{sink.sid}/DeadLetters"
    receiver.wait_for(lambda: len(requests.get(url, auth=account, timeout=5).json()["dead_letters"]) == 2)
    dead = requests.get(url, auth=account, timeout=5).json()["dead_letters"]
    assert {d["error_code"] for d in dead} == {91307} and {d["attempts"] for d in dead} == {1}
    assert all("not a public address" in d["error"] for d in dead)
    log = requests.get(f"{server.url}/v1/Sinks/{sink.sid}/Deliveries", auth=account, timeout=5).json()
    details = " ".join(str(x.get("detail")) for x in log["deliveries"])
    assert "not a public address" in details and "resolves to" not in details
    assert receiver.requests == []


def test_secrets_are_masked_after_creation(server: Server, account: tuple[str, str], receiver: Receiver) -> None:
    """Finding 6: the webhook's basic-auth password and Segment's write key are masked in every
    response, the creating one included; the sink keeps working with the sealed secret."""
    client = server.client(*account)
    destination = receiver.url.replace("http://", "http://hook-user:s3cr%40t@") + "/auth"
    hook = client.events.v1.sinks.create(
        description="hook",
        sink_type="webhook",
        sink_configuration={"destination": destination, "method": "POST", "batch_events": False},
    )
    segment = client.events.v1.sinks.create(
        description="seg", sink_type="segment", sink_configuration={"write_key": "wk_live_secret"}
    )
    masked_hook = receiver.url.replace("http://", "http://hook-user:****@") + "/auth"
    assert hook.sink_configuration["destination"] == masked_hook  # not echoed, even to its creator
    assert segment.sink_configuration == {"write_key": "****"}
    for shown in (
        client.events.v1.sinks(hook.sid).fetch(),
        client.events.v1.sinks(hook.sid).update(description="renamed"),
        next(s for s in client.events.v1.sinks.list() if s.sid == hook.sid),
    ):
        assert shown.sink_configuration == {"destination": masked_hook, "method": "POST", "batch_events": False}
    for shown in (
        client.events.v1.sinks(segment.sid).fetch(),
        client.events.v1.sinks(segment.sid).update(description="renamed"),
        next(s for s in client.events.v1.sinks.list() if s.sid == segment.sid),
    ):
        assert shown.sink_configuration == {"write_key": "****"}
    raw = requests.get(f"{server.url}/v1/Sinks", auth=account, timeout=5).text
    assert "s3cr" not in raw and "wk_live_secret" not in raw

    client.events.v1.subscriptions.create(description="s", sink_sid=hook.sid, types=[{"type": DELIVERED}])
    publish(server, account, 1)
    receiver.wait_for(lambda: len(receiver.events("/auth")) == 1)
    (request,) = [r for r in receiver.requests if r["path"].split("?")[0] == "/auth"]
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"hook-user:s3cr@t").decode()


def test_a_test_only_sink_type_is_served_end_to_end(server: Server, account: tuple[str, str]) -> None:
    """The stub type is registered by this test only: the API validates it, the OpenAPI document
    lists it and the dispatcher delivers to its sender, with no code outside its module knowing it."""
    name = f"stub-{account[0]}"
    sender = stub.prepare(name)
    with registry.registered(stub.SINK_TYPE):
        client = server.client(*account)
        with pytest.raises(TwilioRestException) as caught:
            client.events.v1.sinks.create(description="s", sink_type="stub", sink_configuration={"nam": name})
        assert caught.value.code == 91000 and "unknown sink_configuration field(s) for stub: nam" in caught.value.msg
        sink = client.events.v1.sinks.create(description="s", sink_type="stub", sink_configuration={"name": name})
        doc = requests.get(f"{server.url}/openapi.json", timeout=5).json()
        assert "stub" in doc["components"]["schemas"]["sink_enum_sink_type"]["enum"]
        client.events.v1.subscriptions.create(description="s", sink_sid=sink.sid, types=[{"type": DELIVERED}])
        publish(server, account, 3)
        assert sender.wait_for(3, timeout=30)
        assert sorted(e.id for e in sender.events) == [f"EZ{i:032x}" for i in range(3)]
