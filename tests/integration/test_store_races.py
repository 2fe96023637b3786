"""Concurrent control-plane calls never answer 500: a unique-key race between two
requests is translated at the store's seam into Twilio's error (or, where the
store serialises the requests, both succeed). Run on both backends; the races
are real on PostgreSQL (many connections), where the old code answered 500."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import Server

N = 12  # concurrent requests per race
ROUNDS = 3
SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}}}


def race(call: Callable[[], requests.Response]) -> list[requests.Response]:
    """``N`` calls released together by a barrier, so they overlap in the server."""
    gate = threading.Barrier(N)

    def one() -> requests.Response:
        gate.wait(10)
        return call()

    with ThreadPoolExecutor(N) as pool:
        return list(pool.map(lambda _: one(), range(N)))


def assert_twilio_answers(answers: list[requests.Response]) -> None:
    for r in answers:
        assert r.status_code < 500, r.text
        if r.status_code >= 400:
            body = r.json()
            assert {"code", "message", "more_info", "status"} <= body.keys(), body
            assert body["status"] == r.status_code


def test_concurrent_schema_versions_each_get_the_next_version(server: Server, account: tuple[str, str]) -> None:
    for n in range(ROUNDS):
        url = f"{server.url}/v1/Catalog/Schemas/Race.Schema{n}/Versions"
        answers = race(lambda url=url: requests.post(url, data={"Schema": json.dumps(SCHEMA)}, auth=account, timeout=30))
        assert_twilio_answers(answers)
        assert sorted(r.json()["schema_version"] for r in answers) == list(range(1, N + 1))


def test_concurrent_registrations_of_one_type(server: Server, account: tuple[str, str]) -> None:
    url = f"{server.url}/v1/Catalog/Schemas/Race.Typed/Versions"
    assert requests.post(url, data={"Schema": json.dumps(SCHEMA)}, auth=account, timeout=10).status_code == 201
    for n in range(ROUNDS):
        data = {"Type": f"com.example.race{n}", "SchemaId": "Race.Typed", "Description": "raced"}
        answers = race(lambda data=data: requests.post(f"{server.url}/v1/Catalog/Types", data=data, auth=account,
                                                       timeout=30))  # fmt: skip
        assert_twilio_answers(answers)
        assert all(r.status_code == 201 for r in answers), [r.text for r in answers]


def test_concurrent_adds_of_one_subscribed_type(server: Server, account: tuple[str, str]) -> None:
    client = server.client(*account)
    sink = client.events.v1.sinks.create(description="r", sink_type="segment", sink_configuration={"write_key": "k"})
    sub = client.events.v1.subscriptions.create(
        description="r", sink_sid=sink.sid, types=[{"type": "com.twilio.messaging.message.sent"}]
    )
    url = f"{server.url}/v1/Subscriptions/{sub.sid}/SubscribedEvents"
    for t in ("com.twilio.messaging.message.delivered", "com.twilio.messaging.message.failed",
              "com.twilio.messaging.message.read"):  # fmt: skip
        answers = race(lambda t=t: requests.post(url, data={"Type": t}, auth=account, timeout=30))
        assert_twilio_answers(answers)
        assert sorted(r.status_code for r in answers) == [201] + [409] * (N - 1)


def test_concurrent_creations_never_overshoot_a_limit(
    server: Server, account: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Limits are counted in the inserting transaction, under the account's lock: N racing
    creations of API keys, types and schemas stop exactly at the limit."""
    from eventstreams.domain import accounts, control

    monkeypatch.setattr(accounts, "MAX_API_KEYS", 3)
    monkeypatch.setattr(control, "MAX_TYPES", 3)
    monkeypatch.setattr(control, "MAX_SCHEMAS", 3)
    keys = f"{server.url}/2010-04-01/Accounts/{account[0]}/Keys.json"
    schema = f"{server.url}/v1/Catalog/Schemas/Limited.%d/Versions"
    answers = race(lambda: requests.post(keys, data={"FriendlyName": "k"}, auth=account, timeout=30))
    assert_twilio_answers(answers)
    assert sorted(r.status_code for r in answers) == [201] * 3 + [400] * (N - 3)
    counter = iter(range(N))
    answers = race(lambda: requests.post(schema % next(counter), data={"Schema": json.dumps(SCHEMA)}, auth=account,
                                         timeout=30))  # fmt: skip
    assert_twilio_answers(answers)
    assert sorted(r.status_code for r in answers) == [201] * 3 + [400] * (N - 3)
    created = [r.json()["id"] for r in answers if r.status_code == 201]
    names = iter(range(N))
    answers = race(lambda: requests.post(f"{server.url}/v1/Catalog/Types", auth=account, timeout=30, data={
        "Type": f"com.example.limited{next(names)}", "SchemaId": created[0], "Description": "d"}))  # fmt: skip
    assert_twilio_answers(answers)
    assert sorted(r.status_code for r in answers) == [201] * 3 + [400] * (N - 3)
    assert {r.json()["code"] for r in answers if r.status_code == 400} == {91003}


def test_a_subscription_racing_its_sinks_deletion_is_never_a_500(server: Server, account: tuple[str, str]) -> None:
    """Subscribing to a sink while another request deletes it: 201, or Twilio's 404/409, never 500."""
    client = server.client(*account)
    for _ in range(ROUNDS):
        sink = client.events.v1.sinks.create(description="r", sink_type="segment", sink_configuration={"write_key": "k"})
        types = json.dumps({"type": "com.twilio.messaging.message.sent"})
        calls = iter(range(N))

        def one(sid: str = sink.sid) -> requests.Response:
            if next(calls) % 2:
                return requests.delete(f"{server.url}/v1/Sinks/{sid}", auth=account, timeout=30)
            return requests.post(f"{server.url}/v1/Subscriptions", auth=account, timeout=30,
                                 data={"Description": "r", "SinkSid": sid, "Types": types})  # fmt: skip

        answers = race(one)
        assert_twilio_answers(answers)
