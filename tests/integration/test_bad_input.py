"""Malformed requests, sent raw with ``requests``: every one gets a 4xx with
Twilio's error JSON ``{code, message, more_info, status}``, a message that
names the problem, and nothing is stored. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
import requests

from eventstreams.catalog import builtin_examples
from tests.conftest import Server

WEBHOOK = {"destination": "https://example.com/hook", "method": "POST", "batch_events": True}
GOOD_SINK = {"Description": "hook", "SinkType": "webhook", "SinkConfiguration": json.dumps(WEBHOOK)}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SENT = "com.twilio.messaging.message.sent"
HEX = "0123456789abcdef" * 2


@dataclass
class Wire:
    """A response read with http.client, for request targets ``requests`` would re-quote."""

    status_code: int
    headers: http.client.HTTPMessage
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def check_error(r: requests.Response | Wire, status: int, *needles: str, code: int | None = None) -> dict[str, Any]:
    """Assert a Twilio error body; every needle must appear in the message (case-insensitive)."""
    if r.status_code >= 500:
        # uvicorn logs the traceback after sending the 500; CPython 3.11's traceback
        # carets use ast.parse, whose state is process-global, so formatting our own
        # failure at the same moment can die with "AST constructor recursion depth
        # mismatch". Let the server thread finish first.
        time.sleep(0.5)
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"code", "message", "more_info", "status"}, body
    assert isinstance(body["code"], int) and body["code"] > 0, body
    assert body["status"] == status, body
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}", body
    assert isinstance(body["message"], str) and body["message"], body
    if code is not None:
        assert body["code"] == code, body
    for needle in needles:
        assert needle.lower() in body["message"].lower(), (needle, body["message"])
    return body


class Api:
    """A requests session with an account's basic auth, rooted at the server."""

    def __init__(self, server: Server, sid: str, token: str) -> None:
        self.url = server.url
        self.sid = sid
        self.token = token
        self.s = requests.Session()
        self.s.auth = (sid, token)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.s.get(self.url + path, timeout=10, **kw)

    def post(self, path: str, data: Any = None, **kw: Any) -> requests.Response:
        return self.s.post(self.url + path, data=data, timeout=10, **kw)

    def raw(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> requests.Response:
        return self.s.request(method, self.url + path, data=body, headers={**FORM, **(headers or {})}, timeout=10)

    def wire(self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Wire:
        """Send ``target`` byte for byte (no re-quoting, no dot-segment removal)."""
        u = urlsplit(self.url)
        conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
        try:
            auth = "Basic " + base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
            conn.request(method, target, body=body, headers={"Authorization": auth, **FORM, **(headers or {})})
            resp = conn.getresponse()
            return Wire(resp.status, resp.headers, resp.read().decode("utf-8", "replace"))
        finally:
            conn.close()

    def sinks(self) -> list[dict[str, Any]]:
        r = self.get("/v1/Sinks")
        assert r.status_code == 200, r.text
        return list(r.json()["sinks"])

    def subscriptions(self) -> list[dict[str, Any]]:
        r = self.get("/v1/Subscriptions")
        assert r.status_code == 200, r.text
        return list(r.json()["subscriptions"])

    def make_sink(self) -> str:
        r = self.post("/v1/Sinks", GOOD_SINK)
        assert r.status_code == 201, r.text
        return str(r.json()["sid"])

    def make_subscription(self, sink: str) -> str:
        r = self.post("/v1/Subscriptions", {"Description": "s", "SinkSid": sink, "Types": json.dumps({"type": SENT})})
        assert r.status_code == 201, r.text
        return str(r.json()["sid"])


@pytest.fixture
def api(server: Server, account: tuple[str, str]) -> Iterator[Api]:
    a = Api(server, *account)
    yield a
    a.s.close()


# -- form bodies


def test_unknown_form_parameter_is_named(api: Api) -> None:
    r = api.post("/v1/Sinks", {**GOOD_SINK, "Colour": "blue"})
    check_error(r, 400, "Colour", "unknown parameter", code=20001)
    r = api.post("/v1/Sinks", {**GOOD_SINK, "sinktype": "webhook"})  # names are case-sensitive, like Twilio's
    check_error(r, 400, "sinktype")
    assert api.sinks() == []


def test_repeated_parameter_is_rejected(api: Api) -> None:
    body = urlencode([*GOOD_SINK.items(), ("Description", "again")])
    check_error(api.raw("POST", "/v1/Sinks", body.encode()), 400, "Description", "more than once")
    body = urlencode([*GOOD_SINK.items(), ("SinkType", "webhook")])
    check_error(api.raw("POST", "/v1/Sinks", body.encode()), 400, "SinkType", "more than once")
    assert api.sinks() == []


def test_non_utf8_body(api: Api) -> None:
    body = urlencode(GOOD_SINK).encode() + b"&Description=\xff\xfe"
    check_error(api.raw("POST", "/v1/Sinks", body), 400, "UTF-8")
    # percent-encoded bytes that are not UTF-8 either
    body = urlencode({**GOOD_SINK, "Description": "x"}).replace("Description=x", "Description=%C3%28").encode()
    check_error(api.raw("POST", "/v1/Sinks", body), 400, "request body")
    # a lone surrogate, percent-encoded as CESU-8
    body = urlencode({**GOOD_SINK, "Description": "x"}).replace("Description=x", "Description=%ED%A0%80").encode()
    check_error(api.raw("POST", "/v1/Sinks", body), 400, "request body")
    assert api.sinks() == []


@pytest.mark.parametrize("escape", ["%ZZ", "%", "%4", "%g0", "100%"])
def test_invalid_percent_encoding(api: Api, escape: str) -> None:
    body = urlencode({**GOOD_SINK, "Description": "x"}).replace("Description=x", f"Description={escape}").encode()
    check_error(api.raw("POST", "/v1/Sinks", body), 400, "percent-encoding")
    check_error(api.wire("GET", f"/v1/Sinks?Status={escape}"), 400, "percent-encoding", "query string")
    check_error(api.wire("POST", "/v1/Sinks", body), 400, "percent-encoding", "request body")
    assert api.sinks() == []


def test_nul_in_form_value(api: Api) -> None:
    body = urlencode({**GOOD_SINK, "Description": "a\x00b"}).encode()
    check_error(api.raw("POST", "/v1/Sinks", body), 400, "Description", "NUL")
    assert api.sinks() == []


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/json", json.dumps({"Description": "x", "SinkType": "webhook", "SinkConfiguration": WEBHOOK})),
        ("text/plain", urlencode(GOOD_SINK)),
        ("multipart/form-data; boundary=xyz", "--xyz\r\n"),
    ],
)
def test_body_must_be_form_encoded(api: Api, ctype: str, body: str) -> None:
    r = api.raw("POST", "/v1/Sinks", body.encode(), {"Content-Type": ctype})
    check_error(r, 400, "application/x-www-form-urlencoded", ctype.split(";")[0])
    assert api.sinks() == []


