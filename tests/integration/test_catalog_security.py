"""Custom catalogue safety through a real server (SQLite and PostgreSQL): schemas
that reach outside the document, stall the loop, nest too deep or grow without
bound are refused at registration; only the owning account writes its catalogue."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from eventstreams.catalog import schemas
from eventstreams.domain import accounts, control
from tests.conftest import Receiver, Server

OBJ = {"type": "object", "properties": {"orderId": {"type": "string"}}}


def register(server: Server, auth: tuple[str, str], schema: Any, schema_id: str | None = None) -> requests.Response:
    sid = schema_id or f"Sec.{uuid.uuid4().hex[:12]}"
    body = schema if isinstance(schema, str) else json.dumps(schema)
    return requests.post(
        f"{server.url}/v1/Catalog/Schemas/{sid}/Versions", data={"Schema": body}, auth=auth, timeout=30
    )


def register_type(
    server: Server, auth: tuple[str, str], type_: str, schema_id: str, status: str = "available"
) -> requests.Response:
    return requests.post(
        f"{server.url}/v1/Catalog/Types",
        data={"Type": type_, "SchemaId": schema_id, "Description": "d", "Status": status},
        auth=auth,
        timeout=10,
    )


def publish(server: Server, auth: tuple[str, str], type_: str, data: dict[str, Any]) -> requests.Response:
    ev = {"specversion": "1.0", "type": type_, "source": "/t", "data": data}
    return requests.post(
        f"{server.url}/v1/Events",
        data=json.dumps(ev),
        headers={"Content-Type": "application/cloudevents+json"},
        auth=auth,
        timeout=30,
    )


def refused(r: requests.Response, *words: str) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == 91201 and body["status"] == 400 and body["more_info"].endswith("91201"), body
    for w in words:
        assert w in body["message"], (w, body["message"])


# -- finding 1: no reference leaves the document


def test_external_references_are_refused_and_never_fetched(
    server: Server, account: tuple[str, str], receiver: Receiver
) -> None:
    target = f"{receiver.url}/metadata/x.json"
    receiver.plan["/metadata/x.json"] = [(200, 0.0)] * 20
    cases: list[dict[str, Any]] = [
        {"$ref": target},
        {**OBJ, "properties": {"a": {"$ref": target}}},
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "properties": {"a": {"$dynamicRef": target}}},
        {"$id": f"{receiver.url}/base/", "properties": {"a": {"$ref": "x.json"}}},  # relative to a remote base
        {"properties": {"a": {"$id": f"{receiver.url}/inner/", "$ref": "#/definitions/x"}}},
        {"$schema": target},
        {"properties": {"a": {"$ref": "file:///etc/hostname"}}},
    ]
    for schema in cases:
        refused(register(server, account, schema))
    assert receiver.requests == []  # nothing was fetched, not even once
    # fragments within the document still work
    ok = {
        "type": "object",
        "definitions": {"id": {"type": "string", "minLength": 2}},
        "properties": {"orderId": {"$ref": "#/definitions/id"}},
    }
    assert register(server, account, ok).status_code == 201
    ok2020 = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.com/order.json",
        "$defs": {"id": {"type": "string"}},
        "properties": {"orderId": {"$ref": "#/$defs/id"}},
    }
    assert register(server, account, ok2020).status_code == 201


def test_file_references_are_no_file_existence_oracle(server: Server, account: tuple[str, str]) -> None:
    answers = []
    for path in ("/etc/hostname", "/etc/passwd", "/nonexistent/nothing.json"):
        r = register(server, account, {"properties": {"a": {"$ref": f"file://{path}"}}}, "Sec.FileOracle")
        answers.append((r.status_code, r.json()["message"].replace(path, "PATH")))
    assert answers[0] == answers[1] == answers[2], answers
    assert answers[0][0] == 400


@pytest.fixture
def silent_server() -> Iterator[tuple[str, threading.Event]]:
    """A TCP server that accepts connections and never answers; the event is set when one arrives."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    arrived = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            held.append(conn)
            arrived.set()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", arrived
    sock.close()
    for c in held:
        c.close()


