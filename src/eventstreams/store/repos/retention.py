"""Retention: delete what has outlived its window, in one transaction."""

from __future__ import annotations

from ..db import Tx
from . import Repository

#: the twilio-sms sink's per-profile rate window: its ledger rows are counted that long
SMS_RATE_WINDOW_MS = 3600 * 1000


class Retention(Repository):
    area = "retention"

    async def prune(self, now_ms: int, keep: dict[str, int]) -> dict[str, int]:
        """Delete expired rows; ``keep`` maps log/errors/dedupe/events to ages in ms."""

        def go(tx: Tx) -> dict[str, int]:
            q = self.q
            return {
                "delivery_log": tx.run(q.log, t=now_ms - keep["log"]) + tx.run(q.error_log, t=now_ms - keep["errors"]),
                "alerts": tx.run(q.alerts, t=now_ms - keep["errors"]),
                "dead_letters": tx.run(q.dead_letters, t=now_ms - keep["errors"]),
                "event_ids": tx.run(q.event_ids, t=now_ms - keep["dedupe"]),
                "events": tx.run(q.events, t=now_ms - keep["events"]),  # after dead letters: they hold events
                # a text's ledger row stops a second text for as long as its event could be replayed: from the
                # event log, and from a dead letter (kept for the error window, which may be the longer)
                "sms_messages": tx.run(q.sms_ledger, t=now_ms - sms_ledger_keep_ms(keep)),
            }

        return await self.db.run(go, write=True)


def sms_ledger_keep_ms(keep: dict[str, int]) -> int:
    """How long the twilio-sms ledger keeps a row: as long as events and dead letters (either may be
    replayed), and at least the rate window it is counted in."""
    return max(keep["events"], keep["errors"], SMS_RATE_WINDOW_MS)