def test_form_encoding_with_charset_is_fine(api: Api) -> None:
    r = api.raw(
        "POST", "/v1/Sinks", urlencode(GOOD_SINK).encode(), {"Content-Type": FORM["Content-Type"] + "; charset=utf-8"}
    )
    assert r.status_code == 201, r.text


def test_oversize_body(api: Api) -> None:
    big = {**GOOD_SINK, "Description": "x" * (1024 * 1024 + 1)}
    body = check_error(api.post("/v1/Sinks", big), 413, "larger than", "1048576")
    assert body["code"] == 20413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        yield urlencode(GOOD_SINK).encode() + b"&Colour="
        for _ in range(80):
            yield b"y" * 16384

    r = api.s.post(api.url + "/v1/Sinks", data=chunks(), headers=FORM, timeout=10)
    check_error(r, 413, "larger than")
    assert api.sinks() == []
    # exactly at the limit is parsed (and then rejected for its content, not its size)
    at = urlencode(GOOD_SINK).encode() + b"&Description=" + b"z" * 10
    at += b"&Colour=" + b"c" * (1024 * 1024 - len(at) - len(b"&Colour="))
    assert len(at) == 1024 * 1024
    check_error(api.raw("POST", "/v1/Sinks", at), 400)
    assert api.sinks() == []


# -- SinkConfiguration


