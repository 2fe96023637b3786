"""Control-plane rules, called directly (no HTTP): limits, in-use conflicts, Twilio's codes."""

from __future__ import annotations

import json

import pytest

from eventstreams.domain import control
from eventstreams.domain.accounts import Principal
from eventstreams.errors import LIMIT_REACHED, SINK_IN_USE, SUBSCRIPTION_SINK_NOT_ACTIVE, TwilioError
from eventstreams.runtime import Runtime

CONFIG = json.dumps({"destination": "http://127.0.0.1:9/x", "method": "POST", "batch_events": False})
DELIVERED = json.dumps({"type": "com.twilio.messaging.message.delivered"})


async def test_the_sink_limit_is_enforced_per_account(
    runtime: Runtime, principal: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "MAX_SINKS", 2)
    for i in range(2):
        await runtime.control.create_sink(principal, f"s{i}", "webhook", CONFIG)
    with pytest.raises(TwilioError) as err:
        await runtime.control.create_sink(principal, "one too many", "webhook", CONFIG)
    assert (err.value.code, err.value.status) == (LIMIT_REACHED, 400)


async def test_a_sink_in_use_cannot_be_deleted_and_carries_one_subscription(
    runtime: Runtime, principal: Principal
) -> None:
    sink = await runtime.control.create_sink(principal, "s", "webhook", CONFIG)
    await runtime.control.create_subscription(principal, "first", sink.row.sid, [DELIVERED])
    with pytest.raises(TwilioError) as second:
        await runtime.control.create_subscription(principal, "second", sink.row.sid, [DELIVERED])
    assert (second.value.code, second.value.status) == (SUBSCRIPTION_SINK_NOT_ACTIVE, 409)
    with pytest.raises(TwilioError) as in_use:
        await runtime.control.delete_sink(principal, sink.row.sid)
    assert (in_use.value.code, in_use.value.status) == (SINK_IN_USE, 409)


async def test_an_account_sees_none_of_another_accounts_sinks(runtime: Runtime, principal: Principal) -> None:
    from tests.unit.conftest import new_principal

    other = await new_principal(runtime, "other")
    sink = await runtime.control.create_sink(principal, "mine", "webhook", CONFIG)
    with pytest.raises(TwilioError) as err:
        await runtime.control.get_sink(other, sink.row.sid)
    assert err.value.status == 404
