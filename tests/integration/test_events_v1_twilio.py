"""Every Events v1 operation through the official ``twilio`` package,
reading back what was written, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.conftest import Receiver, Server

WEBHOOK = {"destination": "https://example.com/hook", "method": "POST", "batch_events": True}


def err(exc: pytest.ExceptionInfo[TwilioRestException]) -> tuple[int, int]:
    return exc.value.status, exc.value.code


def make_sink(client: Client, **cfg: object):
    return client.events.v1.sinks.create(description="hook", sink_configuration={**WEBHOOK, **cfg}, sink_type="webhook")


def test_types_list_fetch_and_filter(client: Client, server: Server) -> None:
    types = client.events.v1.event_types.list(page_size=20)
    assert len(types) > 100  # the whole catalogue, across pages
    names = [t.type for t in types]
    assert names == sorted(names) and len(set(names)) == len(names)
    delivered = client.events.v1.event_types("com.twilio.messaging.message.delivered").fetch()
    assert delivered.schema_id == "Messaging.MessageStatus"
    assert delivered.status == "available"
    assert delivered.url == f"{server.url}/v1/Types/com.twilio.messaging.message.delivered"
    assert delivered.links["schema"] == f"{server.url}/v1/Schemas/Messaging.MessageStatus/Versions"
    only = client.events.v1.event_types.list(schema_id="Messaging.MessageStatus")
    assert {t.type.rsplit(".", 1)[1] for t in only} >= {"queued", "sent", "delivered", "failed", "undelivered", "read"}
    assert all(t.schema_id == "Messaging.MessageStatus" for t in only)
    statuses = {t.status for t in types}
    assert statuses >= {"available", "deprecated", "discontinued", "restricted"}
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.event_types("com.example.nope").fetch()
    assert err(e) == (404, 91104)


def test_paging_meta_urls(client: Client, server: Server) -> None:
    page = client.events.v1.event_types.page(page_size=5)
    assert len(list(page)) == 5
    raw = requests.get(
        f"{server.url}/v1/Types?SchemaId=Messaging.MessageStatus&PageSize=2", auth=client.auth, timeout=5
    ).json()
    meta = raw["meta"]
    assert meta["key"] == "types" and meta["page"] == 0 and meta["page_size"] == 2
    assert meta["first_page_url"] == f"{server.url}/v1/Types?SchemaId=Messaging.MessageStatus&PageSize=2&Page=0"
    assert meta["previous_page_url"] is None
    second = requests.get(meta["next_page_url"], auth=client.auth, timeout=5).json()
    assert second["meta"]["page"] == 1
    assert second["types"][0]["type"] > raw["types"][-1]["type"]
    back = requests.get(second["meta"]["previous_page_url"], auth=client.auth, timeout=5).json()
    assert [t["type"] for t in back["types"]] == [t["type"] for t in raw["types"]]
    # walk to the end: next_page_url becomes null
    url, seen = meta["first_page_url"], []
    while url:
        body = requests.get(url, auth=client.auth, timeout=5).json()
        seen += [t["type"] for t in body["types"]]
        url = body["meta"]["next_page_url"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) >= 6
    # Page without a token means an offset
    third = requests.get(f"{server.url}/v1/Types?PageSize=2&Page=1", auth=client.auth, timeout=5).json()
    first = requests.get(f"{server.url}/v1/Types?PageSize=4", auth=client.auth, timeout=5).json()
    assert [t["type"] for t in third["types"]] == [t["type"] for t in first["types"][2:4]]
    for bad in ("PageSize=0", "PageSize=-5", "PageSize=x", "PageSize=1.5", "Page=-1", "PageToken=garbage"):
        r = requests.get(f"{server.url}/v1/Types?{bad}", auth=client.auth, timeout=5)
        assert r.status_code == 400 and r.json()["code"] == 91002, bad


def test_page_size_above_the_maximum_is_clamped(client: Client, server: Server) -> None:
    """As Twilio: PageSize above 1,000 is served as 1,000 (twilio-python sends list(limit=2000) as
    PageSize=2000), on every list."""
    everything = [t.type for t in client.events.v1.event_types.list()]
    assert len(everything) > 50  # more than one default page
    assert [t.type for t in client.events.v1.event_types.list(limit=2000)] == everything
    assert len(client.events.v1.schemas("Messaging.MessageStatus").versions.list(limit=5000)) >= 3
    assert isinstance(client.events.v1.sinks.list(limit=2000), list)  # a 400 before
    for path in ("/v1/Types", "/v1/Sinks", "/v1/Subscriptions", "/v1/Schemas/Messaging.MessageStatus/Versions"):
        r = requests.get(f"{server.url}{path}?PageSize=5000", auth=client.auth, timeout=10)
        assert r.status_code == 200, (path, r.text)
        meta = r.json()["meta"]
        assert meta["page_size"] == 1000 and "PageSize=1000" in meta["url"], (path, meta)
    r = requests.get(f"{server.url}/v1/Types?PageSize={'9' * 40}", auth=client.auth, timeout=10)
    assert r.status_code == 200 and r.json()["meta"]["page_size"] == 1000
    legacy = requests.get(f"{server.url}/2010-04-01/Accounts.json?PageSize=5000", auth=client.auth, timeout=10)
    assert legacy.status_code == 200 and legacy.json()["page_size"] == 1000


def test_custom_schema_documents_need_credentials(client: Client, server: Server) -> None:
    doc = {"type": "object", "properties": {"n": {"type": "integer"}}}
    r = requests.post(
        f"{server.url}/v1/Catalog/Schemas/Private.Doc/Versions",
        data={"Schema": json.dumps(doc)},
        auth=client.auth,
        timeout=5,
    )
    assert r.status_code == 201, r.text
    raw = r.json()["raw"]
    assert requests.get(raw, auth=client.auth, timeout=5).json() == doc
    # without credentials: 401, the same as for an id that does not exist (custom ids cannot be probed)
    for url in (raw, f"{server.url}/schemas/No.Such.Doc/1", f"{server.url}/schemas/Messaging.MessageStatus/999"):
        r = requests.get(url, timeout=5)
        assert r.status_code == 401 and r.json()["code"] == 20003, (url, r.text)
    assert requests.get(raw, auth=(client.username, "wrong"), timeout=5).status_code == 401


def test_schemas_and_versions(client: Client, server: Server) -> None:
    schema = client.events.v1.schemas("Messaging.MessageStatus").fetch()
    assert schema.id == "Messaging.MessageStatus" and schema.latest_version >= 3
    versions = client.events.v1.schemas("Messaging.MessageStatus").versions.list()
    assert [v.schema_version for v in versions] == list(range(1, schema.latest_version + 1))
    v1 = client.events.v1.schemas("Messaging.MessageStatus").versions(1).fetch()
    assert v1.raw == f"{server.url}/schemas/Messaging.MessageStatus/1"
    doc = requests.get(v1.raw, auth=client.auth, timeout=5)
    assert doc.status_code == 200 and doc.json()["type"] == "object"
    assert "messageStatus" in doc.json()["properties"]
    assert requests.get(v1.raw + ".json", auth=client.auth, timeout=5).json() == doc.json()
    # Twilio's published schemas are public (as at events-schemas.twilio.com)
    public = requests.get(v1.raw, timeout=5)
    assert public.status_code == 200 and public.json() == doc.json()
    assert public.headers["content-type"].startswith("application/schema+json")
    assert requests.get(v1.raw + "?x=1", timeout=5).status_code == 400
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.schemas("No.Such").fetch()
    assert e.value.status == 404
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.schemas("Messaging.MessageStatus").versions(999).fetch()
    assert e.value.status == 404


def test_sink_lifecycle(client: Client, server: Server) -> None:
    sink = make_sink(client)
    assert sink.sid.startswith("DG") and len(sink.sid) == 34
    assert sink.status == "active" and sink.sink_type == "webhook"
    assert sink.sink_configuration == WEBHOOK
    assert sink.links["sink_test"] == f"{server.url}/v1/Sinks/{sink.sid}/Test"
    fetched = client.events.v1.sinks(sink.sid).fetch()
    assert (fetched.description, fetched.sink_configuration, fetched.date_created) == (
        "hook",
        WEBHOOK,
        sink.date_created,
    )
    updated = client.events.v1.sinks(sink.sid).update(description="renamed")
    assert updated.description == "renamed"
    assert client.events.v1.sinks(sink.sid).fetch().description == "renamed"
    # mixed-case hex is the same sink
    assert client.events.v1.sinks("DG" + sink.sid[2:].upper()).fetch().sid == sink.sid
    kinesis = client.events.v1.sinks.create(
        description="k",
        sink_type="kinesis",
        sink_configuration={
            "arn": "arn:aws:kinesis:us-east-1:111111111111:stream/test",
            "role_arn": "arn:aws:iam::111111111111:role/Role",
            "external_id": "1234567890",
        },
    )
    segment = client.events.v1.sinks.create(
        description="s", sink_type="segment", sink_configuration={"write_key": "WK"}
    )
    assert segment.sink_configuration == {"write_key": "****"}  # masked on the creating response too
    listed = client.events.v1.sinks.list()
    assert [s.sid for s in listed] == [sink.sid, kinesis.sid, segment.sid]
    assert client.events.v1.sinks(kinesis.sid).delete() is True
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.sinks(kinesis.sid).fetch()
    assert err(e) == (404, 91001)
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.sinks("DGnothex").fetch()
    assert err(e) == (400, 91006)


def test_sink_filters_in_use_and_status(client: Client) -> None:
    used, free = make_sink(client), make_sink(client)
    client.events.v1.subscriptions.create(
        description="s", sink_sid=used.sid, types=[{"type": "com.twilio.messaging.message.sent"}]
    )
    assert [s.sid for s in client.events.v1.sinks.list(in_use=True)] == [used.sid]
    assert [s.sid for s in client.events.v1.sinks.list(in_use=False)] == [free.sid]
    assert len(client.events.v1.sinks.list(status="active")) == 2
    assert client.events.v1.sinks.list(status="failed") == []


@pytest.mark.parametrize(
    ("sink_type", "cfg", "needle"),
    [
        ("webhook", {"method": "POST", "batch_events": False}, "destination"),
        ("webhook", {"destination": "ftp://x", "method": "POST"}, "destination"),
        ("webhook", {"destination": "https://x.example", "method": "PUT"}, "method"),
        ("webhook", {"destination": "https://x.example", "method": "POST", "batch_events": "maybe"}, "batch_events"),
        ("webhook", {"destination": "https://x.example", "method": "POST", "colour": 1}, "colour"),
        ("webhook", {"destination": "https://-bad-.example/", "method": "POST"}, "invalid host name"),
        ("webhook", {"destination": "https://a..b/", "method": "POST"}, "invalid host name"),
        ("webhook", {"destination": "https://x.example/#rc=3", "method": "POST"}, "#fragment"),
        ("kinesis", {"arn": "arn:aws:kinesis:us-east-1:111111111111:stream/t", "external_id": "x"}, "role_arn"),
        ("kinesis", {"arn": "not-an-arn", "role_arn": "arn:aws:iam::111111111111:role/R", "external_id": "x"}, "arn"),
        (
            "kinesis",
            {"arn": "arn:aws:kinesis:us-east-1:111111111111:stream/t", "role_arn": "arn:aws:iam::111111111111:role/R"},
            "external_id",
        ),
        ("segment", {"write_key": ""}, "write_key"),
        ("pigeon", {"write_key": "x"}, "sink_type"),
        ("segment", {}, "non-empty"),
    ],
)
def test_sink_configuration_errors(client: Client, sink_type: str, cfg: dict[str, object], needle: str) -> None:
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.sinks.create(description="d", sink_configuration=cfg, sink_type=sink_type)
    assert err(e) == (400, 91000)
    assert needle in e.value.msg
    assert client.events.v1.sinks.list() == []  # nothing half-written


def test_sink_configuration_bad_json_and_empty_description(client: Client, server: Server) -> None:
    r = requests.post(
        f"{server.url}/v1/Sinks",
        data={"Description": "d", "SinkType": "webhook", "SinkConfiguration": "{not json"},
        auth=client.auth,
        timeout=5,
    )
    assert r.status_code == 400 and r.json()["code"] == 91000 and "not valid JSON" in r.json()["message"]
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.sinks.create(description=" ", sink_configuration=WEBHOOK, sink_type="webhook")
    assert err(e) == (400, 91000)


def test_sink_limit_100(client: Client) -> None:
    for _ in range(100):
        make_sink(client)
    with pytest.raises(TwilioRestException) as e:
        make_sink(client)
    assert err(e) == (400, 91003)
    assert len(client.events.v1.sinks.list(page_size=1000)) == 100


def test_sink_test_and_validate(client: Client, receiver: Receiver) -> None:
    sink = make_sink(client, destination=receiver.url + "/test")
    assert client.events.v1.sinks(sink.sid).sink_test.create().result == "submitted"
    # the test id reaches the sink inside com.twilio.eventstreams.test-event
    receiver.wait_for(lambda: len(receiver.events("/test")) == 1)
    test_id = receiver.events("/test")[0]["data"]["test_id"]
    assert client.events.v1.sinks(sink.sid).sink_validate.create(test_id=test_id).result == "valid"
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.sinks(sink.sid).sink_validate.create(test_id="00000000-0000-4000-8000-000000000000")
    assert err(e) == (400, 91004)
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.sinks(sink.sid).sink_validate.create(test_id="not-a-uuid")
    assert err(e) == (400, 91005)
    other = make_sink(client, destination=receiver.url + "/other")
    with pytest.raises(TwilioRestException) as e:  # a test id belongs to its sink
        client.events.v1.sinks(other.sid).sink_validate.create(test_id=test_id)
    assert err(e) == (400, 91004)


def test_subscription_lifecycle(client: Client, server: Server) -> None:
    sink = make_sink(client)
    sub = client.events.v1.subscriptions.create(
        description="msgs",
        sink_sid=sink.sid,
        types=[
            {"type": "com.twilio.messaging.message.delivered", "schema_version": 1},
            {"type": "com.twilio.messaging.message.failed"},
        ],
    )
    assert sub.sid.startswith("DF") and sub.sink_sid == sink.sid and sub.description == "msgs"
    assert sub.account_sid == client.username
    assert sub.links["subscribed_events"] == f"{server.url}/v1/Subscriptions/{sub.sid}/SubscribedEvents"
    latest = client.events.v1.schemas("Messaging.MessageStatus").fetch().latest_version
    events = client.events.v1.subscriptions(sub.sid).subscribed_events.list()
    assert {(e.type, e.schema_version) for e in events} == {
        ("com.twilio.messaging.message.delivered", 1),
        ("com.twilio.messaging.message.failed", latest),
    }
    assert client.events.v1.subscriptions(sub.sid).fetch().description == "msgs"
    assert client.events.v1.subscriptions(sub.sid).update(description="new").description == "new"
    assert [s.sid for s in client.events.v1.subscriptions.list(sink_sid=sink.sid)] == [sub.sid]
    other = make_sink(client)
    assert client.events.v1.subscriptions.list(sink_sid=other.sid) == []
    # subscribed events
    se = client.events.v1.subscriptions(sub.sid).subscribed_events
    added = se.create(type="com.twilio.messaging.message.sent", schema_version=2)
    assert (added.type, added.schema_version, added.subscription_sid) == (
        "com.twilio.messaging.message.sent",
        2,
        sub.sid,
    )
    assert se("com.twilio.messaging.message.sent").fetch().schema_version == 2
    assert se("com.twilio.messaging.message.sent").update(schema_version=3).schema_version == 3
    assert se("com.twilio.messaging.message.sent").fetch().schema_version == 3
    assert se("com.twilio.messaging.message.sent").delete() is True
    with pytest.raises(TwilioRestException) as e:
        se("com.twilio.messaging.message.sent").fetch()
    assert e.value.status == 404
    with pytest.raises(TwilioRestException) as e:
        se.create(type="com.twilio.messaging.message.failed")
    assert err(e) == (409, 91101)
    # a sink in use cannot be deleted
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.sinks(sink.sid).delete()
    assert err(e) == (409, 91007)
    # one subscription per sink
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.subscriptions.create(
            description="again", sink_sid=sink.sid, types=[{"type": "com.twilio.messaging.message.sent"}]
        )
    assert e.value.code == 91100 and sink.sid in e.value.msg
    assert client.events.v1.subscriptions(sub.sid).delete() is True
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.subscriptions(sub.sid).fetch()
    assert err(e) == (404, 91102)
    assert client.events.v1.sinks(sink.sid).fetch().status == "active"
    assert client.events.v1.sinks(sink.sid).delete() is True


@pytest.mark.parametrize(
    ("types", "code"),
    [
        ([], 91103),
        ([{"type": "com.example.unknown"}], 91104),
        ([{"type": "com.twilio.conversations.delivery.updated"}], 91104),  # discontinued
        ([{"type": "com.twilio.messaging.message.sent"}, {"type": "com.twilio.messaging.message.sent"}], 91101),
        ([{"type": "com.twilio.messaging.message.sent", "schema_version": 999}], 91201),
    ],
)
def test_subscription_type_errors(client: Client, types: list[dict[str, object]], code: int) -> None:
    sink = make_sink(client)
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.subscriptions.create(description="d", sink_sid=sink.sid, types=types)
    assert e.value.code == code
    assert client.events.v1.subscriptions.list() == []


def test_deprecated_type_can_be_subscribed(client: Client) -> None:
    deprecated = [t for t in client.events.v1.event_types.list() if t.status == "deprecated"]
    assert deprecated
    sink = make_sink(client)
    sub = client.events.v1.subscriptions.create(
        description="d", sink_sid=sink.sid, types=[{"type": deprecated[0].type}]
    )
    assert sub.sid


def test_subscription_errors(client: Client, server: Server) -> None:
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.subscriptions.create(description="d", sink_sid="DGxyz", types=[{"type": "x"}])
    assert err(e) == (400, 91006)
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.subscriptions.create(description="", sink_sid=make_sink(client).sid, types=[{"type": "x"}])
    assert e.value.code == 91101
    with pytest.raises(TwilioRestException) as e:
        client.events.v1.subscriptions("DF" + "0" * 32).fetch()
    assert err(e) == (404, 91102)
    # a single JSON array in Types is refused, as Twilio does
    r = requests.post(
        f"{server.url}/v1/Subscriptions",
        data={"Description": "d", "SinkSid": make_sink(client).sid, "Types": json.dumps([{"type": "a"}])},
        auth=client.auth,
        timeout=5,
    )
    assert r.status_code == 400 and "event_types[0].type" in r.json()["message"]


def test_subscription_limit_100(client: Client) -> None:
    for _ in range(100):
        sink = make_sink(client)
        client.events.v1.subscriptions.create(
            description="d", sink_sid=sink.sid, types=[{"type": "com.twilio.messaging.message.sent"}]
        )
    with pytest.raises(TwilioRestException) as e:
        make_sink(client)
    assert e.value.code == 91003  # 100 sinks already, all in use
    assert len(client.events.v1.subscriptions.list()) == 100


def test_subscription_limit_100_when_a_sink_may_carry_several(client: Client, server: Server) -> None:
    # With Twilio's one-subscription-per-sink rule off, the subscription limit is what binds.
    from dataclasses import replace

    control = server.services.control
    saved = control.settings
    control.settings = replace(saved, one_subscription_per_sink=False)
    try:
        sink = make_sink(client)
        for i in range(100):
            client.events.v1.subscriptions.create(
                description=f"d{i}", sink_sid=sink.sid, types=[{"type": "com.twilio.messaging.message.sent"}]
            )
        with pytest.raises(TwilioRestException) as e:
            client.events.v1.subscriptions.create(
                description="one too many", sink_sid=sink.sid, types=[{"type": "com.twilio.messaging.message.sent"}]
            )
        assert err(e) == (400, 91003)
        assert len(client.events.v1.subscriptions.list(sink_sid=sink.sid)) == 100
    finally:
        control.settings = saved


def test_paging_meta_on_sinks_and_subscriptions_keeps_filters(client: Client, server: Server) -> None:
    sinks = [make_sink(client) for _ in range(5)]
    for s in sinks[:3]:
        client.events.v1.subscriptions.create(
            description="d", sink_sid=s.sid, types=[{"type": "com.twilio.messaging.message.sent"}]
        )
    url = f"{server.url}/v1/Sinks?InUse=true&Status=active&PageSize=2"
    first = requests.get(url, auth=client.auth, timeout=5).json()
    meta = first["meta"]
    assert meta["first_page_url"] == f"{server.url}/v1/Sinks?InUse=true&Status=active&PageSize=2&Page=0"
    assert meta["previous_page_url"] is None and meta["key"] == "sinks"
    second = requests.get(meta["next_page_url"], auth=client.auth, timeout=5).json()
    assert "InUse=true" in meta["next_page_url"] and "Status=active" in meta["next_page_url"]
    assert second["meta"]["next_page_url"] is None  # 3 sinks in use: 2 + 1
    seen = [s["sid"] for s in first["sinks"] + second["sinks"]]
    assert sorted(seen) == sorted(s.sid for s in sinks[:3])
    back = requests.get(second["meta"]["previous_page_url"], auth=client.auth, timeout=5).json()
    assert [s["sid"] for s in back["sinks"]] == [s["sid"] for s in first["sinks"]]

    sub_url = f"{server.url}/v1/Subscriptions?SinkSid={sinks[0].sid}&PageSize=1"
    page = requests.get(sub_url, auth=client.auth, timeout=5).json()
    assert page["meta"]["first_page_url"] == f"{server.url}/v1/Subscriptions?SinkSid={sinks[0].sid}&PageSize=1&Page=0"
    assert len(page["subscriptions"]) == 1 and page["meta"]["next_page_url"] is None
    assert page["subscriptions"][0]["sink_sid"] == sinks[0].sid


def test_forged_or_foreign_page_tokens_are_400(client: Client, server: Server) -> None:
    import base64

    def token(direction: str, *key: object) -> str:
        raw = json.dumps([direction, *key]).encode()
        return "P" + direction.upper() + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    make_sink(client)
    sub_sink = make_sink(client)
    sub = client.events.v1.subscriptions.create(
        description="d", sink_sid=sub_sink.sid, types=[{"type": "com.twilio.messaging.message.sent"}]
    )
    lists = [
        "/v1/Types",
        "/v1/Schemas/Messaging.MessageStatus/Versions",
        "/v1/Sinks",
        "/v1/Subscriptions",
        f"/v1/Subscriptions/{sub.sid}/SubscribedEvents",
        f"/v1/Sinks/{sub_sink.sid}/Deliveries",
        f"/v1/Sinks/{sub_sink.sid}/DeadLetters",
        "/v1/Alerts",
        "/2010-04-01/Accounts.json",
        f"/2010-04-01/Accounts/{client.username}/Keys.json",
    ]
    forged = [
        token("a", "x"),  # one text key where a list sorts by two
        token("a", 1, 2, 3),
        token("b", "2024-01-01", 7),  # wrong type in the second place
        token("a", 2**70),  # beyond BIGINT
        token("a", "a\x00b"),  # NUL cannot be compared in PostgreSQL text
        token("a", "x", "y", "z", "w"),
    ]
    for path in lists:
        for t in forged:
            r = requests.get(f"{server.url}{path}", params={"PageToken": t}, auth=client.auth, timeout=5)
            if r.status_code == 200:
                continue  # a token of this list's own shape is a valid position, even if made up
            code = 21481 if path.startswith("/2010-04-01/") else 91002  # each API's own code for it
            assert r.status_code == 400 and r.json()["code"] == code, (path, t, r.status_code, r.text)
    # tokens of the right shape still page: they are keyset positions
    r = requests.get(f"{server.url}/v1/Types", params={"PageToken": token("a", "com.twilio.m")}, auth=client.auth)
    assert r.status_code == 200 and all(t["type"] > "com.twilio.m" for t in r.json()["types"])
