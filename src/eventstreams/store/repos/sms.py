"""The twilio-sms sink's ledger: one row per (sink, messageId, recipient), claimed before a text is
sent (the rules: sinks/twilio_sms/sender.py; status callbacks: bridge/sms.py); and its opt-outs, one row per
(account, E.164 number)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..db import Row, Tx
from ..records import SmsRow
from . import Repository

#: where an opt-out came from: an inbound STOP (bridge/sms.py), or Twilio's 21610 answer to a send
OPT_OUT_INBOUND = "inbound"
OPT_OUT_TWILIO = "twilio"

ClaimState = Literal["claimed", "sent", "in_flight", "unknown", "rate_limited"]


@dataclass(frozen=True, slots=True)
class Claim:
    """What :meth:`SmsLedger.claim` found: ``claimed`` (send now), ``sent`` (``row`` has the message SID),
    ``in_flight`` (another attempt holds a fresh claim), ``unknown`` (a claim older than the lease with no
    answer: a crash mid-request), ``rate_limited`` (the rate key's texts in the window reached the limit)."""

    state: ClaimState
    row: SmsRow | None = None


@dataclass(frozen=True, slots=True)
class OptOut:
    """A number that takes no texts from an account: ``source`` ``inbound`` (a STOP keyword) or ``twilio``
    (Twilio answered 21610, the recipient unsubscribed), since ``date_created``."""

    phone: str
    source: str
    date_created: str


def _row(r: Row) -> SmsRow:
    return SmsRow(**r)


class SmsLedger(Repository):
    area = "sms"

    async def claim(self, row: SmsRow, lease_ms: int, rate_since_ms: int, rate_limit: int) -> Claim:
        """Claim ``row``'s key for a send at ``row.claimed_ms`` in one transaction (rate counted under
        the account's lock, so two lanes cannot both take the last text of the hour)."""
        key = {k: getattr(row, k) for k in ("account_sid", "sink_sid", "message_id", "recipient")}
        fields = {
            "event_id": row.event_id,
            "profile_id": row.profile_id,
            "user_id": row.user_id,
            "anonymous_id": row.anonymous_id,
            "rate_key": row.rate_key,
            "claimed_ms": row.claimed_ms,
            "now": row.date_created,
        }

        def go(tx: Tx) -> Claim:
            self.d.lock_account(tx, row.account_sid)
            found = tx.one(self.q.get, **key)
            if found is not None:
                existing = _row(found)
                if existing.message_sid is not None:
                    return Claim("sent", existing)
                if existing.status == "claimed":
                    fresh = existing.claimed_ms > row.claimed_ms - lease_ms
                    return Claim("in_flight" if fresh else "unknown", existing)
            if rate_limit > 0:
                counted = tx.one(
                    self.q.count_recent, account_sid=row.account_sid, sink_sid=row.sink_sid,
                    rate_key=row.rate_key, since=rate_since_ms,
                )  # fmt: skip
                if counted is not None and int(counted["n"]) >= rate_limit:
                    return Claim("rate_limited")
            if found is None:
                tx.run(self.q.insert, **key, **fields)
            else:
                tx.run(self.q.reclaim, **key, **fields)
            return Claim("claimed", row)

        return await self.db.run(go, write=True)

    async def sent(self, row: SmsRow, message_sid: str, status: str, now: str) -> None:
        key = self._key(row)
        await self.db.run(lambda tx: tx.run(self.q.sent, **key, message_sid=message_sid, status=status, now=now),
                          write=True)  # fmt: skip

    async def rejected(self, row: SmsRow, error_code: int | None, now: str) -> None:
        key = self._key(row)
        await self.db.run(lambda tx: tx.run(self.q.rejected, **key, error_code=error_code, now=now), write=True)

    async def release(self, row: SmsRow) -> None:
        """Drop a claim whose attempt certainly sent nothing (a retried failure), so a retry may send."""
        key = self._key(row)
        await self.db.run(lambda tx: tx.run(self.q.release, **key), write=True)

    async def get(self, account_sid: str, sink_sid: str, message_id: str, recipient: str) -> SmsRow | None:
        r = await self.db.run(
            lambda tx: tx.one(self.q.get, account_sid=account_sid, sink_sid=sink_sid, message_id=message_id,
                              recipient=recipient)
        )  # fmt: skip
        return _row(r) if r else None

    async def by_message_sid(self, account_sid: str, message_sid: str) -> SmsRow | None:
        r = await self.db.run(lambda tx: tx.one(self.q.by_message_sid, account_sid=account_sid,
                                                message_sid=message_sid))  # fmt: skip
        return _row(r) if r else None

    async def pending_for(self, account_sid: str, sink_sid: str, recipient: str, since_ms: int) -> list[SmsRow]:
        """Claims to ``recipient`` awaiting Twilio's answer (at most two: the caller wants exactly one)."""
        rows = await self.db.run(
            lambda tx: tx.all(self.q.pending_for, account_sid=account_sid, sink_sid=sink_sid, recipient=recipient,
                              since=since_ms)
        )  # fmt: skip
        return [_row(r) for r in rows]

    async def set_status(self, account_sid: str, message_sid: str, status: str, error_code: int | None, now: str,
                         earlier: Sequence[str]) -> bool:  # fmt: skip
        """Move the text's status to ``status`` only from one of ``earlier`` (the statuses it follows:
        bridge/sms.py), so a callback arriving out of order never moves it back; whether it moved."""
        if not earlier:
            return False
        n = await self.db.run(
            lambda tx: tx.run(self.q.set_status, account_sid=account_sid, message_sid=message_sid, status=status,
                              error_code=error_code, now=now, earlier=self.d.list_(list(earlier))),
            write=True,
        )  # fmt: skip
        return n > 0

    # -- opt-outs ------------------------------------------------------------------------------

    async def opt_out(self, account_sid: str, phone: str, source: str, now: str) -> None:
        """Record that ``phone`` (E.164) takes no texts from this account (``source``: how we learnt it);
        an earlier record stays."""
        await self.db.run(lambda tx: tx.run(self.q.opt_out, account_sid=account_sid, phone=phone, source=source,
                                            now=now), write=True)  # fmt: skip

    async def opt_in(self, account_sid: str, phone: str) -> bool:
        """Forget ``phone``'s opt-out (an inbound START); whether there was one."""
        n = await self.db.run(lambda tx: tx.run(self.q.opt_in, account_sid=account_sid, phone=phone), write=True)
        return n > 0

    async def opted_out(self, account_sid: str, phone: str) -> OptOut | None:
        """``phone``'s opt-out in this account, if it has one."""
        r = await self.db.run(lambda tx: tx.one(self.q.opted_out, account_sid=account_sid, phone=phone))
        return OptOut(str(r["phone"]), str(r["source"]), str(r["date_created"])) if r else None

    @staticmethod
    def _key(row: SmsRow) -> dict[str, str]:
        return {k: getattr(row, k) for k in ("account_sid", "sink_sid", "message_id", "recipient")}
