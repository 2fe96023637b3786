"""The sandbox's status clock against real servers and databases (SQLite file and PostgreSQL): the
official ``twilio`` client creates a message and a call, their status callbacks reach eventstreams'
own bridge, which verifies their signatures and publishes them; two clocks on one store never move a
row twice, and every callback arrives once, in order, signed."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
import requests
from twilio.request_validator import RequestValidator

from eventstreams.runtime import build_runtime
from eventstreams.sandbox.lifecycle import StatusClock
from eventstreams.store.packing import unpack
from tests.conftest import Receiver, Server, make_settings

TO = "+14155550100"
FROM = "+15017122661"


def _events(srv: Server, account_sid: str) -> list[dict[str, Any]]:
    rows = srv.call(
        srv.services.store.db.run(
            lambda tx: tx.all("SELECT payload, packed FROM events WHERE account_sid = :a ORDER BY seq", a=account_sid)
        )
    )
    return [orjson.loads(unpack(r["payload"], r["packed"])) for r in rows]


def _wait(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_callbacks_of_a_message_and_a_call_made_with_the_twilio_client_pass_our_bridge(
    sandbox_server: Server,
) -> None:
    srv = sandbox_server
    twilio_sid, twilio_token = srv.new_account("the sandbox's Twilio account")
    target_sid, target_token = srv.new_account("the bridge's eventstreams account")
    r = requests.post(f"{srv.url}/v1/Bridge/Credentials", auth=(target_sid, target_token), timeout=10,
                      data={"TwilioAccountSid": twilio_sid, "TwilioAuthToken": twilio_token})  # fmt: skip
    assert r.status_code in (200, 201), r.text
    urls = r.json()["urls"]
    c = srv.client(twilio_sid, twilio_token)

    m = c.messages.create(to=TO, from_=FROM, body="through the bridge", status_callback=urls["messaging_status"])
    call = c.calls.create(to=TO, from_=FROM, url="https://example.com/twiml", status_callback=urls["voice_status"],
                          status_callback_event=["initiated", "ringing", "answered", "completed"])  # fmt: skip
    assert m.status == "queued" and call.status == "queued"

    def bridged() -> list[str]:
        return [e["type"].removeprefix("com.twilio.") for e in _events(srv, target_sid)]

    # "sending" has no Event Streams type: the bridge answers it 200 and publishes nothing
    want = ["messaging.message.sent", "messaging.message.delivered"] + [
        f"voice.status-callback.call.{e}" for e in ("initiated", "ringing", "answered", "completed")
    ]
    _wait(lambda: sorted(bridged()) == sorted(want))
    assert c.messages(m.sid).fetch().status == "delivered"
    assert c.calls(call.sid).fetch().status == "completed"
    # the sandbox published the same changes into its own account, with the bridge's mapping
    own = {e["type"]: e for e in _events(srv, twilio_sid)}
    for e in _events(srv, target_sid):
        mine = own[e["type"]]
        assert mine["source"] == e["source"] and mine["id"] != e["id"]  # same change, another account
        if e["type"].startswith("com.twilio.messaging."):
            drop = ("timestamp",)  # the bridge stamps a message callback on arrival
            assert {k: v for k, v in mine["data"].items() if k not in drop} == {
                k: v for k, v in e["data"].items() if k not in drop
            }
        else:
            assert mine["data"]["request"]["parameters"] == e["data"]["request"]["parameters"]
    assert "com.twilio.messaging.message.queued" in own


async def test_two_clocks_on_one_database_never_move_a_row_twice(
    database: str, tmp_path: Path, receiver: Receiver
) -> None:
    a = await build_runtime(make_settings(database, tmp_path, sandbox_step_seconds=0.0))
    b = await build_runtime(make_settings(database, tmp_path, sandbox_step_seconds=0.0))
    clocks = [StatusClock(rt.store, rt.sandbox, rt.accounts, rt.publisher, allow_private=True) for rt in (a, b)]
    try:
        account, token = await a.accounts.create("sandbox")
        await a.sandbox.set_behaviour(account, {"outcomes": "+14155550199=failed:30007", "publish_events": False})
        sids = []
        for i in range(40):
            to = "+14155550199" if i % 4 == 0 else TO
            msg = await a.sandbox.send_message(account, to, FROM, None, f"m{i}", [], f"{receiver.url}/cb")
            sids.append(msg.sid)
        made = [0, 0]

        async def run(i: int) -> None:
            deadline = time.monotonic() + 60
            while await a.store.sandbox.next_due() is not None:
                assert time.monotonic() < deadline, "rows still moving"
                made[i] += await clocks[i].tick(limit=5)
                await asyncio.sleep(0)

        await asyncio.gather(run(0), run(1))
        assert made[0] > 0 and made[1] > 0  # both clocks took part
        seen: dict[str, list[str]] = defaultdict(list)
        validator = RequestValidator(token)
        for r in receiver.requests:
            form = dict(parse_qsl(r["body"].decode()))
            assert validator.validate(receiver.url + r["path"], form, r["headers"]["X-Twilio-Signature"])
            seen[form["MessageSid"]].append(form["MessageStatus"])
        for i, sid in enumerate(sids):
            want = ["sending", "failed"] if i % 4 == 0 else ["sending", "sent", "delivered"]
            assert seen[sid] == want, (sid, seen[sid])
        assert sum(made) == sum(len(v) for v in seen.values())
    finally:
        for c in clocks:
            await c.stop()
        await a.close()
        await b.close()