@pytest.mark.parametrize(
    ("cfg", "needles"),
    [
        ("{not json", ("SinkConfiguration", "not valid JSON")),
        ("", ("SinkConfiguration", "required")),
        ('{"destination": "https://x.example", "method": "POST",}', ("not valid JSON",)),
        ("[1, 2]", ("sink_configuration", "JSON object")),
        ('"https://x.example"', ("sink_configuration", "JSON object")),
        ("null", ("sink_configuration", "JSON object")),
        ("{}", ("sink_configuration", "non-empty")),
        ('{"destination": 5, "method": "POST"}', ("destination", "string")),
        ('{"destination": {"u": "https://x.example"}, "method": "POST"}', ("destination", "string")),
        ('{"destination": ["https://x.example"], "method": "POST"}', ("destination", "string")),
        ('{"destination": "https://x.example", "method": ["POST"]}', ("method", "string")),
        ('{"destination": "https://x.example", "method": "POST", "batch_events": 1}', ("batch_events", "boolean")),
        ('{"destination": "https://x.example", "method": "POST", "batch_events": {}}', ("batch_events", "boolean")),
        (
            '{"destination": "https://x.example", "method": "POST", "batch_max_events": "10"}',
            ("batch_max_events", "integer"),
        ),
        (
            '{"destination": "https://x.example", "method": "POST", "batch_max_events": true}',
            ("batch_max_events", "integer"),
        ),
        ('{"destination": "https://x.example:99999", "method": "POST"}', ("destination", "URL")),
        ('{"destination": "https://x.example", "method": "POST", "nested": {"a": [1]}}', ("nested",)),
    ],
)
def test_sink_configuration_rejected(api: Api, cfg: str, needles: tuple[str, ...]) -> None:
    r = api.post("/v1/Sinks", {**GOOD_SINK, "SinkConfiguration": cfg})
    check_error(r, 400, *needles, code=91000)
    assert api.sinks() == []


# Regression: json.loads raised RecursionError (not ValueError) here, a 500;
# control.py now parses with orjson, which caps nesting at 1024.
def test_sink_configuration_deeply_nested(api: Api) -> None:
    """Nesting deep enough to blow Python's recursion limit is a 400, not a 500."""
    deep = "[" * 100_000 + "]" * 100_000
    check_error(api.post("/v1/Sinks", {**GOOD_SINK, "SinkConfiguration": deep}), 400, "SinkConfiguration")
    assert api.sinks() == []


