"""Accounts, subaccounts, API keys and isolation through the official client."""

from __future__ import annotations

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from tests.conftest import Server, twilio_error

WEBHOOK = {"destination": "https://example.com/hook", "method": "POST", "batch_events": False}


def test_wrong_credentials_are_401_20003(server: Server, account: tuple[str, str]) -> None:
    sid, token = account
    for auth in [(sid, "nope"), ("AC" + "0" * 32, token), ("SK" + "0" * 32, token), ("garbage", "x")]:
        assert twilio_error(lambda a=auth: server.client(*a).events.v1.sinks.list()) == (401, 20003)
        assert twilio_error(lambda a=auth: server.client(*a).events.v1.event_types("x").fetch()) == (401, 20003)
    r = requests.get(f"{server.url}/v1/Sinks", timeout=5)
    assert r.status_code == 401 and r.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_accounts_never_see_each_other(server: Server) -> None:
    a = server.client(*server.new_account("A"))
    b = server.client(*server.new_account("B"))
    sink = a.events.v1.sinks.create(description="a's", sink_configuration=WEBHOOK, sink_type="webhook")
    sub = a.events.v1.subscriptions.create(
        description="a's", sink_sid=sink.sid, types=[{"type": "com.twilio.messaging.message.sent"}]
    )
    assert b.events.v1.sinks.list() == [] and b.events.v1.subscriptions.list() == []
    for call in (
        lambda: b.events.v1.sinks(sink.sid).fetch(),
        lambda: b.events.v1.sinks(sink.sid).update(description="x"),
        lambda: b.events.v1.sinks(sink.sid).delete(),
        lambda: b.events.v1.sinks(sink.sid).sink_test.create(),
        lambda: b.events.v1.subscriptions(sub.sid).fetch(),
        lambda: b.events.v1.subscriptions(sub.sid).delete(),
        lambda: b.events.v1.subscriptions(sub.sid).subscribed_events.list(),
    ):
        assert twilio_error(call)[0] == 404
    with pytest.raises(TwilioRestException) as e:
        b.events.v1.subscriptions.create(
            description="x", sink_sid=sink.sid, types=[{"type": "com.twilio.messaging.message.sent"}]
        )
    assert e.value.status == 404
    assert a.events.v1.sinks(sink.sid).fetch().description == "a's"
    with pytest.raises(TwilioRestException) as e:
        b.api.v2010.accounts(a.username).fetch()
    assert e.value.status == 404


def test_subaccounts(server: Server) -> None:
    parent_sid, parent_token = server.new_account("Parent")
    parent = server.client(parent_sid, parent_token)
    sub = parent.api.v2010.accounts.create(friendly_name="Child")
    assert sub.sid.startswith("AC") and sub.owner_account_sid == parent_sid and sub.status == "active"
    assert sub.friendly_name == "Child" and sub.auth_token and sub.type == "Full"
    assert sub.subresource_uris["calls"] == f"/2010-04-01/Accounts/{sub.sid}/Calls.json"
    listed = parent.api.v2010.accounts.list()
    assert {a.sid for a in listed} == {parent_sid, sub.sid}
    assert [a.sid for a in parent.api.v2010.accounts.list(friendly_name="Child")] == [sub.sid]
    assert parent.api.v2010.accounts(sub.sid).fetch().auth_token == sub.auth_token

    # the subaccount's own credentials see only its own resources
    child = server.client(sub.sid, sub.auth_token)
    child_sink = child.events.v1.sinks.create(description="child", sink_configuration=WEBHOOK, sink_type="webhook")
    parent_sink = parent.events.v1.sinks.create(description="parent", sink_configuration=WEBHOOK, sink_type="webhook")
    assert [s.sid for s in child.events.v1.sinks.list()] == [child_sink.sid]
    assert [s.sid for s in parent.events.v1.sinks.list()] == [parent_sink.sid]
    with pytest.raises(TwilioRestException):
        child.events.v1.sinks(parent_sink.sid).fetch()
    # parent manages the subaccount: subaccount SID as username, parent token as password
    as_child = server.client(sub.sid, parent_token)
    assert [s.sid for s in as_child.events.v1.sinks.list()] == [child_sink.sid]
    # ... or the X-Eventstreams-Account header
    r = requests.get(
        f"{server.url}/v1/Sinks",
        auth=(parent_sid, parent_token),
        headers={"X-Eventstreams-Account": sub.sid},
        timeout=5,
    )
    assert [s["sid"] for s in r.json()["sinks"]] == [child_sink.sid]
    # never the reverse: the child's token cannot act on the parent
    assert twilio_error(lambda: server.client(parent_sid, sub.auth_token).events.v1.sinks.list())[0] == 401
    r = requests.get(
        f"{server.url}/v1/Sinks",
        auth=(sub.sid, sub.auth_token),
        headers={"X-Eventstreams-Account": parent_sid},
        timeout=5,
    )
    assert r.status_code == 401
    # subaccounts cannot create subaccounts, nor list the parent
    with pytest.raises(TwilioRestException) as e:
        child.api.v2010.accounts.create(friendly_name="grandchild")
    assert e.value.status == 403
    assert [a.sid for a in child.api.v2010.accounts.list()] == [sub.sid]
    with pytest.raises(TwilioRestException) as e:
        child.api.v2010.accounts(parent_sid).fetch()
    assert e.value.status == 404
    # suspend: the child's credentials stop working; reactivate
    assert parent.api.v2010.accounts(sub.sid).update(status="suspended").status == "suspended"
    assert twilio_error(lambda: child.events.v1.sinks.list())[0] == 401
    parent.api.v2010.accounts(sub.sid).update(status="active", friendly_name="Renamed")
    assert child.events.v1.sinks.list()[0].sid == child_sink.sid
    assert parent.api.v2010.accounts(sub.sid).fetch().friendly_name == "Renamed"
    parent.api.v2010.accounts(sub.sid).update(status="closed")
    with pytest.raises(TwilioRestException) as e:
        parent.api.v2010.accounts(sub.sid).update(status="active")
    assert e.value.status == 400
    # each subaccount has its own limits: the parent's 100 sinks don't count against it
    other = parent.api.v2010.accounts.create(friendly_name="Other")
    for _ in range(99):  # the parent already has one
        parent.events.v1.sinks.create(description="p", sink_configuration=WEBHOOK, sink_type="webhook")
    with pytest.raises(TwilioRestException) as e:
        parent.events.v1.sinks.create(description="p", sink_configuration=WEBHOOK, sink_type="webhook")
    assert e.value.code == 91003
    server.client(other.sid, other.auth_token).events.v1.sinks.create(
        description="o", sink_configuration=WEBHOOK, sink_type="webhook"
    )


