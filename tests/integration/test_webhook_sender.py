"""WebhookSender against a real local HTTP receiver (aiohttp.web on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator
from yarl import URL

from eventstreams import __version__
from eventstreams.delivery.policy import Outcome, OutcomeKind, error_code, is_retryable
from eventstreams.errors import TwilioError
from eventstreams.netpolicy import DestinationRefused
from eventstreams.sinks import UnsupportedSink, create_sender, registry, webhook
from eventstreams.sinks.base import NoPacer, OutgoingEvent, SinkContext
from eventstreams.sinks.http import HttpClient, outcome_for_exception
from eventstreams.sinks.signing import new_standard_webhook_secret, validate_twilio_json_signature
from eventstreams.sinks.spec import ConfigOptions
from eventstreams.sinks.webhook import WebhookSender
from tests.pacing import RecordingPacer

TOKEN = "12345abcdef"
SECRET = new_standard_webhook_secret()


@dataclass
class Recorded:
    method: str
    host: str
    raw_path: str
    headers: dict[str, str]
    body: bytes

    @property
    def url(self) -> str:
        """The full URL as a receiver reconstructs it for signature checks."""
        return f"http://{self.host}{self.raw_path}"


@dataclass
class Receiver:
    port: int
    requests: list[Recorded] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def url(self, path: str = "/ok", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(port=0)

    async def handle(request: web.Request) -> web.StreamResponse:
        state.requests.append(
            Recorded(request.method, request.host, request.raw_path, dict(request.headers), await request.read())
        )
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            path = request.path
            if path == "/slow":
                await asyncio.sleep(5)
            elif path == "/busy":
                await asyncio.sleep(0.1)
            elif path == "/busy-odd-refused":  # 404 for an odd event number (the token's last digit)
                await asyncio.sleep(0.05)
                if int(request.headers["I-Twilio-Idempotency-Token"][-1], 16) % 2:
                    return web.Response(status=404, text="odd")
            if path == "/notfound":
                return web.Response(status=404, text="no such hook")
            if path == "/throttle":
                return web.Response(status=429, headers={"Retry-After": "7"}, text="slow down")
            if path == "/down":
                return web.Response(status=503, text="x" * 100_000)
            if path == "/forge":
                return web.Response(status=500, text="oops\nINFO forged log line\r\n\x1b[31m\u2028x")
            if path == "/redirect":
                return web.Response(status=302, headers={"Location": f"http://127.0.0.1:{state.port}/ok"})
            return web.Response(text="ok")
        finally:
            state.in_flight -= 1

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    # handler_cancellation: the /slow handler stops when the client gives up, so teardown is quick
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        await runner.cleanup()


def make_event(i: int, **extra: Any) -> OutgoingEvent:
    event_id = f"EZ{i:032x}"
    doc = {
        "specversion": "1.0",
        "type": "com.twilio.messaging.message.sent",
        "source": f"/2010-04-01/Accounts/AC1/Messages/SM{i}.json",
        "id": event_id,
        "dataschema": "https://events-schemas.twilio.com/Messaging.MessageStatus/7",
        "datacontenttype": "application/json",
        "time": "2026-03-29T04:00:56.753Z",
        **extra,
        "data": {"messageSid": f"SM{i}", "body": "héllo & bye", "n": i},
    }
    # Unusual spacing: proves the sender does not re-serialise payloads.
    return OutgoingEvent(event_id, str(doc["type"]), json.dumps(doc, indent=1).encode())


def make_events(n: int) -> list[OutgoingEvent]:
    return [make_event(i) for i in range(n)]


def make_sender(
    destination: str,
    *,
    allow_private: bool = True,
    timeout: float = 0.5,
    max_in_flight: int = 32,
    resolver: Any = None,
    **config: Any,
) -> WebhookSender:
    ctx = SinkContext(
        sid="DG" + "0" * 32,
        account_sid="AC" + "0" * 32,
        sink_type="webhook",
        configuration={"destination": destination, "method": "POST", "batch_events": False, **config},
        auth_token=TOKEN,
        signing_secret=SECRET,
        allow_private=allow_private,
        timeout=timeout,
        max_in_flight=max_in_flight,
    )
    return WebhookSender(ctx, resolver=resolver)


async def deliver(sender: WebhookSender, events: Iterable[OutgoingEvent], pacer: Any = None) -> list[Outcome]:
    try:
        return await sender.send(list(events), pacer or NoPacer())
    finally:
        await sender.close()


def assert_twilio_signed_post(req: Recorded) -> None:
    signature = req.headers["X-Twilio-Signature"]
    assert RequestValidator(TOKEN).validate(req.url, req.body.decode(), signature)
    assert validate_twilio_json_signature(req.url, req.body, signature, TOKEN)


# -- POST bodies and batching ------------------------------------------------------------------


async def test_batched_post_splits_into_arrays(receiver: Receiver) -> None:
    events = make_events(5)
    pacer = RecordingPacer()
    outcomes = await deliver(
        make_sender(receiver.url(), batch_events=True, batch_max_events=2, max_in_flight=1), events, pacer
    )

    assert [o.kind for o in outcomes] == [OutcomeKind.SUCCESS] * 5
    assert [len(json.loads(r.body)) for r in receiver.requests] == [2, 2, 1]
    expected = [b"[" + b",".join(e.payload for e in events[i : i + 2]) + b"]" for i in (0, 2, 4)]
    assert [r.body for r in receiver.requests] == expected  # exact bytes, no re-serialisation
    assert pacer.waits == [2, 2, 1]
    assert len(pacer.observed) == 3
    tokens = [r.headers["I-Twilio-Idempotency-Token"] for r in receiver.requests]
    assert all(t.startswith("batch-") for t in tokens) and len(set(tokens)) == 3
    for req in receiver.requests:
        assert req.method == "POST"
        assert req.headers["Content-Type"] == "application/json"
        assert req.headers["User-Agent"] == f"eventstreams/{__version__}"
        assert req.headers["webhook-id"] == req.headers["I-Twilio-Idempotency-Token"]
        assert_twilio_signed_post(req)


async def test_batch_token_is_stable_across_retries(receiver: Receiver) -> None:
    events = make_events(3)
    await deliver(make_sender(receiver.url(), batch_events=True), events)
    await deliver(make_sender(receiver.url(), batch_events=True), events)
    first, second = (r.headers["I-Twilio-Idempotency-Token"] for r in receiver.requests)
    assert first == second


async def test_batch_default_max_is_100(receiver: Receiver) -> None:
    outcomes = await deliver(make_sender(receiver.url(), batch_events=True), make_events(150))
    assert len(outcomes) == 150
    assert sorted(len(json.loads(r.body)) for r in receiver.requests) == [50, 100]


async def test_unbatched_post_sends_bare_objects(receiver: Receiver) -> None:
    events = make_events(3)
    pacer = RecordingPacer()
    outcomes = await deliver(make_sender(receiver.url()), events, pacer)

    assert all(o.kind is OutcomeKind.SUCCESS and o.status == 200 for o in outcomes)
    by_token = {r.headers["I-Twilio-Idempotency-Token"]: r for r in receiver.requests}
    assert set(by_token) == {e.id for e in events}
    for event in events:
        req = by_token[event.id]
        assert req.body == event.payload
        assert isinstance(json.loads(req.body), dict)  # not wrapped in an array
        assert req.headers["webhook-id"] == event.id
        assert_twilio_signed_post(req)
    assert pacer.waits == [1, 1, 1]
    assert len(pacer.observed) == 3


async def test_signature_auth_and_standard_webhooks(receiver: Receiver) -> None:
    destination = f"http://alice:p%40ss@127.0.0.1:{receiver.port}/hook/a~b%7E?foo=1&bar=a%20b"
    event = make_event(1)
    outcomes = await deliver(make_sender(destination), [event])
    assert outcomes[0].kind is OutcomeKind.SUCCESS

    (req,) = receiver.requests
    # credentials only in Authorization, never in the request line, Host or signed URL
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"alice:p@ss").decode()
    assert "alice" not in req.raw_path and "alice" not in req.host and "@" not in req.url
    # the destination's path and query arrive byte for byte, bodySHA256 appended
    assert req.raw_path.startswith("/hook/a~b%7E?foo=1&bar=a%20b&bodySHA256=")
    assert_twilio_signed_post(req)
    assert not RequestValidator("wrong-token").validate(req.url, req.body.decode(), req.headers["X-Twilio-Signature"])
    assert Webhook(SECRET).verify(req.body, req.headers) == json.loads(event.payload)


async def test_standard_webhooks_can_be_disabled(receiver: Receiver) -> None:
    await deliver(make_sender(receiver.url(), standard_webhooks=False), make_events(1))
    (req,) = receiver.requests
    assert not {"webhook-id", "webhook-timestamp", "webhook-signature"} & {k.lower() for k in req.headers}
    assert "Authorization" not in req.headers
    assert_twilio_signed_post(req)


# -- GET ---------------------------------------------------------------------------------------


async def test_get_encodes_attributes_as_query(receiver: Receiver) -> None:
    events = [make_event(1, traceparent="00-abc-01", sequence=7, flag=True, nested={"x": 1}), make_event(2)]
    pacer = RecordingPacer()
    # batch_events is ignored for GET: one request per event
    outcomes = await deliver(make_sender(receiver.url("/get?k=v"), method="GET", batch_events=True), events, pacer)
    assert [o.kind for o in outcomes] == [OutcomeKind.SUCCESS] * 2
    assert pacer.waits == [1, 1]

    by_token = {r.headers["I-Twilio-Idempotency-Token"]: r for r in receiver.requests}
    req = by_token[events[0].id]
    assert req.method == "GET" and req.body == b""
    assert "Content-Type" not in req.headers
    assert req.raw_path.startswith("/get?k=v&")
    params = dict(parse_qsl(urlsplit(req.raw_path).query, keep_blank_values=True, strict_parsing=True))
    source = json.loads(events[0].payload)
    assert params == {
        "k": "v",
        "specversion": "1.0",
        "type": source["type"],
        "source": source["source"],
        "id": source["id"],
        "time": source["time"],
        "dataschema": source["dataschema"],
        "datacontenttype": "application/json",
        "traceparent": "00-abc-01",
        "sequence": "7",
        "flag": "true",
        "data": json.dumps(source["data"], separators=(",", ":"), ensure_ascii=False),
    }
    assert json.loads(params["data"]) == source["data"]
    names = [pair.split("=", 1)[0] for pair in urlsplit(req.raw_path).query.split("&")[1:]]
    assert names == sorted(names)

    for r in receiver.requests:
        assert "bodySHA256" not in r.raw_path
        assert RequestValidator(TOKEN).validate(r.url, {}, r.headers["X-Twilio-Signature"])
        Webhook(SECRET).verify(b"", r.headers, json_parse=False)


async def test_get_with_unparsable_payload_is_dropped(receiver: Receiver) -> None:
    bad = OutgoingEvent("EZbad", "t", b"not json")
    pacer = RecordingPacer()
    outcomes = await deliver(make_sender(receiver.url(), method="GET"), [bad, make_event(1)], pacer)
    assert [o.kind for o in outcomes] == [OutcomeKind.DROPPED, OutcomeKind.SUCCESS]
    assert len(receiver.requests) == 1
    assert pacer.waits == [1]


# -- outcome classification --------------------------------------------------------------------


async def test_404_is_not_retried(receiver: Receiver) -> None:
    (outcome,) = await deliver(make_sender(receiver.url("/notfound")), make_events(1))
    assert outcome.kind is OutcomeKind.HTTP_STATUS and outcome.status == 404
    assert error_code(outcome) == 91305 and not is_retryable(outcome)
    assert outcome.message == "no such hook"


async def test_429_keeps_retry_after(receiver: Receiver) -> None:
    pacer = RecordingPacer()
    outcomes = await deliver(make_sender(receiver.url("/throttle"), batch_events=True), make_events(3), pacer)
    assert len(outcomes) == 3 and len(set(outcomes)) == 1  # every event gets the request's outcome
    assert outcomes[0].status == 429 and outcomes[0].retry_after == "7"
    assert error_code(outcomes[0]) == 91302 and is_retryable(outcomes[0])
    assert pacer.observed == [outcomes[0]]


async def test_503_is_retried_with_bounded_excerpt(receiver: Receiver) -> None:
    (outcome,) = await deliver(make_sender(receiver.url("/down")), make_events(1))
    assert outcome.status == 503 and error_code(outcome) == 91306 and is_retryable(outcome)
    assert 0 < len(outcome.message) <= 512


async def test_redirect_is_not_followed(receiver: Receiver) -> None:
    (outcome,) = await deliver(make_sender(receiver.url("/redirect")), make_events(1))
    assert outcome.kind is OutcomeKind.HTTP_STATUS and outcome.status == 302
    assert not is_retryable(outcome)
    assert [r.raw_path.split("?")[0] for r in receiver.requests] == ["/redirect"]


async def test_response_body_cannot_forge_log_lines(receiver: Receiver) -> None:
    (outcome,) = await deliver(make_sender(receiver.url("/forge")), make_events(1))
    assert outcome.status == 500
    assert outcome.message == "oops\\nINFO forged log line\\r\\n\\x1b[31m\\u2028x"
    assert not any(c in outcome.describe() for c in "\r\n\x1b\u2028")


async def test_slow_endpoint_times_out(receiver: Receiver) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    (outcome,) = await deliver(make_sender(receiver.url("/slow"), timeout=0.3), make_events(1))
    assert outcome.kind is OutcomeKind.TIMEOUT and error_code(outcome) == 91308
    assert loop.time() - started < 2


async def test_closed_port_is_connect_error(receiver: Receiver, unused_tcp_port: int) -> None:
    (outcome,) = await deliver(make_sender(f"http://127.0.0.1:{unused_tcp_port}/"), make_events(1))
    assert outcome.kind is OutcomeKind.CONNECT_ERROR and error_code(outcome) == 91307
    assert is_retryable(outcome)


async def test_untrusted_certificate_is_tls_error(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl)
    await site.start()
    try:
        port = runner.addresses[0][1]
        (outcome,) = await deliver(make_sender(f"https://127.0.0.1:{port}/h"), make_events(1))
    finally:
        await runner.cleanup()
    assert outcome.kind is OutcomeKind.TLS_ERROR and error_code(outcome) == 91307
    assert "certificate" in outcome.message.lower()
    assert hits == []


# -- SSRF guard --------------------------------------------------------------------------------


async def test_private_literal_is_refused(receiver: Receiver) -> None:
    pacer = RecordingPacer()
    outcomes = await deliver(make_sender(receiver.url(), allow_private=False), make_events(2), pacer)
    assert [o.kind for o in outcomes] == [OutcomeKind.CONNECT_ERROR] * 2
    assert "refused" in outcomes[0].message and "not a public address" in outcomes[0].message
    # a refused destination will not become public by waiting: dead-lettered at once, 91307
    assert not is_retryable(outcomes[0]) and error_code(outcomes[0]) == 91307
    assert receiver.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1", "\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127\u30020\u30020\u30021"])
async def test_http_client_judges_the_url_it_sends(receiver: Receiver, host: str) -> None:
    # The one send path checks the literal host of the URL object itself (no resolver runs for a
    # literal), so no sender needs its own precomputed refusal.
    client = HttpClient(allow_private=False, timeout=5, max_in_flight=1)
    try:
        with pytest.raises(DestinationRefused, match="not a public address"):
            async with client.request("GET", URL(receiver.url(host=host))):
                pass
        outcome = outcome_for_exception(DestinationRefused("destination refused: x"), 5, "destination")
        assert outcome.kind is OutcomeKind.CONNECT_ERROR and not is_retryable(outcome)
    finally:
        await client.close()
    assert receiver.requests == []


@pytest.mark.parametrize("host", ["\uff11\uff12\uff17.\uff10.\uff10.\uff11", "\u2460\u2461\u2466.0.0.1"])
async def test_unicode_spelling_of_loopback_is_refused(receiver: Receiver, host: str) -> None:
    (outcome,) = await deliver(make_sender(receiver.url(host=host), allow_private=False), make_events(1))
    assert outcome.kind is OutcomeKind.CONNECT_ERROR and not is_retryable(outcome)
    assert "not a public address" in outcome.message
    assert receiver.requests == []


async def test_localhost_is_refused(receiver: Receiver) -> None:
    (outcome,) = await deliver(make_sender(receiver.url(host="localhost"), allow_private=False), make_events(1))
    assert outcome.kind is OutcomeKind.CONNECT_ERROR and not is_retryable(outcome)
    assert "refused" in outcome.message and "not a public address" in outcome.message
    assert receiver.requests == []


async def test_name_resolving_to_private_address_is_refused_at_connect(receiver: Receiver) -> None:
    lookups: list[tuple[str, int]] = []

    async def rebinding_dns(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return ["127.0.0.1"]

    sender = make_sender(receiver.url(host="hooks.example.com"), allow_private=False, resolver=rebinding_dns)
    (outcome,) = await deliver(sender, make_events(1))
    assert outcome.kind is OutcomeKind.CONNECT_ERROR and not is_retryable(outcome)
    assert "refused" in outcome.message and "not a public address" in outcome.message
    # no internal DNS oracle: the message never tells what the name resolved to
    assert "127.0.0.1" not in outcome.message
    assert lookups == [("hooks.example.com", receiver.port)]
    assert receiver.requests == []


async def test_name_is_connected_through_checked_addresses(receiver: Receiver) -> None:
    async def dns(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    sender = make_sender(receiver.url(host="hooks.example.com"), allow_private=True, resolver=dns)
    (outcome,) = await deliver(sender, make_events(1))
    assert outcome.kind is OutcomeKind.SUCCESS
    (req,) = receiver.requests
    assert req.host == f"hooks.example.com:{receiver.port}"  # Host keeps the name
    assert_twilio_signed_post(req)


async def test_unresolvable_name_is_connect_error(receiver: Receiver) -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    sender = make_sender("https://nowhere.example/h", allow_private=False, resolver=nxdomain)
    (outcome,) = await deliver(sender, make_events(1))
    assert outcome.kind is OutcomeKind.CONNECT_ERROR and is_retryable(outcome)
    assert "Name or service not known" in outcome.message


async def test_private_allowed_when_configured(receiver: Receiver) -> None:
    (outcome,) = await deliver(make_sender(receiver.url(), allow_private=True), make_events(1))
    assert outcome.kind is OutcomeKind.SUCCESS


# -- concurrency -------------------------------------------------------------------------------


async def test_concurrency_bounded_by_max_in_flight(receiver: Receiver) -> None:
    pacer = RecordingPacer()
    outcomes = await deliver(make_sender(receiver.url("/busy"), max_in_flight=3), make_events(10), pacer)
    assert [o.kind for o in outcomes] == [OutcomeKind.SUCCESS] * 10
    assert receiver.max_in_flight == 3
    assert pacer.waits == [1] * 10


async def test_concurrent_sends_share_the_bound_and_each_gets_its_outcomes_in_order(receiver: Receiver) -> None:
    # the dispatcher runs two pipelines per sink, each sending its own chunk through the one sender
    sender = make_sender(receiver.url("/busy-odd-refused"), max_in_flight=4)
    events = make_events(12)
    try:
        first, second = await asyncio.gather(sender.send(events[:7], NoPacer()), sender.send(events[7:], NoPacer()))
    finally:
        await sender.close()
    assert receiver.max_in_flight == 4
    assert [r.headers["I-Twilio-Idempotency-Token"] for r in receiver.requests[:4]] == [e.id for e in events[:4]]
    expected = [OutcomeKind.HTTP_STATUS if int(e.id[-1], 16) % 2 else OutcomeKind.SUCCESS for e in events]
    assert [o.kind for o in first + second] == expected


async def test_sender_reopens_after_close(receiver: Receiver) -> None:
    sender = make_sender(receiver.url())
    await deliver(sender, make_events(1))
    await deliver(sender, make_events(1))
    assert len(receiver.requests) == 2


# -- construction and registry -----------------------------------------------------------------


def test_create_sender_registry() -> None:
    ctx = SinkContext("DG1", "AC1", "webhook", {"destination": "https://example.com/h", "method": "GET"}, "t", SECRET)
    assert isinstance(create_sender(ctx), WebhookSender)
    with pytest.raises(UnsupportedSink):
        create_sender(SinkContext("DG1", "AC1", "email", {"to": "x"}, "t", SECRET))


@pytest.mark.parametrize(
    "config",
    [
        {"method": "PUT"},
        {"destination": ""},
        {"destination": "ftp://example.com/"},
        {"batch_events": "maybe"},
        {"batch_max_events": 0},
    ],
)
def test_invalid_configuration_is_rejected(config: dict[str, Any]) -> None:
    # The registry refuses these before a sink is stored, so the sender (which only ever sees a
    # validated configuration) does not check them again.
    base = {"destination": "https://example.com/h", "method": "POST", "batch_events": True}
    with pytest.raises(TwilioError) as caught:
        registry.validate("webhook", {**base, **config}, ConfigOptions())
    assert caught.value.code == 91000


def test_the_sender_takes_the_validated_configuration_as_it_is() -> None:
    validated = registry.validate(
        "webhook", {"destination": "https://u:p@example.com/h", "method": "get", "batch_events": "true"}, ConfigOptions()
    )
    sender = WebhookSender(SinkContext("DG1", "AC1", "webhook", validated, "t", SECRET))
    assert (sender.method, sender.batch_events, sender.batch_max_events, sender.standard_webhooks) == (
        "GET",
        True,
        100,
        True,
    )
    assert sender.url == "https://example.com/h"
    # no second validation layer: the sender module has no config checkers of its own
    assert not hasattr(webhook, "_config_bool") and not hasattr(webhook, "_config_positive_int")