@pytest.mark.parametrize("depth", [252, 300, 1000, 5000])
def test_deeply_nested_json_is_400_everywhere(api: Api, depth: int) -> None:
    """Every handler that parses JSON answers a deep document with a 400 naming the problem: below the
    parser's cap (1,024) as well as above it."""
    text = '{"a":' * depth + "{}" + "}" * depth  # built as text: json.dumps itself would recurse too deep
    check_error(api.post("/v1/Catalog/Schemas/Deep.Schema/Versions", {"Schema": text}), 400, "schema")
    check_error(api.post("/v1/Sinks", {**GOOD_SINK, "SinkConfiguration": text}), 400, "sink")
    sink = api.make_sink()
    check_error(api.post("/v1/Subscriptions", {"Description": "d", "SinkSid": sink, "Types": text}), 400)
    valid = json.dumps(builtin_examples()["Messaging.MessageStatus"][1])  # valid, so only the depth is wrong
    event = '{"specversion":"1.0","type":"' + SENT + '","source":"/x","data":' + valid[:-1] + ',"deep":' + text + "}}"
    r = api.raw("POST", "/v1/Events", event.encode(), {"Content-Type": "application/cloudevents+json"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == 20001 and r.json()["status"] == 400
    assert api.subscriptions() == []


def test_sink_type_and_description_rejected(api: Api) -> None:
    check_error(api.post("/v1/Sinks", {**GOOD_SINK, "SinkType": "email"}), 400, "sink_type", code=91000)
    check_error(api.post("/v1/Sinks", {**GOOD_SINK, "SinkType": ""}), 400, "SinkType", code=91000)
    check_error(api.post("/v1/Sinks", {**GOOD_SINK, "Description": "  "}), 400, "Description", code=91000)
    check_error(api.post("/v1/Sinks", {**GOOD_SINK, "Description": "d" * 1025}), 400, "Description")
    missing = {k: v for k, v in GOOD_SINK.items() if k != "SinkConfiguration"}
    check_error(api.post("/v1/Sinks", missing), 400, "SinkConfiguration")
    assert api.sinks() == []


# -- Subscriptions and SubscribedEvents


@pytest.mark.parametrize(
    ("types", "needles"),
    [
        (["not json"], ("Types[0]", "JSON object")),
        (['"com.twilio.messaging.message.sent"'], ("event_types[0].type", "JSON object")),
        (['[{"type": "com.twilio.messaging.message.sent"}]'], ("event_types[0].type",)),
        (["42"], ("event_types[0].type",)),
        (["null"], ("event_types[0].type",)),
        (['{"type": 5}'], ("event_types[0].type",)),
        (['{"type": ["com.twilio.messaging.message.sent"]}'], ("event_types[0].type",)),
        (['{"type": "com.twilio.messaging.message.sent", "colour": 1}'], ("Types[0]", "colour")),
        (['{"type": "com.twilio.messaging.message.sent", "schema_version": "abc"}'], ("schema_version", "integer")),
        (['{"type": "com.twilio.messaging.message.sent", "schema_version": true}'], ("schema_version", "integer")),
        (['{"type": "com.twilio.messaging.message.sent", "schema_version": 1.5}'], ("schema_version", "integer")),
        (['{"type": "com.example.nope"}'], ("com.example.nope", "not found")),
        ([json.dumps({"type": SENT}), '{"type": 1}'], ("event_types[1].type",)),
        ([], ("empty",)),
    ],
)
def test_subscription_types_rejected(api: Api, types: list[str], needles: tuple[str, ...]) -> None:
    sink = api.make_sink()
    body = urlencode([("Description", "s"), ("SinkSid", sink), *(("Types", t) for t in types)])
    check_error(api.raw("POST", "/v1/Subscriptions", body.encode()), 400, *needles)
    assert api.subscriptions() == []
    assert api.get("/v1/Sinks?InUse=true").json()["sinks"] == []


# Regressions: a Types value is JSON-decoded, so escapes smuggle in what the
# form parser rejects. Lone surrogates failed to encode for either store and
# NUL failed on PostgreSQL (500s); deep nesting raised RecursionError (500).
UNSTORABLE_TYPES = [
    pytest.param('{"type": "com.twilio.\\u0000x"}', id="nul"),
    pytest.param('{"type": "\\ud800"}', id="lone-surrogate"),
    pytest.param('{"type": "a\\udfffb"}', id="lone-low-surrogate"),
    pytest.param("DEEP", id="deep-nesting"),
]


@pytest.mark.parametrize("types", UNSTORABLE_TYPES)
def test_subscription_type_with_unstorable_characters(api: Api, types: str) -> None:
    """JSON escapes can smuggle NUL or lone surrogates past the form parser."""
    if types == "DEEP":
        types = "[" * 100_000 + "]" * 100_000
    sink = api.make_sink()
    r = api.post("/v1/Subscriptions", {"Description": "s", "SinkSid": sink, "Types": types})
    check_error(r, 400, "type")
    assert api.subscriptions() == []


def test_subscription_sink_sid_rejected(api: Api) -> None:
    types = json.dumps({"type": SENT})
    r = api.post("/v1/Subscriptions", {"Description": "s", "SinkSid": "DGnope", "Types": types})
    check_error(r, 400, "DGnope", code=91006)
    r = api.post("/v1/Subscriptions", {"Description": "s", "SinkSid": "DG" + HEX, "Types": types})
    check_error(r, 404, "DG" + HEX, code=91001)
    assert api.subscriptions() == []


def test_schema_version_wrong_type(api: Api) -> None:
    sub = api.make_subscription(api.make_sink())
    path = f"/v1/Subscriptions/{sub}/SubscribedEvents"
    before = api.get(path).json()["types"]
    for value, needle in [("abc", "integer"), ("1.5", "integer"), ("", "integer"), ("0", "range"), ("9" * 30, "range")]:
        r = api.post(path, {"Type": "com.twilio.messaging.message.delivered", "SchemaVersion": value})
        check_error(r, 400, "SchemaVersion", needle)
    r = api.post(f"{path}/{SENT}", {"SchemaVersion": "abc"})
    check_error(r, 400, "SchemaVersion", "integer")
    check_error(api.post(path, {"Type": "com.twilio.messaging.message.delivered", "Colour": "1"}), 400, "Colour")
    assert api.get(path).json()["types"] == before


# -- query strings


def test_bool_and_enum_filters(api: Api) -> None:
    check_error(api.get("/v1/Sinks?InUse=maybe"), 400, "InUse", "true or false")
    check_error(api.get("/v1/Sinks?InUse="), 400, "InUse")
    check_error(api.get("/v1/Sinks?Status=bogus"), 400, "Status", "active")
    check_error(api.get("/v1/Sinks?Status=bogus&InUse=true"), 400, "Status")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/Sinks?Colour=blue",
        "/v1/Types?colour=1",
        "/v1/Types?schemaid=Messaging.MessageStatus",
        "/v1/Subscriptions?Colour=1",
        "/v1/Types/com.twilio.messaging.message.sent?Colour=1",
        "/v1/Schemas/Messaging.MessageStatus/Versions?Colour=1",
        "/v1/Schemas/Messaging.MessageStatus/Versions/1?Colour=1",
        "/v1/Schemas/Messaging.MessageStatus?Colour=1",
        "/2010-04-01/Accounts.json?Colour=1",
    ],
)
def test_unknown_query_parameter(api: Api, path: str) -> None:
    name = path.split("?")[1].split("=")[0]
    check_error(api.get(path), 400, repr(name), "unknown parameter")