def test_a_reference_to_a_host_that_never_answers_blocks_nothing(
    server: Server, account: tuple[str, str], silent_server: tuple[str, threading.Event]
) -> None:
    url, arrived = silent_server
    done = threading.Event()
    result: list[requests.Response] = []

    def go() -> None:
        try:
            result.append(register(server, account, {"properties": {"a": {"$ref": f"{url}/slow.json"}}}))
        finally:
            done.set()

    threading.Thread(target=go, daemon=True).start()
    # Either the registration answered, or it is stuck fetching (the old behaviour): then the server
    # must still answer others at once.
    while not (done.wait(0.05) or arrived.is_set()):
        pass
    t0 = time.monotonic()
    health = requests.get(f"{server.url}/healthz", timeout=5)
    assert health.status_code == 200 and time.monotonic() - t0 < 2.0
    assert not arrived.is_set(), "the schema's $ref was fetched"
    assert done.wait(10) and result
    refused(result[0], "outside the schema")


# -- finding 2: patterns stay linear-time


def test_backtracking_patterns_are_refused(server: Server, account: tuple[str, str]) -> None:
    for pattern in (r"^(\w+\s?)*(?<=z)$", r"^(a+)+\1$", r"^(?=(a+)+$)b"):
        refused(register(server, account, {"type": "string", "pattern": pattern}), "compiled")
        refused(register(server, account, {"type": "object", "patternProperties": {pattern: {}}}), "compiled")


def test_a_nested_quantifier_pattern_validates_in_linear_time(server: Server, account: tuple[str, str]) -> None:
    sid = f"Sec.Linear{uuid.uuid4().hex[:8]}"
    schema = {
        "type": "object",
        "properties": {"names": {"type": "array", "items": {"type": "string", "pattern": "^(a+)+$"}}},
        "patternProperties": {"^(x+x+)+y$": {"type": "string"}},
    }
    assert register(server, account, schema, sid).status_code == 201
    type_ = f"com.example.sec.linear{uuid.uuid4().hex[:8]}"
    assert register_type(server, account, type_, sid).status_code == 201
    evil = {"names": ["a" * 30 + "!" for _ in range(400)], **{"x" * (30 + i) + "!": "v" for i in range(200)}}
    t0 = time.monotonic()
    r = publish(server, account, type_, evil)
    assert r.status_code == 400 and "does not match" in r.text, r.text
    assert time.monotonic() - t0 < 2.0
    assert publish(server, account, type_, {"names": ["aaa"], "xxy": "v"}).status_code == 201


def test_objects_of_custom_events_are_capped_in_width(server: Server, account: tuple[str, str]) -> None:
    sid = f"Sec.Wide{uuid.uuid4().hex[:8]}"
    assert register(server, account, {"type": "object"}, sid).status_code == 201
    type_ = f"com.example.sec.wide{uuid.uuid4().hex[:8]}"
    assert register_type(server, account, type_, sid).status_code == 201
    limit = schemas.MAX_OBJECT_PROPERTIES
    assert publish(server, account, type_, {"o": {f"k{i}": i for i in range(limit)}}).status_code == 201
    r = publish(server, account, type_, {"o": {f"k{i}": i for i in range(limit + 1)}})
    assert r.status_code == 400 and f"more than {limit} properties" in r.text, r.text


# -- finding 9: depth and size


def test_deep_large_or_pattern_heavy_schemas_are_400(server: Server, account: tuple[str, str]) -> None:
    deep: dict[str, Any] = {"type": "object"}
    for _ in range(300):
        deep = {"type": "object", "properties": {"a": deep}}
    refused(register(server, account, deep), "nested deeper than")
    # deeper than any JSON parser here accepts
    refused(register(server, account, '{"a":' * 5000 + "1" + "}" * 5000), "not valid JSON")
    big = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 100} for i in range(800)}}
    refused(register(server, account, big), "larger than")
    many = {"type": "object", "patternProperties": {f"^p{i}$": {} for i in range(schemas.MAX_PATTERNS + 1)}}
    refused(register(server, account, many), "patterns")


# -- finding 4: a subaccount cannot rewrite its parent's catalogue