def test_api_keys(server: Server, account: tuple[str, str]) -> None:
    sid, token = account
    client = server.client(sid, token)
    key = client.api.v2010.accounts(sid).new_keys.create(friendly_name="ci")
    assert key.sid.startswith("SK") and key.secret
    keyed = server.client(key.sid, key.secret, sid)
    sink = keyed.events.v1.sinks.create(description="via key", sink_configuration=WEBHOOK, sink_type="webhook")
    assert [s.sid for s in client.events.v1.sinks.list()] == [sink.sid]
    assert [k.sid for k in client.api.v2010.accounts(sid).keys.list()] == [key.sid]
    assert client.api.v2010.accounts(sid).keys(key.sid).fetch().friendly_name == "ci"
    assert twilio_error(lambda: server.client(key.sid, "wrong").events.v1.sinks.list())[0] == 401
    # a Standard key (the only kind the API mints) may not touch Accounts or Keys: no auth token,
    # no new keys, no subaccounts
    for attempt in (
        lambda: keyed.api.v2010.accounts(sid).fetch(),
        lambda: keyed.api.v2010.accounts.create(friendly_name="via key"),
        lambda: keyed.api.v2010.accounts(sid).new_keys.create(friendly_name="minted by a key"),
        lambda: keyed.api.v2010.accounts(sid).keys(key.sid).delete(),
    ):
        assert twilio_error(attempt) == (401, 20003)
    assert [a.sid for a in client.api.v2010.accounts.list()] == [sid]
    assert [k.sid for k in client.api.v2010.accounts(sid).keys.list()] == [key.sid]
    assert client.api.v2010.accounts(sid).keys(key.sid).delete() is True
    assert twilio_error(lambda: keyed.events.v1.sinks.list())[0] == 401


def test_secrets_are_not_stored_in_clear(server: Server, account: tuple[str, str]) -> None:
    sid, token = account
    client = server.client(sid, token)
    key = client.api.v2010.accounts(sid).new_keys.create()
    client.events.v1.sinks.create(
        description="s", sink_configuration={"write_key": "SEGMENT-WRITE-KEY-123"}, sink_type="segment"
    )
    store = server.services.store

    async def dump() -> str:
        out = []
        for table in ("accounts", "api_keys", "sinks"):
            rows = await store.db.run(lambda tx, t=table: tx.all(f"SELECT * FROM {t}"))
            out.append(repr(rows))
        return "\n".join(out)

    text = server.call(dump())
    assert sid in text
    for secret in (token, key.secret, "SEGMENT-WRITE-KEY-123"):
        assert secret not in text


def test_healthz_and_openapi(server: Server) -> None:
    assert requests.get(f"{server.url}/healthz", timeout=5).json() == {"status": "ok"}
    doc = requests.get(f"{server.url}/openapi.json", timeout=5).json()
    assert doc["servers"] == [{"url": server.url}]
    spec_paths = {
        "/v1/Types", "/v1/Types/{Type}", "/v1/Schemas/{Id}", "/v1/Schemas/{Id}/Versions",
        "/v1/Schemas/{Id}/Versions/{SchemaVersion}", "/v1/Sinks", "/v1/Sinks/{Sid}", "/v1/Sinks/{Sid}/Test",
        "/v1/Sinks/{Sid}/Validate", "/v1/Subscriptions", "/v1/Subscriptions/{Sid}",
        "/v1/Subscriptions/{SubscriptionSid}/SubscribedEvents",
        "/v1/Subscriptions/{SubscriptionSid}/SubscribedEvents/{Type}",
    }  # fmt: skip
    assert spec_paths <= set(doc["paths"])
    assert "/2010-04-01/Accounts.json" in doc["paths"] and "/v1/Catalog/Types" in doc["paths"]
