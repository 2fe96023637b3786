"""Operators register their own event types and schema versions (API and CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from tests.clihelp import cli_env, run_cli
from tests.conftest import Server

SCHEMA_V1 = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"orderId": {"type": "string"}},
    "required": ["orderId"],
}


def test_register_schema_and_type_via_api(server: Server, account: tuple[str, str]) -> None:
    auth = account
    r = requests.post(
        f"{server.url}/v1/Catalog/Schemas/Shop.Order/Versions",
        data={"Schema": json.dumps(SCHEMA_V1)},
        auth=auth,
        timeout=5,
    )
    assert r.status_code == 201, r.text
    assert r.json()["schema_version"] == 1 and r.json()["raw"] == f"{server.url}/schemas/Shop.Order/1"
    v2 = {**SCHEMA_V1, "properties": {**SCHEMA_V1["properties"], "total": {"type": "number"}}}
    r = requests.post(
        f"{server.url}/v1/Catalog/Schemas/Shop.Order/Versions", data={"Schema": json.dumps(v2)}, auth=auth, timeout=5
    )
    assert r.json()["schema_version"] == 2
    r = requests.post(
        f"{server.url}/v1/Catalog/Types",
        data={"Type": "com.example.shop.order.created", "SchemaId": "Shop.Order", "Description": "Order created"},
        auth=auth,
        timeout=5,
    )
    assert r.status_code == 201, r.text
    client = server.client(*auth)
    t = client.events.v1.event_types("com.example.shop.order.created").fetch()
    assert (t.schema_id, t.status, t.description) == ("Shop.Order", "available", "Order created")
    assert client.events.v1.schemas("Shop.Order").fetch().latest_version == 2
    raw = requests.get(f"{server.url}/schemas/Shop.Order/2", auth=auth, timeout=5).json()
    assert raw["properties"]["total"] == {"type": "number"}
    # subscribable like any Twilio type
    sink = client.events.v1.sinks.create(description="d", sink_type="segment", sink_configuration={"write_key": "k"})
    sub = client.events.v1.subscriptions.create(
        description="d", sink_sid=sink.sid, types=[{"type": "com.example.shop.order.created", "schema_version": 1}]
    )
    assert client.events.v1.subscriptions(sub.sid).subscribed_events.list()[0].schema_version == 1
    # other accounts don't see it, and cannot hijack the schema id
    other = server.new_account()
    r = requests.get(f"{server.url}/v1/Types/com.example.shop.order.created", auth=other, timeout=5)
    assert r.status_code == 404
    r = requests.post(
        f"{server.url}/v1/Catalog/Schemas/Shop.Order/Versions",
        data={"Schema": json.dumps(SCHEMA_V1)},
        auth=other,
        timeout=5,
    )
    assert r.status_code == 201 and r.json()["schema_version"] == 1
    assert client.events.v1.schemas("Shop.Order").fetch().latest_version == 2
    # Twilio's namespace and schemas are reserved
    r = requests.post(
        f"{server.url}/v1/Catalog/Types",
        data={"Type": "com.twilio.fake", "SchemaId": "Shop.Order", "Description": "x"},
        auth=auth,
        timeout=5,
    )
    assert r.status_code == 400 and "reserved" in r.json()["message"]
    r = requests.post(
        f"{server.url}/v1/Catalog/Schemas/Messaging.MessageStatus/Versions",
        data={"Schema": json.dumps(SCHEMA_V1)},
        auth=auth,
        timeout=5,
    )
    assert r.status_code == 409
    r = requests.post(
        f"{server.url}/v1/Catalog/Schemas/Shop.Bad/Versions", data={"Schema": '{"type": 12}'}, auth=auth, timeout=5
    )
    assert r.status_code == 400 and "not a valid JSON Schema" in r.json()["message"]


def test_cli_register_schema_and_type(tmp_path: Path, server: Server) -> None:
    sid, token = server.new_account("ops")
    env = cli_env(server.url, sid, token)

    def run(*args: str) -> dict[str, object]:
        out = run_cli([*args, "-o", "json"], env, check=True)
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(SCHEMA_V1))
    made = run("catalog", "register-schema", "Ops.Thing", str(schema))
    assert (made["id"], made["schema_version"]) == ("Ops.Thing", 1)
    out = run("catalog", "register-type", "--schema-id", "Ops.Thing", "--description", "A thing",
              "com.example.ops.thing")  # fmt: skip
    assert (out["type"], out["schema_id"]) == ("com.example.ops.thing", "Ops.Thing")
    bad = run_cli(["catalog", "register-type", "--schema-id", "Nope", "--description", "x", "com.example.x"], env)
    assert bad.returncode == 1 and "does not exist" in bad.stderr