def test_only_the_owning_account_writes_its_catalogue(server: Server, account: tuple[str, str]) -> None:
    sid = f"Sec.Owned{uuid.uuid4().hex[:8]}"
    type_ = f"com.example.sec.owned{uuid.uuid4().hex[:8]}"
    assert register(server, account, OBJ, sid).status_code == 201
    assert register_type(server, account, type_, sid).status_code == 201
    sub = server.new_account("Sub", parent=account[0])
    sibling = server.new_account("Sibling", parent=account[0])
    for who in (sub, sibling):
        attempts = [
            register_type(server, who, type_, sid, status="discontinued"),
            register(server, who, {"not": {}}, sid),
            register(server, who, OBJ, f"Sec.New{uuid.uuid4().hex[:8]}"),
            register_type(server, who, f"{type_}.other", sid),
        ]
        for r in attempts:
            assert r.status_code == 403, r.text
            assert r.json()["code"] == 20403 and r.json()["status"] == 403
        # reading and using the parent's types still works
        got = requests.get(f"{server.url}/v1/Types/{type_}", auth=who, timeout=5)
        assert got.status_code == 200 and got.json()["status"] == "available"
        assert publish(server, who, type_, {"orderId": "o1"}).status_code == 201
    # the parent is unaffected: one version, type available, publishing works
    versions = requests.get(f"{server.url}/v1/Schemas/{sid}/Versions", auth=account, timeout=5).json()
    assert [v["schema_version"] for v in versions["schema_versions"]] == [1]
    assert publish(server, account, type_, {"orderId": "o2"}).status_code == 201
    # the parent's own credentials, acting on a subaccount, still write the parent's catalogue
    r = register(server, (sub[0], account[1]), OBJ, sid)
    assert r.status_code == 201 and r.json()["schema_version"] == 2


# -- finding 11: per-account limits


def limit_reached(r: requests.Response, what: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["code"] == 91003 and what in r.json()["message"], r.text


def test_catalogue_limits(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    acct = server.new_account("Limits")
    monkeypatch.setattr(control, "MAX_SCHEMA_VERSIONS", 2)
    monkeypatch.setattr(control, "MAX_SCHEMAS", 2)
    monkeypatch.setattr(control, "MAX_TYPES", 2)
    assert register(server, acct, OBJ, "Lim.A").status_code == 201
    assert register(server, acct, OBJ, "Lim.A").status_code == 201
    limit_reached(register(server, acct, OBJ, "Lim.A"), "versions (2)")
    assert register(server, acct, OBJ, "Lim.B").status_code == 201
    limit_reached(register(server, acct, OBJ, "Lim.C"), "schemas (2)")
    assert register_type(server, acct, "com.example.lim.a", "Lim.A").status_code == 201
    assert register_type(server, acct, "com.example.lim.b", "Lim.B").status_code == 201
    limit_reached(register_type(server, acct, "com.example.lim.c", "Lim.B"), "event types (2)")
    # updating an existing type is not a new one
    assert register_type(server, acct, "com.example.lim.a", "Lim.A", status="deprecated").status_code == 201


def test_subaccount_and_key_limits(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    sid, token = server.new_account("Limits")
    monkeypatch.setattr(accounts, "MAX_SUBACCOUNTS", 2)
    monkeypatch.setattr(accounts, "MAX_API_KEYS", 2)
    base = f"{server.url}/2010-04-01/Accounts"
    for _ in range(2):
        assert requests.post(f"{base}.json", data={}, auth=(sid, token), timeout=5).status_code == 201
    limit_reached(requests.post(f"{base}.json", data={}, auth=(sid, token), timeout=5), "subaccounts (2)")
    for _ in range(2):
        assert requests.post(f"{base}/{sid}/Keys.json", data={}, auth=(sid, token), timeout=5).status_code == 201
    limit_reached(requests.post(f"{base}/{sid}/Keys.json", data={}, auth=(sid, token), timeout=5), "API keys (2)")


def test_schemas_stored_before_these_rules_are_never_fetched_nor_slow(
    server: Server, account: tuple[str, str], receiver: Receiver
) -> None:
    """A version stored by an older release (no registration checks) is compiled with the same rules
    when first used: its events are refused at once, nothing is fetched, the loop stays free."""
    from eventstreams import clock
    from eventstreams.store.records import SchemaVersionRow

    receiver.plan["/legacy.json"] = [(200, 0.0)] * 5
    legacy = {
        "type": "object",
        "properties": {
            "r": {"$ref": f"{receiver.url}/legacy.json"},
            "names": {"type": "array", "items": {"not": {"pattern": r"^(\w+\s?)*(?<=z)$"}}},
        },
    }
    sid = f"Sec.Legacy{uuid.uuid4().hex[:8]}"
    row = SchemaVersionRow(sid, 0, account[0], json.dumps(legacy), clock.iso(clock.now()))
    server.call(server.services.store.catalogue.add_version(row, 100, 1000))
    type_ = f"com.example.sec.legacy{uuid.uuid4().hex[:8]}"
    assert register_type(server, account, type_, sid).status_code == 201
    names = [f"{'a' * (20 + i % 10)}{'b' * (i // 10)}!" for i in range(300)]
    t0 = time.monotonic()
    r = publish(server, account, type_, {"names": names})
    assert r.status_code == 400, r.text
    assert time.monotonic() - t0 < 2.0
    assert receiver.requests == []
