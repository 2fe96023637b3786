"""What became of deliveries: dead letters and the delivery log (written by
``Deliveries.complete``/``expire``; read here, a page at a time)."""

from __future__ import annotations

import json
from typing import Any

from ..db import Tx, conditions, keyset
from ..packing import unpacked
from ..records import DeadLetterRow, LogRow, Page, PageQuery
from . import Repository


class _BySink(Repository):
    area = "history"
    select = ""
    row: Any = None

    async def list(self, account_sid: str, sink_sid: str | None, q: PageQuery) -> Page:
        where, params = conditions(("account_sid = :a", "a", account_sid), ("sink_sid = :s", "s", sink_sid))

        def go(tx: Tx) -> Page:
            rows, more = keyset(tx, self.q[self.select], where, params, ["id"], q)
            return Page([self.row(**r) for r in rows], more)

        return await self.db.run(go)


class DeadLetters(_BySink):
    select = "select_dead_letters"
    row = DeadLetterRow


class DeliveryLog(_BySink):
    select = "select_log"
    row = LogRow

    # -- the console's reads (the live debugger and its charts)
    async def recent_events(self, account_sid: str, after_seq: int, n: int) -> list[dict[str, Any]]:
        """The account's newest events after ``after_seq``, oldest first."""
        rows = await self.db.run(lambda tx: tx.all(self.q["console_events"], a=account_sid, after=after_seq, n=n))
        return [unpacked(r) for r in reversed(rows)]

    async def recent(self, account_sid: str, after_id: int, n: int) -> list[LogRow]:
        """The account's newest log entries after ``after_id``, oldest first."""
        rows = await self.db.run(lambda tx: tx.all(self.q["console_log"], a=account_sid, after=after_id, n=n))
        return [LogRow(**r) for r in reversed(rows)]

    async def for_event(self, account_sid: str, event_id: str, since_ms: int) -> list[LogRow]:
        """Every entry naming ``event_id`` since ``since_ms`` (its receipt)."""
        pattern = f'%"{event_id}"%'
        rows = await self.db.run(
            lambda tx: tx.all(self.q["console_log_for_event"], a=account_sid, since=since_ms, pattern=pattern)
        )
        out = [LogRow(**r) for r in rows]
        return [g for g in out if event_id in json.loads(g.event_ids)]  # LIKE's _ and % may over-match

    async def per_minute(self, account_sid: str, since_ms: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Events received per minute, and log entries' event counts per (sink, minute, outcome)."""

        def go(tx: Tx) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            ins = tx.all(self.q["console_minutes_in"], a=account_sid, since=since_ms)
            outs = tx.all(self.q["console_minutes_out"], a=account_sid, since=since_ms)
            return [dict(r) for r in ins], [dict(r) for r in outs]

        return await self.db.run(go)

    async def backlog(self, account_sid: str) -> list[dict[str, Any]]:
        """Per sink: deliveries waiting (due or retrying) and the oldest one's window start (ms)."""
        rows = await self.db.run(lambda tx: tx.all(self.q["console_backlog"], a=account_sid))
        return [dict(r) for r in rows]

    async def event(self, account_sid: str, event_id: str) -> dict[str, Any] | None:
        """The account's newest stored event with this id (ids are unique within the dedupe window only)."""
        row = await self.db.run(lambda tx: tx.one(self.q["console_event"], a=account_sid, id=event_id))
        return unpacked(row) if row is not None else None
