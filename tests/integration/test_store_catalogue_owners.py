"""Security finding 5: custom event type names and schema ids are unique per
owner, not globally. Another tenant registering the same name gets its own
(no "409 not yours" that confirms the first tenant's type exists, no squatting);
each sees and publishes against only its own. Built-in names stay reserved."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.conftest import Server

SCHEMA_A = {"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}
SCHEMA_B = {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]}
TYPE = "com.example.same.name"


def register(server: Server, auth: tuple[str, str], schema: dict[str, Any], description: str) -> None:
    r = requests.post(f"{server.url}/v1/Catalog/Schemas/Same.Schema/Versions",
                      data={"Schema": json.dumps(schema)}, auth=auth, timeout=10)  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["schema_version"] == 1  # its own first version, whoever registered first
    r = requests.post(f"{server.url}/v1/Catalog/Types",
                      data={"Type": TYPE, "SchemaId": "Same.Schema", "Description": description},
                      auth=auth, timeout=10)  # fmt: skip
    assert r.status_code == 201, r.text


def publish(server: Server, auth: tuple[str, str], n: int, data: dict[str, Any]) -> requests.Response:
    event = {"specversion": "1.0", "type": TYPE, "source": "/shop", "id": f"EV{auth[0]}{n}",
             "time": "2026-01-01T00:00:00Z", "datacontenttype": "application/json", "data": data}  # fmt: skip
    return requests.post(f"{server.url}/v1/Events", data=json.dumps(event),
                         headers={"Content-Type": "application/cloudevents+json"}, auth=auth, timeout=10)  # fmt: skip


def test_two_tenants_register_the_same_names(server: Server) -> None:
    a = server.new_account("tenant a")
    b = server.new_account("tenant b")
    register(server, a, SCHEMA_A, "A's orders")
    register(server, b, SCHEMA_B, "B's payments")
    for auth, schema, description in ((a, SCHEMA_A, "A's orders"), (b, SCHEMA_B, "B's payments")):
        client = server.client(*auth)
        assert client.events.v1.event_types(TYPE).fetch().description == description
        custom = [t.type for t in client.events.v1.event_types.list(schema_id="Same.Schema")]
        assert custom == [TYPE]  # one, its own
        assert client.events.v1.schemas("Same.Schema").fetch().latest_version == 1
        versions = client.events.v1.schemas("Same.Schema").versions.list()
        assert [v.schema_version for v in versions] == [1]
        raw = requests.get(f"{server.url}/schemas/Same.Schema/1", auth=auth, timeout=10).json()
        assert raw == schema
    # each validates against its own schema
    assert publish(server, a, 1, {"orderId": "o-1"}).status_code == 201
    assert publish(server, b, 1, {"amount": 3}).status_code == 201
    assert publish(server, a, 2, {"amount": 3}).status_code == 400
    assert publish(server, b, 2, {"orderId": "o-1"}).status_code == 400
    # a second version is the owner's alone
    r = requests.post(f"{server.url}/v1/Catalog/Schemas/Same.Schema/Versions",
                      data={"Schema": json.dumps(SCHEMA_A)}, auth=a, timeout=10)  # fmt: skip
    assert r.json()["schema_version"] == 2
    assert server.client(*b).events.v1.schemas("Same.Schema").fetch().latest_version == 1


def test_builtin_names_stay_reserved(server: Server) -> None:
    auth = server.new_account("reserved")
    r = requests.post(f"{server.url}/v1/Catalog/Schemas/Messaging.MessageStatus/Versions",
                      data={"Schema": json.dumps(SCHEMA_A)}, auth=auth, timeout=10)  # fmt: skip
    assert r.status_code == 409
    latest = server.client(*auth).events.v1.schemas("Messaging.MessageStatus").fetch().latest_version
    assert latest is not None and latest >= 1  # still Twilio's