def test_repeated_query_parameter(api: Api) -> None:
    check_error(api.get("/v1/Sinks?Status=active&Status=failed"), 400, "Status", "more than once")


def test_query_parameters_on_post_are_rejected(api: Api) -> None:
    r = api.post("/v1/Sinks?Description=x", GOOD_SINK)
    check_error(r, 400, "Description", "unknown parameter")
    assert api.sinks() == []


def test_query_string_not_utf8(api: Api) -> None:
    check_error(api.get("/v1/Sinks?Status=%FF"), 400, "query string")
    check_error(api.get("/v1/Sinks?Status=a%00b"), 400, "Status", "NUL")


# -- paths


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/Types/..%2F..%2Fetc", 404),
        ("/v1/Types/..%2F..%2Fetc%2Fpasswd", 404),
        ("/v1/Types/%2E%2E", 404),
        ("/v1/Schemas/..%2F..%2Fetc/Versions", 404),
        ("/schemas/..%2F..%2Fetc/1", 404),
        ("/v1/Sinks/..%2FSubscriptions", 404),
        ("/v1/Sinks/DG" + HEX + "%00", 400),
        ("/v1/Sinks/DG" + HEX + "%0A", 400),
        ("/v1/Sinks/DG" + HEX[:-1] + "%00", 400),
        ("/v1/Types/com.twilio%00.x", 400),
        ("/v1/Types/%00", 400),
        ("/v1/Schemas/Messaging%00/Versions", 400),
        ("/v1/Schemas/Messaging.MessageStatus/Versions/1%00", 400),
        ("/v1/Subscriptions/DF" + HEX + "%00", 400),
        ("/v1/Subscriptions/DF" + HEX + "/SubscribedEvents/a%00b", 400),
        ("/2010-04-01/Accounts/AC" + HEX + "%00.json", 400),
        ("/v1/Types/" + "a" * 8000, 404),
        ("/v1/Schemas/" + "S" * 8000 + "/Versions/1", 404),
        ("/v1/Sinks/DG" + "f" * 8000, 400),
        ("/v1/Types/com.例え.イベント", 404),
        ("/v1/Types/%F0%9F%92%A5", 404),
        ("/v1/Types/%FF%FE", 404),
        ("/v1/Types/%ED%A0%80", 404),
        ("/v1/Schemas/%F0%9F%92%A5/Versions/%F0%9F%92%A5", 404),
        ("/v1/Schemas/Messaging.MessageStatus/Versions/-1", 404),
        ("/v1/Schemas/Messaging.MessageStatus/Versions/99999999999999999999", 404),
    ],
)
def test_path_injection(api: Api, path: str, status: int) -> None:
    r = api.wire("GET", quote(path, safe="/%?=&.-_"))
    body = check_error(r, status)
    if status == 400:
        assert any(w in body["message"].lower() for w in ("nul", "control", "sid", "invalid")), body


# Regression: str.isdigit() is true for "¹" (and other Unicode digits int()
# rejects), so events_v1._version's int() raised ValueError: a 500.
@pytest.mark.parametrize(
    "path", ["/v1/Schemas/Messaging.MessageStatus/Versions/%C2%B9", "/schemas/Messaging.MessageStatus/%C2%B9"]
)
def test_schema_version_unicode_digit(api: Api, path: str) -> None:
    check_error(api.wire("GET", path), 404, "version")


def test_dot_segments_are_not_resolved(api: Api) -> None:
    """A literal ``..`` in the request line is not normalised into another resource."""
    for raw in ("/v1/Types/../Sinks", "/v1/Sinks/../../openapi.json", "/v1/Types/./com.twilio.messaging.message.sent"):
        check_error(api.wire("GET", raw), 404, code=20404)


