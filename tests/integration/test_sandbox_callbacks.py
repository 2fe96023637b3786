"""The sandbox's status clock against real databases (SQLite file and PostgreSQL): two clocks on one
store never move a row twice, and every callback arrives once, in order, signed."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from eventstreams.runtime import build_runtime
from eventstreams.sandbox.lifecycle import StatusClock
from tests.conftest import Receiver, make_settings

TO = "+14155550100"
FROM = "+15017122661"


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
