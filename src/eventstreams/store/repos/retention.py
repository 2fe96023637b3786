"""Retention: delete what has outlived its window. What grows with traffic (the event log, the dedupe ids,
the delivery log) goes in chunks, a transaction each, so that publishing goes on between them; events by
ranges of each account's log."""

from __future__ import annotations

from functools import partial

from ..db import Tx
from . import Repository

CHUNK = 5000  # rows deleted per transaction

#: the twilio-sms sink's per-profile rate window: its ledger rows are counted that long
SMS_RATE_WINDOW_MS = 3600 * 1000


class Retention(Repository):
    area = "retention"

    async def prune(self, now_ms: int, keep: dict[str, int], chunk: int = CHUNK) -> dict[str, int]:
        """Delete expired rows; ``keep`` maps log/errors/dedupe/events to ages in ms."""
        q = self.q
        out = {
            "delivery_log": await self._chunked(q.log, now_ms - keep["log"], chunk)
            + await self._chunked(q.error_log, now_ms - keep["errors"], chunk),
            "event_ids": await self._chunked(q.event_ids, now_ms - keep["dedupe"], chunk),
        }

        def small(tx: Tx) -> dict[str, int]:
            return {"alerts": tx.run(q.alerts, t=now_ms - keep["errors"]),
                    "dead_letters": tx.run(q.dead_letters, t=now_ms - keep["errors"])}  # fmt: skip

        out.update(await self.db.run(small, write=True))
        out["events"] = await self._events(now_ms - keep["events"], chunk)  # after dead letters: they hold events
        # a text's ledger row stops a second text for as long as its event could be replayed: from the event
        # log, and from a dead letter (kept for the error window, which may be the longer)
        out["sms_messages"] = await self.db.run(
            lambda tx: tx.run(q.sms_ledger, t=now_ms - sms_ledger_keep_ms(keep)), write=True
        )
        return out

    async def _chunked(self, sql: str, t: int, chunk: int) -> int:
        """``sql`` deletes up to ``chunk`` rows older than ``t`` from ``since`` on, in time order, and returns
        their times: the next chunk starts at the last of them."""

        def step(tx: Tx, since: int) -> list[int]:
            return [int(r["at"]) for r in tx.all(sql, t=t, since=since, n=chunk)]

        n, since = 0, -(2**62)
        while True:
            done = await self.db.run(partial(step, since=since), write=True)
            n += len(done)
            if len(done) < chunk:
                return n
            since = max(done)

    async def _events(self, t: int, chunk: int) -> int:
        """Each account's log from its start up to the newest event older than ``t``, stopping short of
        what a subscribed sink's cursor has yet to read and of a batch being sent."""
        q = self.q

        def accounts(tx: Tx) -> list[str]:
            return [r["account_sid"] for r in tx.all(q.event_accounts)]

        def bound(tx: Tx, a: str) -> int | None:
            b = tx.one(q.events_upto, a=a, t=t)
            if b is None or b["old"] is None:
                return None
            return min(int(v) for v in (b["old"], b["unread"], b["sending"]) if v is not None)

        def step(tx: Tx, a: str, after: int, upto: int) -> tuple[int, int | None]:
            w = tx.one(q.events_window, a=a, after=after, upto=upto, n=chunk)
            if w is None or w["hi"] is None:
                return 0, None
            hi = int(w["hi"])
            return tx.run(q.events, a=a, after=after, hi=hi, t=t), hi

        n = 0
        for acct in await self.db.run(accounts):
            upto = await self.db.run(partial(bound, a=acct))
            after: int | None = 0
            while upto is not None and after is not None:
                done, after = await self.db.run(partial(step, a=acct, after=after, upto=upto), write=True)
                n += done
        return n


def sms_ledger_keep_ms(keep: dict[str, int]) -> int:
    """How long the twilio-sms ledger keeps a row: as long as events and dead letters (either may be
    replayed), and at least the rate window it is counted in."""
    return max(keep["events"], keep["errors"], SMS_RATE_WINDOW_MS)