def test_unknown_paths_are_404_json(api: Api) -> None:
    for path in ("/v2/Sinks", "/v1/sinks", "/v1", "/v1/Types/a/b", "/v1/Nope", "/v1/Sinks/x/y/z"):
        check_error(api.get(path), 404, code=20404)
    root = requests.get(api.url + "/", timeout=10, allow_redirects=False)  # "/" is the web console's
    assert root.status_code in (302, 303, 307) and root.headers["location"].endswith("/console/"), root.text
    check_error(api.post("/v1/Nope", {"x": "y"}), 404, "/v1/Nope", code=20404)
    # unauthenticated too, and it must not reveal anything else
    check_error(requests.get(api.url + "/v1/Nope", timeout=10), 404, code=20404)


def test_trailing_slash_is_not_found(api: Api) -> None:
    """As on Twilio, ``/v1/Sinks/`` is not ``/v1/Sinks``: 404, no redirect, nothing written."""
    r = api.get("/v1/Sinks/", allow_redirects=False)
    check_error(r, 404, "/v1/Sinks/", code=20404)
    r = api.s.post(api.url + "/v1/Sinks/", data=GOOD_SINK, timeout=10, allow_redirects=False)
    check_error(r, 404, code=20404)
    assert api.sinks() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/Sinks"),
        ("DELETE", "/v1/Sinks"),
        ("PATCH", "/v1/Sinks/DG" + HEX),
        ("DELETE", "/v1/Types"),
        ("POST", "/v1/Types"),
        ("POST", "/v1/Types/com.twilio.messaging.message.sent"),
        ("DELETE", "/v1/Schemas/Messaging.MessageStatus"),
        ("GET", "/v1/Sinks/DG" + HEX + "/Test"),
        ("PUT", "/v1/Subscriptions/DF" + HEX),
        ("DELETE", "/2010-04-01/Accounts.json"),
    ],
)
def test_wrong_method_is_405_json(api: Api, method: str, path: str) -> None:
    r = api.raw(method, path, b"")
    check_error(r, 405, method, "not allowed", code=20004)
    assert "Allow" in r.headers and method not in r.headers["Allow"].split(", ")


# -- authentication


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_auth_failures_are_401_20003(server: Server, api: Api) -> None:
    sid, token = api.s.auth  # type: ignore[misc]
    headers_list: list[dict[str, str]] = [
        {},
        {"Authorization": ""},
        {"Authorization": _basic(sid, "wrong" + token)},
        {"Authorization": _basic(sid, "")},
        {"Authorization": _basic(sid.lower(), token[:-1])},
        {"Authorization": _basic("AC" + HEX, token)},  # unknown account
        {"Authorization": _basic("SK" + HEX, token)},  # unknown key
        {"Authorization": _basic("nobody", token)},
        {"Authorization": _basic(sid, token).replace("Basic", "Bearer")},
        {"Authorization": "Basic"},
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon-here").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
        {"Authorization": "Basic " + base64.b64encode(f"{sid}\x00:{token}".encode()).decode()},
        {"Authorization": "Digest username=x"},
    ]
    for headers in headers_list:
        for method, path, data in (
            ("GET", "/v1/Sinks", None),
            ("GET", "/v1/Types", None),
            ("POST", "/v1/Sinks", GOOD_SINK),
            ("GET", "/2010-04-01/Accounts.json", None),
        ):
            r = requests.request(method, server.url + path, data=data, headers=headers, timeout=10)
            check_error(r, 401, "Authenticate", code=20003)
    assert api.sinks() == []


def test_auth_checked_before_body(server: Server, api: Api) -> None:
    """Bad credentials win over a bad body: nothing about the body leaks."""
    r = requests.post(server.url + "/v1/Sinks", data=b"\xff", headers=FORM, timeout=10)
    check_error(r, 401, code=20003)
    r = requests.post(server.url + "/v1/Sinks", data=GOOD_SINK, auth=(api.sid, "nope"), timeout=10)
    check_error(r, 401, code=20003)
    assert api.sinks() == []


def test_unknown_acting_account_header(api: Api) -> None:
    r = api.get("/v1/Sinks", headers={"X-Eventstreams-Account": "AC" + HEX})
    check_error(r, 401, code=20003)
    r = api.get("/v1/Sinks", headers={"X-Eventstreams-Account": "garbage\u00e9".encode().decode("latin-1")})
    check_error(r, 401, code=20003)
